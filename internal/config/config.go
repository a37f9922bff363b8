// Package config is the node's configuration file (parley node -c
// node.yaml): its documented structure, strict decoding, validation, and
// turning it into a server.Config.
package config

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	// TilesListen is the address (host:port) on which the exchange log is
	// served read-only over HTTPS in the C2SP tlog-tiles layout, with the
	// same mutual TLS as the gRPC port: any identity of the agreement may
	// read. Optional; without it no tiles are served. It must differ from
	// Listen.
	TilesListen string `yaml:"tiles_listen,omitempty"`
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
	// CheckpointInterval is about the longest a durable entry waits to be
	// published in a witnessed checkpoint (Go duration); the node publishes
	// at most twice per interval, and only when its log grew. Default 1s;
	// minimum 100ms.
	CheckpointInterval string `yaml:"checkpoint_interval"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// Exchange tunes how the node talks to its peers. Optional; every field
	// has a default.
	Exchange Exchange `yaml:"exchange,omitempty"`
	// AdminListen is the address (host:port) of the node's admin port:
	// Prometheus metrics at /metrics, the Go profiler at /debug/pprof/ and
	// the gRPC channelz service (cleartext HTTP/2). It has no
	// authentication, so it must be a loopback address (127.0.0.1:PORT,
	// [::1]:PORT or localhost:PORT) of its own, never the inter-party
	// port. Optional; without it there is no admin port.
	AdminListen string `yaml:"admin_listen,omitempty"`
	// CRLs maps trust domains (party or mediator ids of the agreement) to
	// the file of their CA's certificate revocation list (PEM, as written
	// by 'parley certs revoke', or DER). A certificate its CA revoked is
	// refused at the handshake, and on its next call if it was connected
	// before. The files are read again when they change and on SIGHUP; a
	// CRL that does not verify, or is older than the one in force, is
	// refused and the previous one kept. Optional.
	CRLs map[string]string `yaml:"crls,omitempty"`
	// ReloadInterval is how often the node checks whether its certificate,
	// key or CRL files changed, to reload them (Go duration). Default 5s;
	// at least 100ms.
	ReloadInterval string `yaml:"reload_interval,omitempty"`
	// WitnessUnhealthyAfter is how long entries may wait for a checkpoint
	// cosigned by the witness quorum before the health service reports
	// parley.v1.SubmissionService NOT_SERVING (Go duration). Default 5m;
	// at least 1s.
	WitnessUnhealthyAfter string `yaml:"witness_unhealthy_after,omitempty"`
	// Limits bound what callers may ask of the node. Optional; every field
	// has a safe default.
	Limits Limits `yaml:"limits,omitempty"`
}

// Exchange tunes the node-to-node exchange. Durations are Go durations.
type Exchange struct {
	// ReceiptDelay is how long an acknowledgement may wait to share a
	// receipt with others. Default 50ms; at most 1m.
	ReceiptDelay string `yaml:"receipt_delay,omitempty"`
	// ReceiptMaxAcks is how many acknowledgements fill a receipt. Default
	// 500; 1 to 1000.
	ReceiptMaxAcks int `yaml:"receipt_max_acks,omitempty"`
	// SyncInterval is how often the node compares feed heads and
	// checkpoints with each peer and pulls what it lacks. Default 2s;
	// at least 10ms.
	SyncInterval string `yaml:"sync_interval,omitempty"`
	// RelayDelay is how long the node waits, after a peer's receipt named
	// an entry it lacks, before pulling it from that peer. Default 250ms.
	RelayDelay string `yaml:"relay_delay,omitempty"`
	// BackoffMax caps the backoff between attempts to reach a peer.
	// Default 5s; at least 100ms.
	BackoffMax string `yaml:"backoff_max,omitempty"`
	// PeerOverrides replaces the agreement's endpoint of some parties'
	// nodes (party id to host:port). For tests only: an unreachable
	// address such as 127.0.0.1:1 cuts the direct link to that party, whose
	// entries then arrive relayed by others. Optional.
	PeerOverrides map[string]string `yaml:"peer_overrides,omitempty"`
}

// durations parses the exchange's durations, with name prefixes for
// errors; an empty field is 0 (the server's default).
func (e *Exchange) durations() (receipt, syncEvery, relay, backoff time.Duration, err error) {
	var errs []error
	parse := func(name, v string, lo, hi time.Duration) time.Duration {
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || (hi > 0 && d > hi) {
			limit := fmt.Sprintf("at least %s", lo)
			if hi > 0 {
				limit = fmt.Sprintf("%s to %s", lo, hi)
			}
			errs = append(errs, fmt.Errorf("exchange.%s: got %q, want a Go duration of %s", name, v, limit))
			return 0
		}
		return d
	}
	receipt = parse("receipt_delay", e.ReceiptDelay, time.Millisecond, time.Minute)
	syncEvery = parse("sync_interval", e.SyncInterval, 10*time.Millisecond, 0)
	relay = parse("relay_delay", e.RelayDelay, time.Millisecond, time.Minute)
	backoff = parse("backoff_max", e.BackoffMax, 100*time.Millisecond, 0)
	if e.ReceiptMaxAcks < 0 || e.ReceiptMaxAcks > 1000 {
		errs = append(errs, fmt.Errorf("exchange.receipt_max_acks: got %d, want 1 to 1000", e.ReceiptMaxAcks))
	}
	for party, addr := range e.PeerOverrides {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("exchange.peer_overrides: %s: got %q, want host:port", party, addr))
		}
	}
	return receipt, syncEvery, relay, backoff, errors.Join(errs...)
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
	if err := decodeStrict(data, &c); err != nil {
		return nil, fmt.Errorf("couldn't decode config %s: %w", path, err)
	}
	base := filepath.Dir(path)
	for _, p := range []*string{&c.Agreement, &c.DataDir, &c.SigningKey, &c.SigningKeyPassphraseFile, &c.CheckpointKey, &c.TLS.Cert, &c.TLS.Key} {
		if *p != "" && !filepath.IsAbs(*p) && !strings.Contains(*p, "://") {
			*p = filepath.Join(base, *p)
		}
	}
	c.resolveOpsPaths(base)
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
	if c.TilesListen != "" {
		if _, _, err := net.SplitHostPort(c.TilesListen); err != nil {
			errs = append(errs, fmt.Errorf("tiles_listen: got %q, want host:port", c.TilesListen))
		} else if c.TilesListen == c.Listen {
			errs = append(errs, fmt.Errorf("tiles_listen: %q is also the gRPC listen address", c.TilesListen))
		}
	}
	if c.CheckpointInterval != "" {
		d, err := time.ParseDuration(c.CheckpointInterval)
		if err != nil || d < 100*time.Millisecond {
			errs = append(errs, fmt.Errorf("checkpoint_interval: got %q, want a Go duration of at least 100ms", c.CheckpointInterval))
		}
	}
	if _, _, _, _, err := c.Exchange.durations(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.ops(); err != nil {
		errs = append(errs, err)
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

// MediatorClient returns an HTTPS client for mediator id of a that presents
// the certificate in certFile and keyFile (a party's or mediator's of the
// agreement) and accepts only that mediator's. timeout bounds each request
// (0: none). The caller closes its idle connections when done.
func MediatorClient(a *agreement.Agreement, certFile, keyFile, id string, timeout time.Duration) (*http.Client, error) {
	bundle, err := TrustBundle(a)
	if err != nil {
		return nil, fmt.Errorf("couldn't build the trust bundle from the agreement: %w", err)
	}
	kp, err := certs.LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("couldn't load the client certificate: %w", err)
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{TLSClientConfig: certs.ClientConfig(bundle, kp.Certificate, id), ForceAttemptHTTP2: true},
	}, nil
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
	ops, err := c.ops()
	if err != nil {
		return server.Config{}, err
	}
	revs, err := certs.LoadRevocations(bundle, c.CRLs)
	if err != nil {
		return server.Config{}, fmt.Errorf("couldn't load the CRLs: %w", err)
	}
	bundle = bundle.WithRevocations(revs)
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
	receiptDelay, syncEvery, relayDelay, backoffMax, err := c.Exchange.durations()
	if err != nil {
		return server.Config{}, err
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

		Limits:                ops.limits,
		WitnessUnhealthyAfter: ops.witnessUnhealthyAfter,
		ReloadInterval:        ops.reloadInterval,
		KeyPair:               kp,
		Revocations:           revs,

		Exchange: server.ExchangeConfig{
			PeerTLS: func(peer string) *tls.Config {
				return certs.ClientConfig(bundle, kp.Certificate, peer)
			},
			PeerAddresses:  c.Exchange.PeerOverrides,
			ReceiptDelay:   receiptDelay,
			ReceiptMaxAcks: c.Exchange.ReceiptMaxAcks,
			SyncInterval:   syncEvery,
			RelayDelay:     relayDelay,
			BackoffMax:     backoffMax,
		},
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

// decodeStrict decodes data, which must be one YAML document with only
// known fields, into v. An empty file decodes to the zero value.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return fmt.Errorf("a second YAML document starts at line %d (want one document; a second one would be ignored)", extra.Line)
	}
	return nil
}
