package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/parley-dev/parley/internal/localnet"
)

// runAuditStep asks the network's first mediator for a fresh audit report,
// prints it to out, and writes it as audit.html and audit.json into dir.
// ok is false when the report holds evidence of misbehaviour (the demo's
// scenario plants none) or has problems.
func runAuditStep(ctx context.Context, out io.Writer, net *localnet.Network, dir string) (ok bool, err error) {
	if len(net.MediatorIDs) == 0 {
		return false, fmt.Errorf("the network has no mediator to audit it")
	}
	m := net.Mediators[net.MediatorIDs[0]]
	src := &reportSource{agreementFile: net.AgreementFile, certFile: m.CertFile, keyFile: m.KeyFile, mediator: m.ID, url: "https://" + m.Address}
	rep, err := src.fetch(ctx, time.Now(), false)
	if err != nil {
		return false, err
	}
	if err := rep.WriteText(out); err != nil {
		return false, err
	}
	htmlPath := filepath.Join(dir, "audit.html")
	if err := writeHTMLReport(htmlPath, rep); err != nil {
		return false, err
	}
	f, err := os.Create(filepath.Join(dir, "audit.json"))
	if err != nil {
		return false, fmt.Errorf("couldn't write the JSON report: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("couldn't write the JSON report: %w", err)
	}
	fmt.Fprintf(out, "audit report written to %s and %s\n", htmlPath, filepath.Join(dir, "audit.json"))
	return !rep.Misbehaviour && len(rep.Problems) == 0, nil
}
