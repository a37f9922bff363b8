package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parley-dev/parley/server"
)

// minimal is a node.yaml with every required field.
const minimal = `party: alpha
agreement: agreement.yaml
data_dir: data
signing_key: signing.key
checkpoint_key: checkpoint.skey
tls: {cert: node.crt, key: node.key}
`

func load(t *testing.T, text string) (*Node, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func TestOpsFields(t *testing.T) {
	c, err := load(t, minimal+`admin_listen: 127.0.0.1:9464
crls: {alpha: crl/alpha.crl, bravo: /abs/bravo.crl}
reload_interval: 2s
witness_unhealthy_after: 90s
limits:
  max_recv_message_bytes: 262144
  max_concurrent_streams: 50
  keepalive_min_time: 30s
  rate_per_party: -1
  shutdown_grace: 3s
`)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := c.CRLs["alpha"], filepath.Join(filepath.Dir(c.DataDir), "crl", "alpha.crl"); got != want {
		t.Errorf("crls.alpha: got %q, want %q (relative to the file)", got, want)
	}
	if got := c.CRLs["bravo"]; got != "/abs/bravo.crl" {
		t.Errorf("crls.bravo: got %q, want /abs/bravo.crl", got)
	}
	s, err := c.ops()
	if err != nil {
		t.Fatal(err)
	}
	want := opsSettings{
		limits: server.Limits{
			MaxRecvMessageBytes: 262144, MaxConcurrentStreams: 50, KeepaliveMinTime: 30 * time.Second,
			RatePerParty: -1, ShutdownGrace: 3 * time.Second,
		},
		witnessUnhealthyAfter: 90 * time.Second,
		reloadInterval:        2 * time.Second,
	}
	if s != want {
		t.Errorf("ops: got %+v, want %+v", s, want)
	}
}

func TestOpsFieldErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"admin on all interfaces", "admin_listen: 0.0.0.0:9464", "admin_listen: admin address \"0.0.0.0:9464\" is not a loopback address"},
		{"admin on a public address", "admin_listen: 192.0.2.1:9464", "not a loopback address"},
		{"admin on the gRPC port", "listen: 127.0.0.1:7001\nadmin_listen: 127.0.0.1:7001", "admin port must be a port of its own"},
		{"admin without port", "admin_listen: localhost", "not host:port"},
		{"crl of an invalid domain", "crls: {Alpha: a.crl}", "crls: invalid id \"Alpha\""},
		{"crl without file", "crls: {alpha: \"\"}", "crls: alpha: file required"},
		{"reload too often", "reload_interval: 1ms", "reload_interval: got \"1ms\""},
		{"witness threshold not a duration", "witness_unhealthy_after: soon", "witness_unhealthy_after: got \"soon\""},
		{"tiny receive limit", "limits: {max_recv_message_bytes: 1000}", "limits.max_recv_message_bytes"},
		{"negative rate", "limits: {rate_per_party: -2}", "limits.rate_per_party"},
		{"negative burst", "limits: {burst_per_party: -1}", "limits.burst_per_party"},
		{"bad keepalive", "limits: {keepalive_time: 10ms}", "limits.keepalive_time"},
		{"unknown limit", "limits: {max_streams: 5}", "field max_streams not found"},
		{"second document", "---\nlisten: 127.0.0.1:7009", "a second YAML document starts at line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, minimal+tt.yaml+"\n")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestDocExample checks that the example of docs/configuration.md is a
// valid node.yaml.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(doc, []byte("```yaml\n"))
	if !ok {
		t.Fatalf("%s has no yaml example", referenceDoc)
	}
	example, _, _ := bytes.Cut(rest, []byte("```"))
	var c Node
	dec := yaml.NewDecoder(bytes.NewReader(example))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("the example does not decode: %v", err)
	}
	if err := c.validate(); err != nil {
		t.Fatalf("the example is not valid: %v", err)
	}
}
