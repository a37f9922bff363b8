// Package config is the node's configuration file (parley node -c
// node.yaml): its documented structure, strict decoding, validation, and
// turning it into a server.Config.
package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"go.yaml.in/yaml/v3"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/keys"
	"github.com/parley-dev/parley/server"
)

// Node is the node configuration file. Relative paths are relative to the
// file's directory. Unknown fields are errors.
type Node struct {
	// Party is this node's party id, as listed in the agreement. Required.
	Party string `yaml:"party"`
	// Listen is the gRPC listen address (host:port). Default 127.0.0.1:7001.
	Listen string `yaml:"listen"`
	// Agreement is the signed agreement file. Required; the node refuses to
	// start unless every party signed it.
	Agreement string `yaml:"agreement"`
	// DataDir holds the exchange log and the state store. Required.
	DataDir string `yaml:"data_dir"`
	// SigningKey is the party's evidence signing key: a PEM file path
	// (optionally passphrase-encrypted) or a KMS URI (awskms://, gcpkms://,
	// azurekms://, hashivault://). Required.
	SigningKey string `yaml:"signing_key"`
	// SigningKeyPassphraseFile holds the PEM key's passphrase. Optional; the
	// environment variable PARLEY_KEY_PASSPHRASE is used when unset.
	SigningKeyPassphraseFile string `yaml:"signing_key_passphrase_file"`
	// CheckpointKey is the file holding the node's note signer key (the
	// "PRIVATE+KEY+..." line) for checkpoints. Required.
	CheckpointKey string `yaml:"checkpoint_key"`
	// TLS holds the node's certificate, issued by its party CA with the
	// URI SAN spiffe://<party>/node/<name>. The CAs of every party and
	// mediator are taken from the agreement.
	TLS TLS `yaml:"tls"`
	// CheckpointInterval is how often a checkpoint is published (Go
	// duration). Default 1s; minimum 100ms.
	CheckpointInterval string `yaml:"checkpoint_interval"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
}

// TLS names the node's certificate files.
type TLS struct {
	// Cert is the PEM certificate chain file. Required.
	Cert string `yaml:"cert"`
	// Key is the PEM private key file. Required.
	Key string `yaml:"key"`
}

// Load reads and strictly decodes a node configuration file, resolving
// relative paths against its directory, and validates it.
func Load(path string) (*Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read config: %w", err)
	}
	var c Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("couldn't decode config %s: %w", path, err)
	}
	base := filepath.Dir(path)
	for _, p := range []*string{&c.Agreement, &c.DataDir, &c.SigningKey, &c.SigningKeyPassphraseFile, &c.CheckpointKey, &c.TLS.Cert, &c.TLS.Key} {
		if *p != "" && !filepath.IsAbs(*p) && !strings.Contains(*p, "://") {
			*p = filepath.Join(base, *p)
		}
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("invalid config %s: %w", path, err)
	}
	return &c, nil
}

func (c *Node) validate() error {
	var errs []error
	req := func(name, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s: required", name))
		}
	}
	req("party", c.Party)
	req("agreement", c.Agreement)
	req("data_dir", c.DataDir)
	req("signing_key", c.SigningKey)
	req("checkpoint_key", c.CheckpointKey)
	req("tls.cert", c.TLS.Cert)
	req("tls.key", c.TLS.Key)
	if c.Listen == "" {
		c.Listen = "127.0.0.1:7001"
	}
	if c.CheckpointInterval != "" {
		d, err := time.ParseDuration(c.CheckpointInterval)
		if err != nil || d < 100*time.Millisecond {
			errs = append(errs, fmt.Errorf("checkpoint_interval: got %q, want a Go duration of at least 100ms", c.CheckpointInterval))
		}
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: got %q, want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// Level returns the configured slog level.
func (c *Node) Level() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.LogLevel))
	return l
}

// TrustBundle builds the trust bundle of every party and mediator CA in the
// agreement.
func TrustBundle(a *agreement.Agreement) (*certs.TrustBundle, error) {
	pems := map[string][]byte{}
	for _, p := range a.Parties {
		pems[p.ID] = []byte(p.CA)
	}
	for _, m := range a.Mediators {
		pems[m.ID] = []byte(m.CA)
	}
	return certs.NewTrustBundle(pems)
}

// Build loads every file the configuration names and returns the server
// configuration. The agreement must be signed by every party.
func (c *Node) Build(ctx context.Context, logger *slog.Logger) (server.Config, error) {
	f, err := agreement.Load(c.Agreement)
	if err != nil {
		return server.Config{}, err
	}
	if err := f.RequireAllSigned(); err != nil {
		return server.Config{}, fmt.Errorf("refusing to start: %w", err)
	}
	passFunc := func() ([]byte, error) {
		if c.SigningKeyPassphraseFile != "" {
			b, err := os.ReadFile(c.SigningKeyPassphraseFile)
			return bytes.TrimRight(b, "\r\n"), err
		}
		return []byte(os.Getenv("PARLEY_KEY_PASSPHRASE")), nil
	}
	signer, err := keys.LoadSigner(ctx, c.SigningKey, passFunc)
	if err != nil {
		return server.Config{}, fmt.Errorf("couldn't load the signing key: %w", err)
	}
	skey, err := os.ReadFile(c.CheckpointKey)
	if err != nil {
		return server.Config{}, fmt.Errorf("couldn't read the checkpoint key: %w", err)
	}
	cpSigner, _, err := fnote.NewEd25519SignerVerifier(strings.TrimSpace(string(skey)))
	if err != nil {
		return server.Config{}, fmt.Errorf("couldn't parse the checkpoint key %s: %w", c.CheckpointKey, err)
	}
	bundle, err := TrustBundle(f.Agreement)
	if err != nil {
		return server.Config{}, fmt.Errorf("couldn't build the trust bundle from the agreement: %w", err)
	}
	kp, err := certs.LoadKeyPair(c.TLS.Cert, c.TLS.Key)
	if err != nil {
		return server.Config{}, fmt.Errorf("couldn't load the node certificate: %w", err)
	}
	if id := kp.Identity(); id.Party != c.Party || id.Role != certs.RoleNode {
		return server.Config{}, fmt.Errorf("node certificate is for %s, want spiffe://%s/node/<name>", id, c.Party)
	}
	interval := time.Second
	if c.CheckpointInterval != "" {
		interval, _ = time.ParseDuration(c.CheckpointInterval)
	}
	return server.Config{
		Agreement:          f,
		Party:              c.Party,
		Signer:             signer,
		CheckpointSigner:   cpSigner,
		DataDir:            c.DataDir,
		TLS:                certs.ServerConfig(bundle, kp.Certificate),
		WitnessClient:      WitnessClient(bundle, kp),
		CheckpointInterval: interval,
		Logger:             logger,
	}, nil
}

// WitnessClient is the node's mTLS HTTP client for the mediators' witness
// endpoints: it presents the node certificate and accepts only servers
// whose certificate chains to the CA of the mediator named in its SAN.
func WitnessClient(bundle *certs.TrustBundle, kp *certs.KeyPair) *http.Client {
	tlsCfg := certs.ClientConfig(bundle, kp.Certificate, "")
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4},
	}
}
