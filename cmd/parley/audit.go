package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/mediator"
)

const auditUsage = `Usage: parley audit (-network network.json [-mediator ID] | -c mediator.yaml | -dir DIR)
                    [-format text|json] [-html FILE] [-now TIME]

Audit produces a mediator's audit report of the exchange: every mirrored
entry and feed re-verified, the nodes' logs cross-checked (one statement per
(sender, seq) everywhere; every substantive entry receipted by every
counterpart in time; no log omitting an entry its party receipted), every
checkpoint checked against the mirror and the witness, the mediators' views
compared, and the agreed rules evaluated over all logs.

Where the report comes from:

  -network FILE  a running network described by network.json (as written by
                 "parley demo --dir"): asks the mediator (the first one, or
                 -mediator ID) for a fresh report, with its certificate
  -c FILE        the mediator's configuration: asks that running mediator
  -dir DIR       a mediator's data directory on disk (its mirrored logs and
                 collected state), audited here, offline

The report is printed as text, or as JSON with -format json (the stable
schema of docs/audit-report.md); -html FILE also writes a self-contained
HTML page with a timeline of the notified activities.

Audit exits with status 3 when the report holds verified evidence of
misbehaviour (equivocation, forked log, omitted entry, mediators'
disagreement), 1 when it could not audit, and 0 otherwise: rule violations
alone are reported, not failed on.
`

func init() {
	commands["audit"] = &command{
		summary: "produce a mediator's audit report (text, JSON, HTML)",
		usage:   auditUsage,
		run:     runAudit,
	}
}

// exitMisbehaviour is audit's exit status when it finds misbehaviour.
const exitMisbehaviour = 3

func runAudit(ctx context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("audit")
	var networkFile, mediatorID, cfgPath, dir, format, htmlFile, now string
	var wait time.Duration
	fs.StringVar(&networkFile, "network", "", "network.json `FILE` of a running network")
	fs.StringVar(&mediatorID, "mediator", "", "with -network, the mediator `ID` to ask (default the first)")
	fs.StringVar(&cfgPath, "c", "", "the mediator's configuration `FILE`")
	fs.StringVar(&dir, "dir", "", "a mediator's data `DIR`, audited offline")
	fs.StringVar(&format, "format", "text", "output `format`: text or json")
	fs.StringVar(&htmlFile, "html", "", "also write the report as a self-contained HTML `FILE`")
	fs.DurationVar(&wait, "wait", 0, "with -network or -c, keep trying to reach the mediator for up to `DURATION`")
	fs.StringVar(&now, "now", "", "RFC 3339 `TIME` at which deadlines are judged (default now)")
	if _, err := env.parseFlags(fs, auditUsage, args); err != nil {
		return err
	}
	sources := 0
	for _, s := range []string{networkFile, cfgPath, dir} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return usageErrorf("give exactly one of -network, -c and -dir")
	}
	if format != "text" && format != "json" {
		return usageErrorf("-format: got %q, want text or json", format)
	}
	at, err := parseTimeFlag("now", now, time.Now())
	if err != nil {
		return err
	}
	var rep *mediator.Report
	switch {
	case dir != "":
		rep, err = mediator.AuditDir(dir, at)
	case cfgPath != "":
		var src *reportSource
		if src, err = sourceFromConfig(cfgPath); err == nil {
			rep, err = src.fetchWaiting(ctx, at, now != "", wait)
		}
	default:
		var src *reportSource
		if src, err = sourceFromNetwork(networkFile, mediatorID); err == nil {
			rep, err = src.fetchWaiting(ctx, at, now != "", wait)
		}
	}
	if err != nil {
		return err
	}
	env.Logger.DebugContext(ctx, "audited", "mediator", rep.Mediator, "entries", rep.Entries, "result", rep.Result)
	if format == "json" {
		err = rep.WriteJSON(env.Stdout)
	} else {
		err = rep.WriteText(env.Stdout)
	}
	if err != nil {
		return err
	}
	if htmlFile != "" {
		if err := writeHTMLReport(htmlFile, rep); err != nil {
			return err
		}
	}
	if rep.Misbehaviour {
		return exitError{exitMisbehaviour, fmt.Errorf("evidence of misbehaviour: %d piece(s), see the report", len(rep.Evidence))}
	}
	return nil
}

// writeHTMLReport writes rep's HTML page to path.
func writeHTMLReport(path string, rep *mediator.Report) error {
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("couldn't write the HTML report: %w", err)
	}
	return nil
}

// reportSource is a running mediator to ask for a report, and the
// certificate to ask with.
type reportSource struct {
	agreementFile, certFile, keyFile string
	mediator                         string
	// url is the mediator's base URL (its witness endpoint).
	url string
}

// sourceFromNetwork reads a network.json as "parley demo --dir" writes it.
func sourceFromNetwork(path, id string) (*reportSource, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the network description: %w", err)
	}
	var doc struct {
		Agreement string `json:"agreement_file"`
		Mediators []struct {
			ID       string `json:"id"`
			Address  string `json:"witness_address"`
			CertFile string `json:"cert_file"`
			KeyFile  string `json:"key_file"`
		} `json:"mediators"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("couldn't decode %s: %w", path, err)
	}
	for _, m := range doc.Mediators {
		if id == "" || m.ID == id {
			return &reportSource{agreementFile: doc.Agreement, certFile: m.CertFile, keyFile: m.KeyFile, mediator: m.ID, url: "https://" + m.Address}, nil
		}
	}
	if id == "" {
		return nil, fmt.Errorf("%s lists no mediator", path)
	}
	return nil, fmt.Errorf("%s lists no mediator %q", path, id)
}

// sourceFromConfig returns the mediator of a configuration file.
func sourceFromConfig(path string) (*reportSource, error) {
	c, err := config.LoadMediator(path)
	if err != nil {
		return nil, err
	}
	f, err := agreement.Load(c.Agreement)
	if err != nil {
		return nil, err
	}
	m, ok := f.Agreement.Mediator(c.ID)
	if !ok {
		return nil, fmt.Errorf("%q is not a mediator of agreement %q", c.ID, f.Agreement.ID)
	}
	return &reportSource{agreementFile: c.Agreement, certFile: c.TLS.Cert, keyFile: c.TLS.Key, mediator: c.ID, url: m.WitnessEndpoint}, nil
}

// fetchWaiting is fetch, tried again for up to wait while the mediator
// cannot be reached (it may be starting).
func (s *reportSource) fetchWaiting(ctx context.Context, now time.Time, setNow bool, wait time.Duration) (*mediator.Report, error) {
	deadline := time.Now().Add(wait)
	for {
		rep, err := s.fetch(ctx, now, setNow)
		var unreachable *url.Error
		if err == nil || !errors.As(err, &unreachable) || time.Now().After(deadline) {
			return rep, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// fetch asks the mediator for a fresh report over mutual TLS.
func (s *reportSource) fetch(ctx context.Context, now time.Time, setNow bool) (*mediator.Report, error) {
	f, err := agreement.Load(s.agreementFile)
	if err != nil {
		return nil, err
	}
	hc, err := config.MediatorClient(f.Agreement, s.certFile, s.keyFile, s.mediator, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	defer hc.CloseIdleConnections()
	if !setNow {
		now = time.Time{}
	}
	body, err := mediator.RequestAudit(ctx, hc, s.url, now)
	if err != nil {
		return nil, fmt.Errorf("mediator %s: %w", s.mediator, err)
	}
	defer body.Close()
	rep, err := mediator.ReadReport(body)
	if err != nil {
		return nil, err
	}
	if rep.Agreement.ID != f.Agreement.ID {
		return nil, errors.New("the mediator's report is for another agreement")
	}
	return rep, nil
}
