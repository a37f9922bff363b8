package certs

import (
	"encoding/pem"
	"strings"
	"testing"
)

func TestPEMBlocks(t *testing.T) {
	block := func(typ, body string) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: []byte(body)}))
	}
	a, b := block("CERTIFICATE", "first"), block("CERTIFICATE", "second")
	tests := []struct {
		name    string
		data    string
		want    []string
		wantErr string
	}{
		{"one", a, []string{"first"}, ""},
		{"two with blank lines", "\n" + a + "\n\n" + b + "\n", []string{"first", "second"}, ""},
		{"empty", " \n", nil, "no PEM certificate found"},
		{"text before", "issued by bravo\n" + a, nil, "unexpected data before the first PEM certificate"},
		{"text between", a + "and then\n" + b, nil, "unexpected data after PEM certificate 1"},
		{"text after", a + "junk", nil, "unexpected data after PEM certificate 1"},
		{"indented block", a + "  " + strings.ReplaceAll(b, "\n", "\n  "), nil, "malformed PEM block 2"},
		{"malformed then good", "-----BEGIN CERTIFICATE-----\n!!\n" + b, nil, "malformed PEM block 1"},
		{"other type", a + block("PRIVATE KEY", "k"), nil, `PEM block 2 is "PRIVATE KEY", want "CERTIFICATE"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PEMBlocks([]byte(tc.data), "CERTIFICATE", "certificate")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d blocks, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Errorf("block %d: got %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// FuzzPEMBlocks checks that pemBlocks skips nothing: outside the BEGIN
// and END lines of the blocks it returned there is only white space.
func FuzzPEMBlocks(f *testing.F) {
	f.Add([]byte(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})))
	f.Add([]byte("junk\n-----BEGIN CERTIFICATE-----\neA==\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		blocks, err := PEMBlocks(data, "CERTIFICATE", "certificate")
		if err != nil {
			return
		}
		inside, begins := false, 0
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			switch {
			case !inside && line == "":
			case !inside && strings.HasPrefix(line, "-----BEGIN CERTIFICATE-----"):
				inside = true
				begins++
			case inside && strings.HasPrefix(line, "-----END CERTIFICATE-----"):
				inside = false
			case inside:
			default:
				t.Fatalf("accepted %q, with %q outside its blocks", data, line)
			}
		}
		if begins != len(blocks) {
			t.Fatalf("accepted %q: %d BEGIN lines but %d blocks", data, begins, len(blocks))
		}
	})
}
