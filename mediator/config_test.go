package mediator

import (
	"path/filepath"
	"testing"
)

func TestNewWitnessConfigErrors(t *testing.T) {
	skey, _, err := GenerateCosigningKey("parley.example/mediator/un")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := NewCosigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	alpha := newTestLog(t, alphaOrigin, 0)
	db := filepath.Join(t.TempDir(), "witness.db")
	good := WitnessedLog{Origin: alpha.origin, Verifier: alpha.verifier}
	for _, tc := range []struct {
		name string
		cfg  WitnessConfig
	}{
		{"no signer", WitnessConfig{DBPath: db, Logs: []WitnessedLog{good}}},
		{"no database", WitnessConfig{Signer: signer, Logs: []WitnessedLog{good}}},
		{"no logs", WitnessConfig{Signer: signer, DBPath: db}},
		{"empty origin", WitnessConfig{Signer: signer, DBPath: db, Logs: []WitnessedLog{{Verifier: alpha.verifier}}}},
		{"two-line origin", WitnessConfig{Signer: signer, DBPath: db, Logs: []WitnessedLog{{Origin: "a\nb", Verifier: alpha.verifier}}}},
		{"no verifier", WitnessConfig{Signer: signer, DBPath: db, Logs: []WitnessedLog{{Origin: alpha.origin}}}},
		{"duplicate origin", WitnessConfig{Signer: signer, DBPath: db, Logs: []WitnessedLog{good, good}}},
		{"database in a missing directory", WitnessConfig{Signer: signer, DBPath: filepath.Join(t.TempDir(), "missing", "witness.db"), Logs: []WitnessedLog{good}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWitness(tc.cfg)
			if err == nil {
				w.Close()
				t.Fatal("got no error, want one")
			}
		})
	}
}
