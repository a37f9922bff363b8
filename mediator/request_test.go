package mediator

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// specExample is the example request body of c2sp.org/tlog-witness,
// add-checkpoint.
const specExample = `old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
`

const (
	hashA = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw="
	hashB = "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk="
	cpX   = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

func TestParseAddCheckpointRequest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      string
		old       uint64
		proofLen  int
		cpPrefix  string
		cpSuffix  string
		wantProof []string
	}{
		{
			name:     "spec example",
			body:     specExample,
			old:      20852014,
			proofLen: 4,
			cpPrefix: "example.com/behind-the-sofa\n20852163\n",
			cpSuffix: "++qbSzm9Q=\n",
		},
		{
			name:     "old size zero, no proof",
			body:     "old 0\n\n" + cpX,
			old:      0,
			cpPrefix: cpX,
		},
		{
			name:     "largest old size",
			body:     "old 18446744073709551615\n" + hashA + "\n\n" + cpX,
			old:      1<<64 - 1,
			proofLen: 1,
			cpPrefix: cpX,
		},
		{
			name:     "63 proof lines",
			body:     "old 7\n" + strings.Repeat(hashA+"\n", 63) + "\n" + cpX,
			old:      7,
			proofLen: 63,
			cpPrefix: cpX,
		},
		{
			name:      "two proof lines",
			body:      "old 7\n" + hashA + "\n" + hashB + "\n\n" + cpX,
			old:       7,
			proofLen:  2,
			cpPrefix:  cpX,
			wantProof: []string{hashA, hashB},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseAddCheckpointRequest([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if req.OldSize != tc.old {
				t.Errorf("old size: got %d, want %d", req.OldSize, tc.old)
			}
			if len(req.Proof) != tc.proofLen {
				t.Errorf("proof lines: got %d, want %d", len(req.Proof), tc.proofLen)
			}
			if tc.wantProof != nil {
				var got []string
				for _, h := range req.Proof {
					got = append(got, b64(h))
				}
				if !reflect.DeepEqual(got, tc.wantProof) {
					t.Errorf("proof: got %q, want %q", got, tc.wantProof)
				}
			}
			if !strings.HasPrefix(string(req.Checkpoint), tc.cpPrefix) || !strings.HasSuffix(string(req.Checkpoint), tc.cpSuffix) {
				t.Errorf("checkpoint: got %q, want %q...%q", req.Checkpoint, tc.cpPrefix, tc.cpSuffix)
			}
			if got := formatRequest(req.OldSize, req.Proof, req.Checkpoint); string(got) != tc.body {
				t.Errorf("re-encoded: got %q, want %q", got, tc.body)
			}
		})
	}
}

func TestParseAddCheckpointRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"no newline", "old 0"},
		{"no old line", "\n\n" + cpX},
		{"old without size", "old \n\n" + cpX},
		{"old with two spaces", "old  5\n\n" + cpX},
		{"leading zero", "old 05\n\n" + cpX},
		{"signed size", "old +5\n\n" + cpX},
		{"negative size", "old -5\n\n" + cpX},
		{"hex size", "old 0x5\n\n" + cpX},
		{"size overflows", "old 18446744073709551616\n\n" + cpX},
		{"trailing space", "old 5 \n\n" + cpX},
		{"carriage return", "old 5\r\n\r\n" + cpX},
		{"capitalised", "Old 5\n\n" + cpX},
		{"no empty line", "old 5\n" + hashA + "\n"},
		{"no checkpoint", "old 5\n" + hashA + "\n\n"},
		{"proof not base64", "old 5\nnot base64!\n\n" + cpX},
		{"proof short hash", "old 5\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDp\n\n" + cpX},
		{"proof long hash", "old 5\n" + b64(make([]byte, 33)) + "\n\n" + cpX},
		{"proof unpadded", "old 5\n" + strings.TrimSuffix(hashA, "=") + "\n\n" + cpX},
		{"proof URL encoding", "old 5\n" + "_6WVhPs2CwSsb5rYBH5cjHV_wSmA79abXAwhXw3Kj_0=" + "\n\n" + cpX},
		{"proof non-zero padding bits", "old 5\n" + "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkax=" + "\n\n" + cpX},
		{"proof with carriage return", "old 5\n" + hashA + "\r\n\n" + cpX},
		{"proof with inner carriage return", "old 5\n" + hashA[:10] + "\r" + hashA[10:] + "\n\n" + cpX},
		{"proof with space", "old 5\n " + hashA + "\n\n" + cpX},
		{"64 proof lines", "old 5\n" + strings.Repeat(hashA+"\n", 64) + "\n" + cpX},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseAddCheckpointRequest([]byte(tc.body))
			if err == nil {
				t.Fatalf("got %+v, want an error", req)
			}
			if !errors.Is(err, errMalformedRequest) {
				t.Errorf("got %v, want errMalformedRequest", err)
			}
		})
	}
}

func FuzzAddCheckpointRequest(f *testing.F) {
	f.Add([]byte(specExample))
	f.Add([]byte("old 0\n\n" + cpX))
	f.Add([]byte("old 7\n" + hashA + "\n" + hashB + "\n\n" + cpX))
	f.Add([]byte("old 18446744073709551615\n" + strings.Repeat(hashB+"\n", 63) + "\n" + cpX))
	f.Add([]byte("old 05\n\n" + cpX))
	f.Add([]byte("old 5\n" + hashA + "\r\n\n" + cpX))
	f.Add([]byte("old 5\n" + hashA + "\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseAddCheckpointRequest(body)
		if err != nil {
			if req != nil {
				t.Fatalf("got request %+v with error %v", req, err)
			}
			if !errors.Is(err, errMalformedRequest) {
				t.Fatalf("got error %v, want errMalformedRequest", err)
			}
			return
		}
		if len(req.Proof) > maxProofLines {
			t.Fatalf("got %d proof lines, want at most %d", len(req.Proof), maxProofLines)
		}
		for i, h := range req.Proof {
			if len(h) != hashSize {
				t.Fatalf("proof line %d: got %d bytes, want %d", i, len(h), hashSize)
			}
		}
		if len(req.Checkpoint) == 0 {
			t.Fatal("got an empty checkpoint")
		}
		// Only the canonical encoding parses: re-encoding gives the body.
		if got := formatRequest(req.OldSize, req.Proof, req.Checkpoint); !bytes.Equal(got, body) {
			t.Fatalf("re-encoded %+v as %q, want %q", req, got, body)
		}
	})
}
