// Package chaos is Parley's chaos harness (issue 10): it runs a whole
// network on loopback, each party's node and each mediator as a separate OS
// process, under continuous load from operator clients, and meanwhile, at
// random (seeded) moments, kills nodes and the mediator with SIGKILL and
// restarts them, and cuts and restores the links between pairs of nodes
// through loopback TCP proxies it controls. When the time is up it stops
// the faults, waits (bounded) for the network to reconverge, and checks
// that nothing acknowledged was lost, that every log holds the same feeds
// exactly once, that no log forked, that no node holds evidence against an
// honest party and that the mediator's audit is clean.
//
// "parley chaos" runs it from the command line; internal/e2e runs a short
// pass on every submission.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
)

// Config describes one chaos run. Only Binary and Dir are required.
type Config struct {
	// Binary is the parley executable that runs the nodes and the
	// mediator. Required.
	Binary string
	// Dir receives the network's files, data and process logs. Required;
	// it should be new or empty.
	Dir string
	// Parties are the party ids. Default alpha, bravo, charlie.
	Parties []string
	// Duration is how long load and faults last. Default 60s.
	Duration time.Duration
	// Seed seeds the choice and timing of the faults. The same seed gives
	// the same sequence of choices; which of them can apply still depends
	// on timing (a node still restarting is not killed again).
	Seed uint64
	// Clients is how many concurrent operator clients submit at each
	// party's node. Default 2.
	Clients int
	// Pause is how long each client waits between two submissions.
	// Default 50ms.
	Pause time.Duration
	// FaultInterval is the mean time between the starts of two faults; the
	// actual gaps are uniform in [½, 1½] of it. Of every five faults, two
	// crash a node, one the mediator and two cut a link, in a random
	// order; a fault whose target is already down or cut is skipped.
	// Default 3s.
	FaultInterval time.Duration
	// MinDown and MaxDown bound how long a fault lasts: a killed process
	// stays down, a cut link stays cut, for a uniform time between them.
	// Defaults 500ms and 4s.
	MinDown, MaxDown time.Duration
	// Reconverge bounds the wait for the network to reconverge after the
	// last fault. Default 3m.
	Reconverge time.Duration
	// Logger receives the harness's events (faults, restarts). Default:
	// discard.
	Logger *slog.Logger
	// Progress, if set, receives a progress line every ProgressEvery
	// (default 10s).
	Progress      io.Writer
	ProgressEvery time.Duration
}

func (c *Config) setDefaults() error {
	if c.Binary == "" || c.Dir == "" {
		return errors.New("chaos: Binary and Dir are required")
	}
	if len(c.Parties) == 0 {
		c.Parties = []string{"alpha", "bravo", "charlie"}
	}
	if len(c.Parties) < 2 {
		return fmt.Errorf("chaos: got %d parties, want at least 2", len(c.Parties))
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Duration, 60*time.Second)
	def(&c.Pause, 50*time.Millisecond)
	def(&c.FaultInterval, 3*time.Second)
	def(&c.MinDown, 500*time.Millisecond)
	def(&c.MaxDown, 4*time.Second)
	def(&c.Reconverge, 3*time.Minute)
	def(&c.ProgressEvery, 10*time.Second)
	if c.MaxDown < c.MinDown {
		return fmt.Errorf("chaos: MaxDown %s is below MinDown %s", c.MaxDown, c.MinDown)
	}
	if c.Clients <= 0 {
		c.Clients = 2
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Result holds the figures of a run and what was found wrong. Its JSON
// form is what "parley chaos -json" writes.
type Result struct {
	Seed    uint64   `json:"seed"`
	Parties []string `json:"parties"`
	// Mediator says how the mediator ran: "process" (parley mediator,
	// killed and restarted like the nodes, its audit checked) or
	// "in-process witness" (when the binary has no mediator command).
	Mediator string `json:"mediator"`
	// DurationSeconds is how long load and faults lasted.
	DurationSeconds float64 `json:"duration_seconds"`

	// Operations is how many submissions the clients attempted;
	// Acknowledged how many the nodes acknowledged (each one entry that
	// must then be everywhere); Failed how many got an error (the node
	// down, or the connection cut: such an entry may or may not exist).
	Operations   int64 `json:"operations"`
	Acknowledged int   `json:"entries_acknowledged"`
	Failed       int64 `json:"submissions_failed"`

	// Kills counts SIGKILLs of nodes and mediators; NodeKills and
	// MediatorKills split it. Partitions counts cuts of a pair's link
	// (both directions). Restarts counts processes started again.
	Kills         int `json:"kills"`
	NodeKills     int `json:"node_kills"`
	MediatorKills int `json:"mediator_kills"`
	Partitions    int `json:"partitions"`
	// MaxRestartSeconds is the longest a killed node took from its
	// restart to answering health checks.
	MaxRestartSeconds float64 `json:"max_restart_seconds"`

	// Converged says the network reconverged within the bound, and
	// ReconvergeSeconds how long after the end of the last fault it did:
	// every log holding the same entries, every acknowledged entry,
	// every substantive entry receipted by every counterpart, and a
	// witnessed checkpoint covering the whole log.
	Converged         bool    `json:"converged"`
	ReconvergeSeconds float64 `json:"reconverge_seconds"`
	// LogEntries is the size of each party's log at the end.
	LogEntries map[string]int `json:"log_entries"`

	// Lost counts acknowledged entries missing from some log, or held
	// there with another digest. It must be 0.
	Lost int `json:"entries_lost"`
	// Duplicates counts entries held twice in one log; Divergent the
	// (sender, seq) on which two logs differ; Gaps the feeds with a hole.
	Duplicates int `json:"duplicates"`
	Divergent  int `json:"divergent"`
	Gaps       int `json:"gaps"`
	// Checkpoints is how many distinct checkpoints were fetched over the
	// run; ConsistencyProofs how many consistency proofs between
	// consecutive ones were verified; Forks how many failed, and
	// Regressions how often a node served a smaller checkpoint than
	// before.
	Checkpoints       int `json:"checkpoints"`
	ConsistencyProofs int `json:"consistency_proofs"`
	Forks             int `json:"forks"`
	Regressions       int `json:"regressions"`
	// FalseEvidence counts pieces of evidence of misbehaviour held by the
	// nodes or reported by the audit: no party misbehaves here, so every
	// one is false. It must be 0.
	FalseEvidence int `json:"false_evidence"`
	// Audit is the mediator's audit result ("clean", "violations",
	// "misbehaviour"; empty without a mediator process), and
	// AuditFindings its findings by rule. Findings of the notification
	// rules (VD.*) judge what the clients submitted, not the faults, and
	// are only reported.
	Audit         string         `json:"audit,omitempty"`
	AuditFindings map[string]int `json:"audit_findings,omitempty"`

	// Problems lists everything found wrong, each in one line.
	Problems []string `json:"problems"`
}

// OK reports whether the run found nothing wrong.
func (r *Result) OK() bool { return r.Converged && len(r.Problems) == 0 }

func (r *Result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// WriteText writes the figures for people to read.
func (r *Result) WriteText(w io.Writer) error {
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "chaos %s: seed %d, %d parties, mediator as %s, %.0fs of load and faults\n", verdict, r.Seed, len(r.Parties), r.Mediator, r.DurationSeconds)
	fmt.Fprintf(&b, "  operations            %d (failed %d)\n", r.Operations, r.Failed)
	fmt.Fprintf(&b, "  kills                 %d (nodes %d, mediator %d; slowest node restart %.1fs)\n", r.Kills, r.NodeKills, r.MediatorKills, r.MaxRestartSeconds)
	fmt.Fprintf(&b, "  partitions            %d\n", r.Partitions)
	fmt.Fprintf(&b, "  entries acknowledged  %d\n", r.Acknowledged)
	fmt.Fprintf(&b, "  entries lost          %d\n", r.Lost)
	fmt.Fprintf(&b, "  duplicates, divergent, gaps  %d, %d, %d\n", r.Duplicates, r.Divergent, r.Gaps)
	fmt.Fprintf(&b, "  checkpoints           %d fetched, %d consistency proofs verified, %d forks, %d regressions\n", r.Checkpoints, r.ConsistencyProofs, r.Forks, r.Regressions)
	fmt.Fprintf(&b, "  false evidence        %d\n", r.FalseEvidence)
	if r.Audit != "" {
		fmt.Fprintf(&b, "  audit                 %s %v\n", r.Audit, r.AuditFindings)
	}
	if r.Converged {
		fmt.Fprintf(&b, "  reconverged           %.1fs after the last fault\n", r.ReconvergeSeconds)
	} else {
		fmt.Fprintf(&b, "  reconverged           NO, not within the bound\n")
	}
	var sizes []string
	for _, p := range slices.Sorted(maps.Keys(r.LogEntries)) {
		sizes = append(sizes, fmt.Sprintf("%s %d", p, r.LogEntries[p]))
	}
	fmt.Fprintf(&b, "  log entries           %s\n", strings.Join(sizes, ", "))
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "  problem: %s\n", p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// harness is one run's state.
type harness struct {
	cfg Config
	log *slog.Logger
	net *localnet.Network
	res *Result

	nodes     map[string]*localnet.Process
	mediators map[string]*MediatorProcess
	witnesses *localnet.Running // in-process witnesses, when there is no mediator command
	links     map[string]map[string]*Proxy
	files     []*os.File
	readers   map[string]*client.Client // one operator client per party, for checks
	chains    map[string]*chain

	ledger ledger

	ops, failed atomic.Int64

	mu         sync.Mutex
	faulty     map[string]bool // targets under a fault: a party, "mediator/<id>" or "link/<a>/<b>"
	lastFault  time.Time       // end of the latest fault
	kills      int
	nodeKills  int
	medKills   int
	partitions int
	maxRestart time.Duration
}

// Run runs the chaos harness as cfg says and returns its figures. An
// error means the harness itself could not run (building the network,
// starting a process); what it found wrong is in the result's Problems.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	h := &harness{
		cfg: cfg, log: cfg.Logger,
		res:       &Result{Seed: cfg.Seed, LogEntries: map[string]int{}, Problems: []string{}},
		nodes:     map[string]*localnet.Process{},
		mediators: map[string]*MediatorProcess{},
		links:     map[string]map[string]*Proxy{},
		readers:   map[string]*client.Client{},
		chains:    map[string]*chain{},
		faulty:    map[string]bool{},
		ledger:    ledger{acked: map[localnet.EntryKey][32]byte{}},
	}
	defer h.teardown()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	h.run(ctx)
	h.res.DurationSeconds = time.Since(start).Round(100 * time.Millisecond).Seconds()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("chaos run interrupted: %w", err)
	}
	h.heal(ctx)
	h.awaitConvergence(ctx)
	h.check(ctx)
	return h.res, nil
}

// setup generates the network, puts a proxy on every directed link,
// and starts the mediators and the nodes.
func (h *harness) setup(ctx context.Context) error {
	net, err := localnet.Generate(ctx, localnet.Options{
		Dir:                h.cfg.Dir,
		Parties:            h.cfg.Parties,
		CheckpointInterval: 500 * time.Millisecond,
		Exchange:           config.Exchange{SyncInterval: "500ms", RelayDelay: "100ms", BackoffMax: "1s"},
	})
	if err != nil {
		return fmt.Errorf("couldn't generate the network: %w", err)
	}
	h.net = net
	h.res.Parties = net.PartyIDs
	for _, a := range net.PartyIDs {
		h.links[a] = map[string]*Proxy{}
		overrides := map[string]string{}
		for _, b := range net.PartyIDs {
			if a == b {
				continue
			}
			p, err := NewProxy(net.Parties[b].Address)
			if err != nil {
				return err
			}
			h.links[a][b] = p
			overrides[b] = p.Addr()
		}
		err := net.UpdateNodeConfig(a, func(c *config.Node) {
			c.Exchange.PeerOverrides = overrides
			c.Limits.RatePerParty = -1 // the load is the harness's own
			c.LogLevel = "warn"
		})
		if err != nil {
			return err
		}
	}

	if hasMediatorCommand(ctx, h.cfg.Binary) {
		h.res.Mediator = "process"
		for _, id := range net.MediatorIDs {
			out, err := h.logFile(filepath.Join(filepath.Dir(net.Mediators[id].ConfigFile), "mediator.log"))
			if err != nil {
				return err
			}
			m, err := StartMediator(ctx, net, h.cfg.Binary, id, out)
			if err != nil {
				return err
			}
			h.mediators[id] = m
		}
	} else {
		h.res.Mediator = "in-process witness"
		h.log.Warn("the parley binary has no mediator command: running the witnesses in this process, which are never killed, and no audit")
		if h.witnesses, err = net.StartWitnesses(ctx, h.log); err != nil {
			return fmt.Errorf("couldn't start the witnesses: %w", err)
		}
	}

	for _, id := range net.PartyIDs {
		out, err := h.logFile(filepath.Join(net.Dir, id, "node.log"))
		if err != nil {
			return err
		}
		p, err := net.StartProcess(ctx, h.cfg.Binary, id, out)
		if err != nil {
			return fmt.Errorf("couldn't start %s's node (its log: %s): %w", id, out.Name(), err)
		}
		h.nodes[id] = p
		c, err := net.Operator(ctx, id)
		if err != nil {
			return err
		}
		h.readers[id] = c
		h.chains[id] = &chain{party: id}
	}
	return nil
}

func (h *harness) logFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("couldn't open a process log: %w", err)
	}
	h.files = append(h.files, f)
	return f, nil
}

// teardown stops every process and proxy. The nodes stop first, while the
// mediators can still cosign their last checkpoints.
func (h *harness) teardown() {
	var wg sync.WaitGroup
	for _, p := range h.nodes {
		wg.Go(func() { _ = p.Stop() })
	}
	wg.Wait()
	for _, m := range h.mediators {
		wg.Go(m.Stop)
	}
	wg.Wait()
	if h.witnesses != nil {
		h.witnesses.Stop()
	}
	for _, c := range h.readers {
		_ = c.Close()
	}
	for _, m := range h.links {
		for _, p := range m {
			_ = p.Close()
		}
	}
	for _, f := range h.files {
		_ = f.Close()
	}
}

// run drives load, faults and checkpoint watching for the configured
// duration, and returns once every fault has ended.
func (h *harness) run(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, h.cfg.Duration)
	defer cancel()
	var load, faults, watch sync.WaitGroup
	for _, party := range h.net.PartyIDs {
		for i := range h.cfg.Clients {
			load.Go(func() { h.submit(lctx, party, i) })
		}
		watch.Go(func() { h.watch(lctx, party) })
	}
	faults.Go(func() { h.inject(lctx, ctx, &faults) })
	if h.cfg.Progress != nil {
		watch.Go(func() { h.progress(lctx) })
	}
	load.Wait()
	watch.Wait()
	faults.Wait()
}

// inject starts a fault at random moments until lctx ends; each fault
// ends on its own, in a goroutine of wg, under ctx.
func (h *harness) inject(lctx, ctx context.Context, wg *sync.WaitGroup) {
	rng := rand.New(rand.NewPCG(h.cfg.Seed, h.cfg.Seed^0x9e3779b97f4a7c15))
	var bag []faultKind
	for {
		gap := h.cfg.FaultInterval/2 + time.Duration(rng.Int64N(int64(h.cfg.FaultInterval)))
		select {
		case <-lctx.Done():
			return
		case <-time.After(gap):
		}
		down := h.cfg.MinDown + time.Duration(rng.Int64N(int64(h.cfg.MaxDown-h.cfg.MinDown)+1))
		if len(bag) == 0 {
			// Every five faults: two node crashes, a mediator crash and
			// two cuts, in a random order.
			bag = []faultKind{crashNode, crashNode, crashMediator, cutLink, cutLink}
			rng.Shuffle(len(bag), func(i, j int) { bag[i], bag[j] = bag[j], bag[i] })
		}
		kind := bag[0]
		bag = bag[1:]
		if kind == crashMediator && len(h.mediators) == 0 {
			kind = cutLink
		}
		pick := rng.Uint64()
		switch kind {
		case crashNode:
			party := h.net.PartyIDs[pick%uint64(len(h.net.PartyIDs))]
			if h.claim(party, true) {
				wg.Go(func() { h.crashNode(ctx, party, down) })
			}
		case crashMediator:
			ids := slices.Sorted(maps.Keys(h.mediators))
			id := ids[pick%uint64(len(ids))]
			if h.claim("mediator/"+id, false) {
				wg.Go(func() { h.crashMediator(ctx, id, down) })
			}
		default: // cutLink
			ps := h.net.PartyIDs
			i := pick % uint64(len(ps))
			j := (i + 1 + (pick>>32)%uint64(len(ps)-1)) % uint64(len(ps))
			a, b := min(ps[i], ps[j]), max(ps[i], ps[j])
			if h.claim("link/"+a+"/"+b, false) {
				wg.Go(func() { h.cut(a, b, down) })
			}
		}
	}
}

// faultKind is a kind of fault the harness injects.
type faultKind int

const (
	crashNode     faultKind = iota // SIGKILL a node, restart it later
	crashMediator                  // SIGKILL a mediator, restart it later
	cutLink                        // cut both directions between two nodes, restore later
)

// claim marks target as under a fault, unless it already is or, for a
// node, another node is down already (one node down at a time keeps two
// of three parties exchanging).
func (h *harness) claim(target string, node bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.faulty[target] {
		return false
	}
	if node {
		for t := range h.faulty {
			if _, ok := h.nodes[t]; ok {
				return false
			}
		}
	}
	h.faulty[target] = true
	return true
}

// release ends target's fault.
func (h *harness) release(target string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.faulty, target)
	h.lastFault = time.Now()
}

func (h *harness) crashNode(ctx context.Context, party string, down time.Duration) {
	defer h.release(party)
	p := h.nodes[party]
	h.log.Info("killing node", "party", party, "down", down.String())
	_ = p.Kill()
	h.mu.Lock()
	h.kills++
	h.nodeKills++
	h.mu.Unlock()
	time.Sleep(down)
	start := time.Now()
	err := p.Restart(ctx, h.net)
	if err != nil && ctx.Err() == nil {
		// Still starting, or it failed: give it longer, then start it
		// once more.
		h.log.Warn("node slow to restart", "party", party, "err", err)
		if err = h.net.WaitHealthy(ctx, party, 2*time.Minute); err != nil {
			_ = p.Kill()
			err = p.Restart(ctx, h.net)
		}
	}
	if err != nil {
		h.mu.Lock()
		h.res.problem("%s's node did not restart after a kill: %v", party, err)
		h.mu.Unlock()
		return
	}
	took := time.Since(start)
	h.mu.Lock()
	h.maxRestart = max(h.maxRestart, took)
	h.mu.Unlock()
	h.log.Info("node restarted", "party", party, "took", took.String())
}

func (h *harness) crashMediator(ctx context.Context, id string, down time.Duration) {
	defer h.release("mediator/" + id)
	m := h.mediators[id]
	h.log.Info("killing mediator", "mediator", id, "down", down.String())
	m.Kill()
	h.mu.Lock()
	h.kills++
	h.medKills++
	h.mu.Unlock()
	time.Sleep(down)
	var err error
	for range 3 {
		if err = m.Restart(ctx); err == nil {
			break
		}
		m.Kill()
	}
	if err != nil {
		h.mu.Lock()
		h.res.problem("mediator %s did not restart after a kill: %v", id, err)
		h.mu.Unlock()
	}
}

func (h *harness) cut(a, b string, down time.Duration) {
	defer h.release("link/" + a + "/" + b)
	h.log.Info("cutting link", "between", a, "and", b, "down", down.String())
	h.links[a][b].Cut()
	h.links[b][a].Cut()
	h.mu.Lock()
	h.partitions++
	h.mu.Unlock()
	time.Sleep(down)
	h.links[a][b].Restore()
	h.links[b][a].Restore()
}

// heal makes sure every link is up and every process answers, after the
// faults ended.
func (h *harness) heal(ctx context.Context) {
	for _, m := range h.links {
		for _, p := range m {
			p.Restore()
		}
	}
	for _, id := range h.net.PartyIDs {
		if err := h.net.WaitHealthy(ctx, id, time.Minute); err != nil {
			h.res.problem("%s's node is not healthy after the faults: %v", id, err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.res.Kills, h.res.NodeKills, h.res.MediatorKills = h.kills, h.nodeKills, h.medKills
	h.res.Partitions = h.partitions
	h.res.MaxRestartSeconds = h.maxRestart.Round(100 * time.Millisecond).Seconds()
	h.res.Operations, h.res.Failed = h.ops.Load(), h.failed.Load()
	h.res.Acknowledged = h.ledger.len()
	if h.lastFault.IsZero() {
		h.lastFault = time.Now()
	}
}

// progress writes a line every ProgressEvery until ctx ends.
func (h *harness) progress(ctx context.Context) {
	start := time.Now()
	t := time.NewTicker(h.cfg.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		faulty := slices.Sorted(maps.Keys(h.faulty))
		line := fmt.Sprintf("chaos: %s: %d acknowledged, %d failed; kills %d (mediator %d), partitions %d; now faulty: %s\n",
			time.Since(start).Round(time.Second), h.ledger.len(), h.failed.Load(), h.kills, h.medKills, h.partitions, strings.Join(faulty, " "))
		h.mu.Unlock()
		_, _ = io.WriteString(h.cfg.Progress, line)
	}
}
