package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadMediator(t *testing.T) {
	full := "id: un\nagreement: agreement.yaml\ndata_dir: data\ncosigning_key: cosigning.skey\ntls:\n  cert: mediator.crt\n  key: mediator.key\n"
	tests := []struct {
		name, yaml string
		wantErr    string // empty: loads
	}{
		{"complete", full, ""},
		{"intervals", full + "sync_interval: 2s\naudit_interval: 30s\nnodes:\n  alpha: 127.0.0.1:9\n", ""},
		{"unknown field", full + "witness_endpoint: https://x/\n", "field witness_endpoint not found"},
		{"missing id", strings.Replace(full, "id: un\n", "", 1), "id: required"},
		{"missing tls key", strings.Replace(full, "  key: mediator.key\n", "", 1), "tls.key: required"},
		{"sync too fast", full + "sync_interval: 1ms\n", "sync_interval"},
		{"bad log level", full + "log_level: loud\n", "log_level"},
		{"second document", full + "---\nid: other\n", "a second YAML document starts at line 8"},
		{"empty", "", "id: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "mediator.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := LoadMediator(path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if c.Listen != "127.0.0.1:7101" || c.DataDir != filepath.Join(dir, "data") {
					t.Errorf("got listen %q data_dir %q, want the default and a path relative to the file", c.Listen, c.DataDir)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
