package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-dev/parley/client"
)

// fillConcurrency is how many clients fill the log in phase restart: more
// than a measurement uses, since only the rate matters there.
const fillConcurrency = 64

// fillTimeout bounds filling the log: the phase goes on with what it has.
const fillTimeout = time.Hour

// Restart is phase restart: a node's memory under sustained load and with
// a large log, and its start-up time with that log.
type Restart struct {
	// Entries is the log size the node restarted with.
	Entries int64 `json:"entries"`
	// FillSeconds is how long submitting them took, with FillConcurrency
	// clients; FillErrors counts failed submissions.
	FillSeconds     float64 `json:"fill_seconds"`
	FillConcurrency int     `json:"fill_concurrency"`
	FillErrors      int64   `json:"fill_errors"`
	// FilledRSSMiB is the peak RSS of the node that took every submission:
	// under sustained load, ending with the whole log.
	FilledRSSMiB float64 `json:"filled_peak_rss_mib"`
	// StartSeconds is from starting the node process with the full log
	// until it answers health checks as serving (reconcile included).
	StartSeconds float64 `json:"start_seconds"`
	// StartedRSSMiB is the peak RSS of the restarted node after start-up.
	StartedRSSMiB float64 `json:"started_peak_rss_mib"`
	// Load is acceptance at the restarted node, with Concurrency clients;
	// its peak RSS is with the large log.
	Load *Load `json:"load,omitempty"`
	// Findings is one ListFindings over the whole log at the restarted
	// node, after the load: what an operator's query costs with that log
	// (a metrics scrape's background evaluation reads it the same way but
	// keeps only the counts of the findings).
	Findings *FindingsCost `json:"findings,omitempty"`
	// FindingsLater is one ListFindings over the same log judged as of
	// findingsLater after the call, when every receipt the absent parties
	// owe is overdue: about two findings per entry, a list longer than
	// the log. Its peak RSS is its own (the peak is reset before it).
	FindingsLater *FindingsCost `json:"findings_later,omitempty"`
	// MediatorRSSMiB is the highest peak RSS of the phase's mediators, which
	// mirror the node's log as it grows and audit it (every minute, spaced
	// out when an audit takes long), and last audit the whole log when the
	// harness asks for a report (MediatorAuditSeconds): what a mediator
	// needs for that log. Zero without mediators. No target.
	MediatorRSSMiB float64 `json:"mediator_peak_rss_mib,omitempty"`
	// MediatorAuditSeconds is how long the slowest mediator took to answer
	// a request for an audit report (GET /audit) after the findings: a sync
	// and an audit of the whole log. MediatorAuditError says why it failed.
	MediatorAuditSeconds float64 `json:"mediator_audit_seconds,omitempty"`
	MediatorAuditError   string  `json:"mediator_audit_error,omitempty"`
	// Targets and whether they were met.
	RSSTarget   string `json:"rss_target"`
	RSSMet      bool   `json:"rss_met"`
	StartTarget string `json:"start_target"`
	StartMet    bool   `json:"start_met"`
}

// FindingsCost is what one evaluation of the agreed rules over a whole log
// cost the node.
type FindingsCost struct {
	// Seconds is from the call until the last page of findings; Count is
	// how many findings there were. Error is the call's error, if any.
	Seconds float64 `json:"seconds"`
	Count   int     `json:"count"`
	Error   string  `json:"error,omitempty"`
	// PeakRSSMiB is the node's peak RSS afterwards: the evaluation's own
	// peak, or the run's before it if that was higher.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// RSSMet is whether PeakRSSMiB is within the RSS target.
	RSSMet bool `json:"rss_met"`
}

// findingsTimeout bounds the whole-log evaluation of phase restart.
const findingsTimeout = 15 * time.Minute

// findingsLater is how far ahead FindingsLater is judged: past the
// agreement's receipt window (an hour by default).
const findingsLater = 2 * time.Hour

// restart is phase restart: the first party's node alone takes
// cfg.RestartEntries submissions (or as many as it takes in fillTimeout), is
// stopped and started again, and is measured under load.
func (r *runner) restart(ctx context.Context) (*Restart, error) {
	cfg := &r.cfg
	party := partyIDs(1)[0]
	n, err := startNetwork(ctx, cfg, filepath.Join(cfg.Dir, "restart"), cfg.Parties, []string{party})
	if err != nil {
		return nil, err
	}
	defer n.stop()
	res := &Restart{FillConcurrency: fillConcurrency, RSSTarget: "≤ 200 MiB", StartTarget: "≤ 2 s"}
	clients, err := n.operators(ctx, party, fillConcurrency)
	if err != nil {
		return nil, err
	}
	ops := submitOps(clients, party)
	var (
		done, failed atomic.Int64
		wg           sync.WaitGroup
		firstErr     atomic.Value
	)
	start := time.Now()
	fillCtx, cancel := context.WithTimeout(ctx, fillTimeout)
	defer cancel()
	stop := startProgress("restart: fill", start, fillTimeout, cfg.Progress, func() string {
		return fmt.Sprintf("entries %d/%d  errors %d", done.Load(), cfg.RestartEntries, failed.Load())
	})
	for _, o := range ops {
		wg.Go(func() {
			for done.Load() < int64(cfg.RestartEntries) && fillCtx.Err() == nil {
				octx, cancel := context.WithTimeout(fillCtx, opTimeout)
				err := o(octx)
				cancel()
				if err != nil {
					if fillCtx.Err() != nil {
						return
					}
					firstErr.CompareAndSwap(nil, err.Error())
					if failed.Add(1) > 1000 {
						return
					}
					continue
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	stop()
	closeAll(clients)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Entries, res.FillErrors, res.FillSeconds = done.Load(), failed.Load(), time.Since(start).Seconds()
	if res.FillErrors > 1000 {
		return res, fmt.Errorf("more than 1,000 submissions failed while filling the log, the first with: %v", firstErr.Load())
	}
	node := n.nodes[party]
	if rss, err := peakRSS(node.PID()); err == nil {
		res.FilledRSSMiB = float64(rss) / (1 << 20)
	}
	if err := node.Stop(); err != nil {
		return res, fmt.Errorf("couldn't stop node %s: %w", party, err)
	}
	t0 := time.Now()
	if err := node.Restart(ctx, n.Network); err != nil {
		return res, fmt.Errorf("couldn't restart node %s with %d entries: %w", party, res.Entries, err)
	}
	res.StartSeconds = time.Since(t0).Seconds()
	if rss, err := peakRSS(node.PID()); err == nil {
		res.StartedRSSMiB = float64(rss) / (1 << 20)
	}
	cs, err := n.operators(ctx, party, cfg.Concurrency)
	if err != nil {
		return res, err
	}
	defer closeAll(cs)
	res.Load, err = r.measure(ctx, "restart: load", "node "+party, submitOps(cs, party), n.procs()[:1])
	if err != nil {
		return res, err
	}
	peak := max(res.FilledRSSMiB, res.StartedRSSMiB, res.Load.Processes[0].PeakRSSMiB)
	res.RSSMet = peak <= 200 && peak > 0
	res.StartMet = res.StartSeconds <= 2
	res.Findings = findingsCost(ctx, cs[0], node.PID(), time.Time{}, cfg.Progress)
	if err := resetPeakRSS(node.PID()); err == nil { // elsewhere, the run's peak stands
		res.FindingsLater = findingsCost(ctx, cs[0], node.PID(), time.Now().Add(findingsLater), cfg.Progress)
	}
	if len(n.mediators) > 0 {
		stop := startProgress("restart: mediator audit", time.Now(), auditTimeout, cfg.Progress, func() string {
			return "the mediators audit the whole log"
		})
		took, err := n.auditAll(ctx)
		stop()
		res.MediatorAuditSeconds = took.Seconds()
		if err != nil {
			res.MediatorAuditError = err.Error()
		}
	}
	for _, m := range n.mediators {
		if rss, err := peakRSS(m.pid()); err == nil {
			res.MediatorRSSMiB = max(res.MediatorRSSMiB, float64(rss)/(1<<20))
		}
	}
	return res, nil
}

// findingsCost lists every finding of the log through c, judged as of
// asOf (zero: now), page by page without holding them, from a node whose
// process is pid.
func findingsCost(ctx context.Context, c *client.Client, pid int, asOf time.Time, progress io.Writer) *FindingsCost {
	ctx, cancel := context.WithTimeout(ctx, findingsTimeout)
	defer cancel()
	start := time.Now()
	res := &FindingsCost{}
	stop := startProgress("restart: findings", start, 0, progress, func() string {
		return fmt.Sprintf("evaluating the rules over the whole log; %d findings listed", res.Count)
	})
	for _, err := range c.FindingsSeq(ctx, "", "", asOf) {
		if err != nil {
			res.Error = err.Error()
			break
		}
		res.Count++
	}
	stop()
	res.Seconds = time.Since(start).Seconds()
	if rss, err := peakRSS(pid); err == nil {
		res.PeakRSSMiB = float64(rss) / (1 << 20)
	}
	res.RSSMet = res.PeakRSSMiB > 0 && res.PeakRSSMiB <= 200
	return res
}
