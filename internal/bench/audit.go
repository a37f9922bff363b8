package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/mediator"
)

// auditTimeout bounds one mediator's audit of a large log on request.
const auditTimeout = 15 * time.Minute

// auditAll asks every mediator of n, one after the other, for a fresh
// audit report (GET /audit, with the mediator's own certificate, as
// "parley audit -network" does) and reads each report through without
// keeping it: each mediator syncs its mirror and audits the whole of it as
// it is. It returns how long the slowest took.
func (n *network) auditAll(ctx context.Context) (time.Duration, error) {
	bundle, err := config.TrustBundle(n.Agreement.Agreement)
	if err != nil {
		return 0, fmt.Errorf("couldn't build the trust bundle: %w", err)
	}
	var slowest time.Duration
	for _, id := range slices.Sorted(maps.Keys(n.Mediators)) {
		took, err := n.audit(ctx, bundle, id)
		if err != nil {
			return slowest, err
		}
		slowest = max(slowest, took)
	}
	return slowest, nil
}

// audit is auditAll for mediator id.
func (n *network) audit(ctx context.Context, bundle *certs.TrustBundle, id string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
	m := n.Mediators[id]
	kp, err := certs.LoadKeyPair(m.CertFile, m.KeyFile)
	if err != nil {
		return 0, fmt.Errorf("couldn't load mediator %s's certificate: %w", id, err)
	}
	tr := &http.Transport{TLSClientConfig: certs.ClientConfig(bundle, kp.Certificate, id), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+m.Address+mediator.AuditPath, nil)
	if err != nil {
		return 0, fmt.Errorf("couldn't ask mediator %s for an audit: %w", id, err)
	}
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("couldn't ask mediator %s for an audit: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("mediator %s answered %s: %s", id, resp.Status, bytes.TrimSpace(body))
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("couldn't read mediator %s's audit report: %w", id, err)
	}
	return time.Since(start), nil
}
