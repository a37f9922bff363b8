package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

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
	var slowest time.Duration
	for _, id := range slices.Sorted(maps.Keys(n.Mediators)) {
		took, err := n.audit(ctx, id)
		if err != nil {
			return slowest, err
		}
		slowest = max(slowest, took)
	}
	return slowest, nil
}

// audit is auditAll for mediator id.
func (n *network) audit(ctx context.Context, id string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
	m := n.Mediators[id]
	hc, err := config.MediatorClient(n.Agreement.Agreement, m.CertFile, m.KeyFile, id, 0)
	if err != nil {
		return 0, fmt.Errorf("mediator %s: %w", id, err)
	}
	defer hc.CloseIdleConnections()
	start := time.Now()
	body, err := mediator.RequestAudit(ctx, hc, "https://"+m.Address, time.Time{})
	if err != nil {
		return 0, fmt.Errorf("mediator %s: %w", id, err)
	}
	defer body.Close()
	if _, err := io.Copy(io.Discard, body); err != nil {
		return 0, fmt.Errorf("couldn't read mediator %s's audit report: %w", id, err)
	}
	return time.Since(start), nil
}
