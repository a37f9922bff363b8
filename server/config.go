// Package server is a Parley party node: it serves the submission,
// exchange, log and subscription services over mutual TLS, verifies every
// entry with package verifier, and keeps everything it accepts in a
// Tessera exchange log (server/tlog) with derived indexes in bbolt
// (server/state).
package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/certs"
)

// Config is everything a node needs. The caller (cmd/parley) loads files and
// keys; this package never reads flags, environment or files of its own
// except under DataDir.
type Config struct {
	// Agreement is the signed agreement. Required; New refuses it unless
	// every party signed it.
	Agreement *agreement.File
	// Party is this node's party id; it must be listed in the agreement.
	Party string
	// Signer signs this party's entries. Its public key must be one of the
	// party's keys in the agreement.
	Signer signature.Signer
	// CheckpointSigner signs the log's checkpoints (C2SP signed note). Its
	// verifier key must be the party's checkpoint_key in the agreement.
	CheckpointSigner note.Signer
	// DataDir holds the log and the state store. Required.
	DataDir string
	// TLS is the server's mTLS configuration, built with certs.ServerConfig.
	// Required.
	TLS *tls.Config
	// WitnessClient is the mTLS HTTP client used to reach the mediators'
	// witnesses. Optional: without it, checkpoints are published unwitnessed
	// (allowed only when the agreement's witness quorum is 0).
	WitnessClient *http.Client
	// CheckpointInterval bounds how long a durable entry waits to be
	// published in a witnessed checkpoint: about this long at most (the
	// log publishes at most twice per interval, and only when it grew).
	// Default 1s.
	CheckpointInterval time.Duration
	// Logger receives structured logs. Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now. Tests inject their own.
	Now func() time.Time
	// Evaluating, if set, is called before the agreed rules are evaluated
	// over the first entries entries of the log (a ListFindings, a
	// subscriber's or a metrics scrape's evaluation, one at a time), and
	// the function it returns once the evaluation is over. An evaluation
	// holds what the rules read of every entry, about 350 bytes each:
	// parley node raises its soft memory limit by that much meanwhile,
	// since above the limit the collector would run without pause. Optional.
	Evaluating func(entries uint64) (done func())
	// Exchange configures how the node delivers to, pulls from and checks
	// its peers. Optional: see ExchangeConfig for defaults.
	Exchange ExchangeConfig
	// StreamIdleTimeout is how long a client-streaming call (Deliver) may
	// go without a message from the client before the node ends it with
	// DeadlineExceeded, so that a peer that opens streams and stays silent
	// cannot hold them forever. A client opens a new stream when it has
	// something to send. Default 5m; negative: no limit.
	StreamIdleTimeout time.Duration
	// Limits bound what callers may ask of the node (message sizes,
	// streams, keepalive, per-party rate). Zero fields take the defaults of
	// DefaultLimits.
	Limits Limits
	// WitnessUnhealthyAfter is how long entries may wait for a checkpoint
	// cosigned by the witness quorum before the health service reports
	// SubmissionService NOT_SERVING. Default 5m.
	WitnessUnhealthyAfter time.Duration
	// KeyPair is the node's certificate and key, which TLS presents (and,
	// for its outgoing connections, WitnessClient). Optional: when set,
	// Reload re-reads it, Serve watches its files, and its expiry is a
	// metric.
	KeyPair *certs.KeyPair
	// Revocations are the CRLs in force, which the trust bundle behind TLS
	// must also use (certs.TrustBundle.WithRevocations). Optional: when
	// set, every call is checked against them too (a revocation cuts off
	// connections made before it), Reload re-reads them and Serve watches
	// their files.
	Revocations *certs.Revocations
	// ReloadInterval is how often Serve checks whether the files of KeyPair
	// and Revocations changed. Default 5s.
	ReloadInterval time.Duration
}

func (c *Config) setDefaults() error {
	var errs []error
	if c.Agreement == nil || c.Agreement.Agreement == nil {
		errs = append(errs, errors.New("agreement: required"))
	}
	if err := certs.ValidateID(c.Party); err != nil {
		errs = append(errs, fmt.Errorf("party: %w", err))
	} else if c.Agreement != nil && c.Agreement.Agreement != nil {
		if _, ok := c.Agreement.Agreement.Party(c.Party); !ok {
			errs = append(errs, fmt.Errorf("party: %q is not a party of agreement %q", c.Party, c.Agreement.Agreement.ID))
		}
	}
	if c.Agreement != nil && c.Agreement.Agreement != nil {
		// Callers check this too (config.Build); a node must never serve
		// an agreement that some party has not signed.
		if err := c.Agreement.RequireAllSigned(); err != nil {
			errs = append(errs, fmt.Errorf("agreement: refusing to start: %w", err))
		}
	}
	if c.Signer == nil {
		errs = append(errs, errors.New("signer: required"))
	}
	if c.CheckpointSigner == nil {
		errs = append(errs, errors.New("checkpoint signer: required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir: required"))
	}
	if c.TLS == nil {
		errs = append(errs, errors.New("tls: required"))
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := c.Exchange.setDefaults(); err != nil {
		errs = append(errs, err)
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = 5 * time.Minute
	}
	var err error
	if c.Limits, err = c.Limits.withDefaults(); err != nil {
		errs = append(errs, err)
	}
	if c.WitnessUnhealthyAfter <= 0 {
		c.WitnessUnhealthyAfter = 5 * time.Minute
	}
	if c.ReloadInterval <= 0 {
		c.ReloadInterval = 5 * time.Second
	}
	return errors.Join(errs...)
}
