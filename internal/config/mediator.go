package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/mediator"
)

// Mediator is the mediator configuration file (parley mediator -c
// mediator.yaml). Relative paths are relative to the file's directory.
// Unknown fields are errors.
type Mediator struct {
	// ID is this mediator's id, as listed in the agreement. Required.
	ID string `yaml:"id"`
	// Listen is the HTTPS listen address (host:port) of the witness and
	// the mediator's other endpoints; it must be reachable at the
	// agreement's witness_endpoint. Default 127.0.0.1:7101.
	Listen string `yaml:"listen"`
	// Agreement is the signed agreement file. Required; the mediator
	// refuses to start unless every party signed it.
	Agreement string `yaml:"agreement"`
	// DataDir holds the witness database, the mirrored logs and the
	// collected state; "parley audit -dir" reads it. Required.
	DataDir string `yaml:"data_dir"`
	// CosigningKey is the file holding the witness's cosigning key (the
	// "PRIVATE+KEY+..." line that "parley init -mediator" writes).
	// Required.
	CosigningKey string `yaml:"cosigning_key"`
	// TLS holds the mediator's certificate, issued by its CA with the URI
	// SAN spiffe://<id>/mediator/<name>. It serves the witness and reads
	// the nodes (mediators may read every node, never write).
	TLS TLS `yaml:"tls"`
	// Nodes optionally maps a party id to its node's gRPC address, when it
	// is not the first endpoint the agreement lists.
	Nodes map[string]string `yaml:"nodes"`
	// SyncInterval is how often every node is mirrored (Go duration).
	// Default 5s; minimum 100ms.
	SyncInterval string `yaml:"sync_interval"`
	// AuditInterval is how often the mirror is audited and a summary
	// logged (Go duration). Default 1m; minimum 1s. An audit that takes
	// long spaces out the next ones: audits take at most a tenth of the
	// mediator's time. The mirroring goes on while one runs.
	AuditInterval string `yaml:"audit_interval"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
}

// LoadMediator reads and strictly decodes a mediator configuration file,
// resolving relative paths against its directory, and validates it.
func LoadMediator(path string) (*Mediator, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read config: %w", err)
	}
	var c Mediator
	if err := decodeStrict(data, &c); err != nil {
		return nil, fmt.Errorf("couldn't decode config %s: %w", path, err)
	}
	base := filepath.Dir(path)
	for _, p := range []*string{&c.Agreement, &c.DataDir, &c.CosigningKey, &c.TLS.Cert, &c.TLS.Key} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("invalid config %s: %w", path, err)
	}
	return &c, nil
}

func (c *Mediator) validate() error {
	var errs []error
	req := func(name, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s: required", name))
		}
	}
	req("id", c.ID)
	req("agreement", c.Agreement)
	req("data_dir", c.DataDir)
	req("cosigning_key", c.CosigningKey)
	req("tls.cert", c.TLS.Cert)
	req("tls.key", c.TLS.Key)
	if c.Listen == "" {
		c.Listen = "127.0.0.1:7101"
	}
	for _, d := range []struct {
		name, v string
		min     time.Duration
	}{{"sync_interval", c.SyncInterval, 100 * time.Millisecond}, {"audit_interval", c.AuditInterval, time.Second}} {
		if d.v == "" {
			continue
		}
		if got, err := time.ParseDuration(d.v); err != nil || got < d.min {
			errs = append(errs, fmt.Errorf("%s: got %q, want a Go duration of at least %s", d.name, d.v, d.min))
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
func (c *Mediator) Level() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.LogLevel))
	return l
}

// Build loads every file the configuration names and returns the
// mediator server's configuration. The agreement must be signed by every
// party and list the mediator.
func (c *Mediator) Build(logger *slog.Logger) (mediator.ServerConfig, error) {
	f, err := agreement.Load(c.Agreement)
	if err != nil {
		return mediator.ServerConfig{}, err
	}
	if err := f.RequireAllSigned(); err != nil {
		return mediator.ServerConfig{}, fmt.Errorf("refusing to start: %w", err)
	}
	if _, ok := f.Agreement.Mediator(c.ID); !ok {
		return mediator.ServerConfig{}, fmt.Errorf("refusing to start: %q is not a mediator of agreement %q", c.ID, f.Agreement.ID)
	}
	skey, err := os.ReadFile(c.CosigningKey)
	if err != nil {
		return mediator.ServerConfig{}, fmt.Errorf("couldn't read the cosigning key: %w", err)
	}
	signer, err := mediator.NewCosigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return mediator.ServerConfig{}, fmt.Errorf("couldn't load the cosigning key %s: %w", c.CosigningKey, err)
	}
	kp, err := certs.LoadKeyPair(c.TLS.Cert, c.TLS.Key)
	if err != nil {
		return mediator.ServerConfig{}, fmt.Errorf("couldn't load the mediator certificate: %w", err)
	}
	if id := kp.Identity(); id.Party != c.ID || id.Role != certs.RoleMediator {
		return mediator.ServerConfig{}, fmt.Errorf("mediator certificate is for %s, want a spiffe://%s/mediator/<name> identity", id, c.ID)
	}
	cfg := mediator.ServerConfig{
		Agreement: f, ID: c.ID, Signer: signer, DataDir: c.DataDir,
		Certificate: kp.Certificate, Nodes: c.Nodes, Logger: logger,
	}
	cfg.SyncInterval, _ = time.ParseDuration(c.SyncInterval)
	cfg.AuditInterval, _ = time.ParseDuration(c.AuditInterval)
	return cfg, nil
}
