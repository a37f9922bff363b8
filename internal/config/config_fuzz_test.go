package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parley-dev/parley/internal/config"
)

// validNodeConfig is a complete node.yaml with relative paths.
const validNodeConfig = `party: alpha
listen: 127.0.0.1:7001
tiles_listen: 127.0.0.1:7002
agreement: agreement.yaml
data_dir: data
signing_key: signing.key
signing_key_passphrase_file: passphrase.txt
checkpoint_key: checkpoint.skey
tls:
  cert: node.crt
  key: node.key
checkpoint_interval: 1s
log_level: info
`

// FuzzLoad checks that Load never panics on any file and that whatever it
// accepts is complete and valid: every required field set, every path
// resolved (absolute, or a KMS URI), the interval and level well formed,
// and the result a fixed point of marshalling and loading again. Load reads
// a file, so the fuzzer writes one per input.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(validNodeConfig))
	f.Add([]byte(strings.Replace(validNodeConfig, "signing.key", "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", 1)))
	f.Add([]byte(strings.Replace(validNodeConfig, "log_level: info\n", "log_level: info\nunknown: 1\n", 1)))
	f.Add([]byte(strings.Replace(validNodeConfig, "1s", "99ms", 1)))
	f.Add([]byte(strings.Replace(validNodeConfig, "127.0.0.1:7002", "127.0.0.1:7001", 1)))
	f.Add([]byte(validNodeConfig + "---\nparty: bravo\n"))
	f.Add([]byte("party: [alpha]\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte{})
	dir := f.TempDir()
	path := filepath.Join(dir, "node.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(path)
		if err != nil {
			if c != nil {
				t.Fatalf("got config %+v with error %v", c, err)
			}
			return
		}
		for name, v := range map[string]string{
			"party": c.Party, "listen": c.Listen, "agreement": c.Agreement, "data_dir": c.DataDir,
			"signing_key": c.SigningKey, "checkpoint_key": c.CheckpointKey, "tls.cert": c.TLS.Cert, "tls.key": c.TLS.Key,
		} {
			if v == "" {
				t.Fatalf("accepted a config with an empty %s", name)
			}
		}
		for name, v := range map[string]string{
			"agreement": c.Agreement, "data_dir": c.DataDir, "signing_key": c.SigningKey,
			"signing_key_passphrase_file": c.SigningKeyPassphraseFile, "checkpoint_key": c.CheckpointKey,
			"tls.cert": c.TLS.Cert, "tls.key": c.TLS.Key,
		} {
			if v != "" && !filepath.IsAbs(v) && !strings.Contains(v, "://") {
				t.Fatalf("got %s %q, want it resolved against %s", name, v, dir)
			}
		}
		if c.CheckpointInterval != "" {
			if d, err := time.ParseDuration(c.CheckpointInterval); err != nil || d < 100*time.Millisecond {
				t.Fatalf("accepted checkpoint_interval %q", c.CheckpointInterval)
			}
		}
		switch c.LogLevel {
		case "", "debug", "info", "warn", "error":
		default:
			t.Fatalf("accepted log_level %q", c.LogLevel)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("couldn't marshal an accepted config: %v", err)
		}
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := config.Load(path)
		if err != nil {
			t.Fatalf("got error %v loading the marshalled config %q, want it accepted", err, out)
		}
		// Compared as YAML: an empty map and an absent one are the same
		// configuration.
		if out2, err := yaml.Marshal(again); err != nil || !bytes.Equal(out2, out) {
			t.Fatalf("got %q after marshalling and loading again, want %q", out2, out)
		}
	})
}
