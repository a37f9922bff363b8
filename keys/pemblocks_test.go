package keys_test

import (
	"encoding/pem"
	"strings"
	"testing"

	"github.com/parley-dev/parley/keys"
)

func TestPEMBlocks(t *testing.T) {
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("c")}))
	tests := []struct {
		name    string
		data    string
		blocks  int
		wantErr string
	}{
		{"two", cert + "\n" + cert, 2, ""},
		{"none", "", 0, "no PEM block found (want CERTIFICATE)"},
		{"text before", "note\n" + cert, 0, "unexpected data before the first PEM block"},
		{"text between", cert + "note\n" + cert, 0, "unexpected data after PEM block 1"},
		{"malformed first", "-----BEGIN CERTIFICATE-----\n%%\n" + cert, 0, "malformed PEM block 1"},
		{"wrong type", strings.ReplaceAll(cert, "CERTIFICATE", "PUBLIC KEY"), 0, `PEM block 1 is "PUBLIC KEY", want "CERTIFICATE"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keys.PEMBlocks([]byte(tc.data), "CERTIFICATE")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %d blocks, error %v; want an error containing %q", len(got), err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != tc.blocks {
				t.Fatalf("got %d blocks, error %v; want %d blocks", len(got), err, tc.blocks)
			}
		})
	}
}
