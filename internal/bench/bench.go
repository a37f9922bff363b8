// Package bench is Parley's benchmark harness (parley bench): it starts
// whole networks on loopback, each party's node and each mediator a
// separate process of the parley binary, every node writing a durable,
// fsynced Tessera log whose checkpoints the mediators witness; drives them
// with concurrent operator clients over mutual TLS; and measures them
// against a bare grpc-go mutual TLS echo server driven by the same client
// code at the same concurrency in the same run.
//
// A run has up to five phases, each on a network of its own:
//
//   - accept: acceptance at one node (Submit until durable) against the echo
//     baseline; only that node runs, so the figure is acceptance alone.
//   - exchange: notifications submitted at every node until fully exchanged
//     (held by every node and receipted by every counterpart).
//   - idle: one notification at a time on an idle network: until the sender
//     holds every receipt, and until a witnessed checkpoint covers it.
//   - scale: the exchange phase for several network sizes.
//   - restart (opt-in): one node's memory under sustained load and with a
//     large log, and its start-up time with that log.
//
// Throughput and latency come from the clients; CPU time and peak RSS of
// every process from /proc (Linux only). docs/performance.md explains every
// figure and records the latest results.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/client"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// Phase names a part of a run.
type Phase string

// The phases, in the order a run takes them.
const (
	PhaseAccept   Phase = "accept"
	PhaseExchange Phase = "exchange"
	PhaseIdle     Phase = "idle"
	PhaseScale    Phase = "scale"
	PhaseRestart  Phase = "restart"
)

// Phases lists every phase in run order. A run takes all but
// PhaseRestart unless told otherwise.
var Phases = []Phase{PhaseAccept, PhaseExchange, PhaseIdle, PhaseScale, PhaseRestart}

// Config configures a run.
type Config struct {
	// Binary is the parley executable that runs the nodes (Binary node -c
	// FILE) and the echo baseline (Binary with EchoArgs). Required.
	Binary string
	// Dir receives every network's files, data and process logs, one
	// subdirectory per phase. Required; it should be on the file system
	// whose durability is measured (not tmpfs).
	Dir string
	// Parties is the number of parties of the accept, exchange and idle
	// networks. Default 3, at least 2.
	Parties int
	// Mediators is the number of mediators, each a process that witnesses,
	// mirrors and audits every node's log (quorum: all of them). Default 1;
	// 0 runs without witnesses.
	Mediators int
	// Concurrency is the number of concurrent operator clients, each with
	// its own connection. Default 16.
	Concurrency int
	// Duration is how long each measurement drives load. Default 20 s.
	Duration time.Duration
	// CheckpointInterval of every node. Default 1 s, the node's default.
	CheckpointInterval time.Duration
	// Window bounds the notifications submitted but not yet fully exchanged
	// in the exchange and scale phases, so that a backlog cannot grow
	// without end. Default 4096.
	Window int
	// IdleSamples is how many notifications the idle phase sends, one at a
	// time; it also stops after the longer of 2 × Duration and two
	// checkpoint intervals per sample (idleLimit). Default 30.
	IdleSamples int
	// ProbeTimeout is how long one notification may take to be fully
	// exchanged before the exchange figures are reported as not available.
	// Default 10 s.
	ProbeTimeout time.Duration
	// Scale lists the network sizes (parties) of the scale phase. Default
	// 3, 5 and 9.
	Scale []int
	// Phases selects the phases to run. Default: all of Phases but
	// PhaseRestart, which is added when RestartEntries is set.
	Phases []Phase
	// RestartEntries is the log size phase restart fills a node's log to
	// before restarting it. Default 1,000,000.
	RestartEntries int
	// CPUProfile saves a CPU profile of every loaded node during each load
	// (from its admin port's /debug/pprof) under Dir/profiles.
	CPUProfile bool
	// Progress receives a progress line every second. Optional.
	Progress io.Writer
	// Logger receives warnings. Default: discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	var errs []error
	if c.Binary == "" {
		errs = append(errs, errors.New("binary: required"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: required"))
	}
	if c.Parties == 0 {
		c.Parties = 3
	}
	if c.Parties < 2 {
		errs = append(errs, fmt.Errorf("parties: got %d, want at least 2", c.Parties))
	}
	if c.Mediators < 0 {
		errs = append(errs, fmt.Errorf("mediators: got %d, want 0 or more", c.Mediators))
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency: got %d, want at least 1", c.Concurrency))
	}
	if c.Duration == 0 {
		c.Duration = 20 * time.Second
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration: got %s, want a positive duration", c.Duration))
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = time.Second
	}
	if c.CheckpointInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("checkpoint interval: got %s, want at least 100ms", c.CheckpointInterval))
	}
	if c.Window == 0 {
		c.Window = 4096
	}
	if c.Window < 1 {
		errs = append(errs, fmt.Errorf("window: got %d, want at least 1", c.Window))
	}
	if c.IdleSamples == 0 {
		c.IdleSamples = 30
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 10 * time.Second
	}
	if c.Scale == nil {
		c.Scale = []int{3, 5, 9}
	}
	for _, n := range c.Scale {
		if n < 2 {
			errs = append(errs, fmt.Errorf("scale: got %d parties, want at least 2", n))
		}
	}
	if len(c.Phases) == 0 {
		c.Phases = slices.Clone(Phases[:len(Phases)-1])
		if c.RestartEntries > 0 {
			c.Phases = slices.Clone(Phases)
		}
	}
	if c.RestartEntries == 0 {
		c.RestartEntries = 1_000_000
	}
	if c.RestartEntries < 0 {
		errs = append(errs, fmt.Errorf("restart entries: got %d, want a positive count", c.RestartEntries))
	}
	for _, p := range c.Phases {
		if !slices.Contains(Phases, p) {
			errs = append(errs, fmt.Errorf("phases: unknown phase %q, want one of %v", p, Phases))
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Report is everything a run measured. It is written as JSON; WriteTable
// prints it for people.
type Report struct {
	// Machine is where the run happened.
	Machine Machine `json:"machine"`
	// Settings are the run's configuration.
	Settings Settings `json:"settings"`
	// Started is when the run started (UTC).
	Started time.Time `json:"started"`
	// Acceptance is phase accept, nil if not run.
	Acceptance *Acceptance `json:"acceptance,omitempty"`
	// Exchange is phase exchange, nil if not run.
	Exchange *Exchange `json:"exchange,omitempty"`
	// Idle is phase idle, nil if not run.
	Idle *Idle `json:"idle,omitempty"`
	// Scale is phase scale: one exchange measurement per network size.
	Scale []*Exchange `json:"scale,omitempty"`
	// Restart is phase restart, nil if not run.
	Restart *Restart `json:"restart,omitempty"`
	// Harness is the resource use of the harness process itself (the
	// clients) over the whole run.
	Harness *Process `json:"harness,omitempty"`
	// Profiles are the CPU profiles saved (Config.CPUProfile).
	Profiles []string `json:"profiles,omitempty"`
}

// Machine describes the machine of a run.
type Machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Kernel     string `json:"kernel"`
	FileSystem string `json:"file_system"`
	// LoadBefore and LoadAfter are the one-minute load averages when the
	// run started and ended: other work on the machine skews every figure.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// Settings are the configuration of a run, as reported.
type Settings struct {
	Parties              int      `json:"parties"`
	Mediators            int      `json:"mediators"`
	Concurrency          int      `json:"concurrency"`
	DurationSeconds      float64  `json:"duration_seconds"`
	CheckpointIntervalMS float64  `json:"checkpoint_interval_ms"`
	Window               int      `json:"window"`
	IdleSamples          int      `json:"idle_samples"`
	Scale                []int    `json:"scale"`
	Phases               []Phase  `json:"phases"`
	RestartEntries       int      `json:"restart_entries,omitempty"`
	Dir                  string   `json:"dir"`
	Notes                []string `json:"notes,omitempty"`
}

// Load is one closed-loop measurement: Concurrency clients each calling
// Submit again as soon as the previous call returned.
type Load struct {
	// Target is what was driven ("echo", "node alpha").
	Target string `json:"target"`
	// Concurrency is the number of clients.
	Concurrency int `json:"concurrency"`
	// Seconds is how long the load ran, until the last call returned.
	Seconds float64 `json:"seconds"`
	// Ops is how many calls succeeded; Errors how many failed, the first
	// of them in FirstError.
	Ops        int64  `json:"ops"`
	Errors     int64  `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	// Throughput is Ops per second.
	Throughput float64 `json:"ops_per_second"`
	// Latency is the distribution of successful calls, as the client saw it.
	Latency Latency `json:"latency"`
	// Processes is the server processes' resource use during the load.
	Processes []Process `json:"processes"`
	// Clients is the harness process's own use during the load (phase
	// accept), when the clients' cost per call is measured too.
	Clients *Process `json:"clients,omitempty"`
	// MachineBusy is the share of the machine's CPU time that was busy
	// during the load, every process on it included (/proc/stat; phase
	// accept): a target whose calls leave the cores idle while they wait
	// (for a disk's sync, say) gets less of them than its CPU per call
	// alone would say. Zero where /proc is not available.
	MachineBusy float64 `json:"machine_busy,omitempty"`
}

// Acceptance is phase accept: one node against the echo baseline.
type Acceptance struct {
	Echo *Load `json:"echo"`
	Node *Load `json:"node"`
	// Turns is how many times each target was driven: the measurement
	// alternates between the echo and the node, Duration ÷ Turns each
	// time, so that a change in the machine's speed during the phase
	// falls on both alike. Their figures are over all their turns.
	Turns int `json:"turns"`
	// Ratios are node divided by echo.
	Ratios Ratios `json:"node_to_echo"`
	// Target is the target; Met says whether it was reached.
	Target string `json:"target"`
	Met    bool   `json:"met"`
}

// Ratios compare a node with the baseline (node ÷ echo).
type Ratios struct {
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50"`
	P99        float64 `json:"p99"`
	CPUPer1000 float64 `json:"cpu_per_1000"`
	PeakRSS    float64 `json:"peak_rss"`
}

// Exchange is a run of notifications submitted at every node, each tracked
// until fully exchanged.
type Exchange struct {
	// Parties is the network size.
	Parties int `json:"parties"`
	// Available is false when the nodes do not exchange entries and receipts
	// (Reason says what was seen); only acceptance is then measured.
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	// Submit is the acceptance load at all nodes together (Concurrency
	// clients spread over the parties). Its latency is Submit until durable.
	Submit *Load `json:"submit,omitempty"`
	// Exchanged is how many notifications submitted during the load were
	// fully exchanged by its end, and ExchangedPerSecond that count over
	// the load's duration.
	Exchanged          int     `json:"exchanged"`
	ExchangedPerSecond float64 `json:"exchanged_per_second"`
	// Latency is from the start of Submit until fully exchanged.
	Latency Latency `json:"latency"`
	// Backlog is how many were still not fully exchanged after draining
	// for DrainSeconds.
	Backlog      int     `json:"backlog"`
	DrainSeconds float64 `json:"drain_seconds"`
	// Mismatches counts receipts acknowledging a seq with another digest.
	Mismatches int `json:"digest_mismatches"`
	// Holding is the result of comparing every node's feed heads at the end.
	Holding string `json:"holding,omitempty"`
	// Messages counts what each notification cost, network-wide.
	Messages Messages `json:"messages"`
	// Processes is each node's resource use from the start of the load to
	// the end of the drain; CPU per 1,000 notifications submitted.
	Processes []Process `json:"processes"`
	// Target is the target (for 3 parties); Met whether reached.
	Target string `json:"target,omitempty"`
	Met    bool   `json:"met"`
}

// Messages are log entries per notification, over every node's log.
type Messages struct {
	// Notifications is how many notifications the counts cover.
	Notifications int `json:"notifications"`
	// EntriesPerNotification is the entries added to all logs together.
	EntriesPerNotification float64 `json:"entries_per_notification"`
	// DeliveriesPerNotification is the entries a node received from another
	// node (delivered or pulled): the node-to-node messages.
	DeliveriesPerNotification float64 `json:"deliveries_per_notification"`
	// ReceiptsPerNotification is receipt entries written network-wide.
	ReceiptsPerNotification float64 `json:"receipts_per_notification"`
	// AcksPerReceipt is the receipts' mean batch size.
	AcksPerReceipt float64 `json:"acks_per_receipt"`
	// PeerMessagesPerNotification is the gRPC messages between nodes
	// (each direction counted: deliveries and their answers, pulls,
	// feed-head and checkpoint calls), from the nodes' metrics, and
	// DeliveredPerNotification the requests on Deliver streams, each
	// pushing one entry or several.
	PeerMessagesPerNotification float64 `json:"peer_messages_per_notification"`
	DeliveredPerNotification    float64 `json:"delivered_per_notification"`
}

// Idle is phase idle: one notification at a time.
type Idle struct {
	Parties int `json:"parties"`
	// Samples is how many notifications were sent.
	Samples int `json:"samples"`
	// Accepted is Submit until durable.
	Accepted Latency `json:"accepted"`
	// Receipted is Submit until the sender's node holds every counterpart's
	// receipt; nil with ReceiptReason when not available.
	Receipted     *Latency `json:"receipted,omitempty"`
	ReceiptReason string   `json:"receipt_reason,omitempty"`
	// Published is Submit until the sender's node serves a checkpoint
	// cosigned by the witness quorum that covers the entry, polled every
	// PollMS.
	Published            Latency `json:"published"`
	PollMS               float64 `json:"poll_ms"`
	CheckpointIntervalMS float64 `json:"checkpoint_interval_ms"`
	// Targets and whether they were met (p50 and p99 of Receipted; max of
	// Published against the interval + 50 ms).
	ReceiptTarget   string `json:"receipt_target"`
	ReceiptMet      bool   `json:"receipt_met"`
	PublishedTarget string `json:"published_target"`
	PublishedMet    bool   `json:"published_met"`
}

// runner is one run in progress.
type runner struct {
	cfg    Config
	report *Report
	// exchange is "" once the exchange is known to work, the reason it is
	// not available once known not to, and nil before a probe.
	exchange *string
}

// Run performs the phases of cfg and returns the report. On error the
// report holds what was measured before.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("invalid bench config: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("couldn't create %s: %w", cfg.Dir, err)
	}
	r := &runner{cfg: cfg, report: &Report{
		Machine: Machine{
			CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(),
			OS: runtime.GOOS + "/" + runtime.GOARCH, Kernel: kernel(), FileSystem: fsType(cfg.Dir),
			LoadBefore: loadAverage(),
		},
		Settings: Settings{
			Parties: cfg.Parties, Mediators: cfg.Mediators, Concurrency: cfg.Concurrency,
			DurationSeconds: cfg.Duration.Seconds(), CheckpointIntervalMS: ms(cfg.CheckpointInterval),
			Window: cfg.Window, IdleSamples: cfg.IdleSamples, Scale: cfg.Scale, Phases: cfg.Phases, Dir: cfg.Dir,
		},
		Started: time.Now().UTC(),
	}}
	if slices.Contains(cfg.Phases, PhaseRestart) {
		r.report.Settings.RestartEntries = cfg.RestartEntries
	}
	if r.report.Machine.FileSystem == "tmpfs" {
		note := fmt.Sprintf("%s is on tmpfs: fsync costs nothing there, so durability is not measured", cfg.Dir)
		r.report.Settings.Notes = append(r.report.Settings.Notes, note)
		cfg.logf(note)
	}
	if l := r.report.Machine.LoadBefore; l > 0.5*float64(runtime.NumCPU()) {
		note := fmt.Sprintf("load average %.1f on %d CPUs at the start: other work competes with the run", l, runtime.NumCPU())
		r.report.Settings.Notes = append(r.report.Settings.Notes, note)
		cfg.logf(note)
	}
	self := startUsage(selfProc())
	err := r.run(ctx)
	r.report.Machine.LoadAfter = loadAverage()
	if ps, uerr := self.finish(0); uerr == nil {
		r.report.Harness = &ps[0]
	}
	return r.report, err
}

func (r *runner) run(ctx context.Context) error {
	for _, p := range Phases {
		if !slices.Contains(r.cfg.Phases, p) {
			continue
		}
		var err error
		switch p {
		case PhaseAccept:
			r.report.Acceptance, err = r.acceptance(ctx)
		case PhaseExchange:
			r.report.Exchange, err = r.exchangePhase(ctx, "exchange", r.cfg.Parties)
		case PhaseIdle:
			r.report.Idle, err = r.idle(ctx)
		case PhaseScale:
			for _, n := range r.cfg.Scale {
				var x *Exchange
				x, err = r.exchangePhase(ctx, fmt.Sprintf("scale-%d", n), n)
				if x != nil {
					r.report.Scale = append(r.report.Scale, x)
				}
				if err != nil {
					break
				}
			}
		case PhaseRestart:
			r.report.Restart, err = r.restart(ctx)
		}
		if err != nil {
			return fmt.Errorf("phase %s: %w", p, err)
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// notification is the statement every benchmark client submits: a
// realistic activity notification, distinct per (party, worker, i).
func notification(party string, worker, i int) *parleyv1.ActivityNotification {
	start := time.Now().UTC().Truncate(time.Hour).AddDate(0, 0, 60)
	return &parleyv1.ActivityNotification{
		Designation:         fmt.Sprintf("Exercise %s %d-%d", party, worker, i),
		Type:                parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
		Purpose:             "training of units in defensive operations",
		ParticipatingStates: []string{party},
		LevelOfCommand:      "army corps",
		Start:               timestamppb.New(start),
		End:                 timestamppb.New(start.Add(10 * 24 * time.Hour)),
		Area:                &parleyv1.Area{PlaceNames: []string{"Training area North"}},
		Forces:              &parleyv1.Forces{Troops: 9500, BattleTanks: 120, Acvs: 300, Artillery: 90},
	}
}

// submitOps returns one closed-loop op per client, each submitting
// notifications of party.
func submitOps(cs []*client.Client, party string) []op {
	ops := make([]op, len(cs))
	for w, c := range cs {
		i := 0
		ops[w] = func(ctx context.Context) error {
			i++
			_, err := c.Notify(ctx, notification(party, w, i))
			return err
		}
	}
	return ops
}

// warm makes one call per client, so that TLS handshakes and the servers'
// first allocations happen before the measurement.
func warm(ctx context.Context, ops []op) error {
	for _, o := range ops {
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		err := o(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("warm-up call failed: %w", err)
		}
	}
	return nil
}

// measure drives ops for the configured duration and reports the load and
// the resource use of procs.
func (r *runner) measure(ctx context.Context, name, target string, ops []op, procs []proc) (*Load, error) {
	if err := warm(ctx, ops); err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	u := startUsage(procs...)
	res := drive(ctx, name, ops, nil, r.cfg.Duration, r.cfg.Progress)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ps, err := u.finish(res.ops)
	if err != nil {
		r.cfg.logf("couldn't read process figures", "err", err)
	}
	return loadOf(target, len(ops), res, ps), nil
}

// acceptTurns is how many turns the echo and the node each take in the
// acceptance phase: four of at least half a second each, or one if the
// measurement is shorter.
func acceptTurns(d time.Duration) int {
	if d < 2*time.Second {
		return 1
	}
	return 4
}

// target is one thing alternate drives.
type target struct {
	name, target string
	ops          []op
	procs        []proc
}

// alternate drives each of targets in turn, turns times, each time for
// Duration ÷ turns, and reports each over all its turns: operations,
// errors, latencies and CPU time summed, peak RSS the largest. A change in
// the machine's speed during the run (other work, a noisy neighbour) then
// falls on every target alike, which one measurement after the other does
// not promise. name heads its progress line.
func (r *runner) alternate(ctx context.Context, name string, turns int, targets []target) ([]*Load, error) {
	for _, t := range targets {
		if err := warm(ctx, t.ops); err != nil {
			return nil, fmt.Errorf("%s: %w", t.target, err)
		}
	}
	d := r.cfg.Duration / time.Duration(turns)
	sums := make([]loadResult, len(targets))
	procs := make([][]Process, len(targets))
	// The machine's busy and total CPU ticks during each target's turns.
	busy, total := make([]uint64, len(targets)), make([]uint64, len(targets))
	var machineErr error
	// One progress line for the whole alternation: a turn may be shorter
	// than drive's one-second lines. Only status is shared with it.
	var (
		mu     sync.Mutex
		status string
	)
	setStatus := func(turn int, now string) {
		var done []string
		for i, t := range targets {
			done = append(done, fmt.Sprintf("%s %d ops", t.target, sums[i].ops))
		}
		line := fmt.Sprintf("turn %d/%d: %s  (so far %s)", turn, turns, now, strings.Join(done, ", "))
		mu.Lock()
		status = line
		mu.Unlock()
	}
	setStatus(1, targets[0].target)
	stop := startProgress(name, time.Now(), time.Duration(len(targets))*r.cfg.Duration, r.cfg.Progress, func() string {
		mu.Lock()
		defer mu.Unlock()
		return status
	})
	defer stop()
	for turn := range turns {
		for i, t := range targets {
			setStatus(turn+1, t.target)
			// The harness too: its clients' cost per call is part of
			// what the two targets share the machine's cores with.
			u := startUsage(append(slices.Clone(t.procs), selfProc())...)
			busy0, total0, merr := machineCPU()
			res := drive(ctx, t.name, t.ops, nil, d, nil)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			busy1, total1, err := machineCPU()
			if merr = errors.Join(merr, err); merr != nil {
				if machineErr == nil {
					r.cfg.logf("no machine CPU figures for this phase", "err", merr)
				}
				machineErr = merr
			} else if busy1 >= busy0 && total1 > total0 {
				busy[i] += busy1 - busy0
				total[i] += total1 - total0
			}
			ps, err := u.finish(res.ops)
			if err != nil {
				r.cfg.logf("couldn't read process figures", "err", err)
			}
			sum := &sums[i]
			sum.ops += res.ops
			sum.errors += res.errors
			sum.elapsed += res.elapsed
			sum.hist.merge(&res.hist)
			if sum.firstErr == "" {
				sum.firstErr = res.firstErr
			}
			procs[i] = addProcesses(procs[i], ps)
		}
	}
	out := make([]*Load, len(targets))
	for i, t := range targets {
		for k := range procs[i] {
			p := &procs[i][k]
			p.CPUPer1000 = 0
			if sums[i].ops > 0 {
				p.CPUPer1000 = p.CPUSeconds / float64(sums[i].ops) * 1000
			}
		}
		n := len(procs[i]) - 1 // the harness is last
		out[i] = loadOf(t.target, len(t.ops), &sums[i], procs[i][:n:n])
		out[i].Clients = &procs[i][n]
		if total[i] > 0 {
			out[i].MachineBusy = float64(busy[i]) / float64(total[i])
		}
	}
	return out, nil
}

// addProcesses adds the figures of one turn, ps, to those of the turns
// before, sum (nil at first): CPU time summed, peak RSS the largest.
func addProcesses(sum, ps []Process) []Process {
	if sum == nil {
		return slices.Clone(ps)
	}
	for k := range min(len(sum), len(ps)) {
		sum[k].CPUSeconds += ps[k].CPUSeconds
		sum[k].PeakRSSMiB = max(sum[k].PeakRSSMiB, ps[k].PeakRSSMiB)
	}
	return sum
}

func loadOf(target string, concurrency int, res *loadResult, ps []Process) *Load {
	l := &Load{
		Target: target, Concurrency: concurrency, Seconds: res.elapsed.Seconds(),
		Ops: res.ops, Errors: res.errors, FirstError: res.firstErr,
		Latency: res.hist.latency(), Processes: ps,
	}
	if res.elapsed > 0 {
		l.Throughput = float64(res.ops) / res.elapsed.Seconds()
	}
	return l
}

// acceptance is phase accept: the first party's node alone, and the echo
// baseline with that node's certificate, each driven by the same clients.
func (r *runner) acceptance(ctx context.Context) (*Acceptance, error) {
	party := partyIDs(1)[0]
	n, err := startNetwork(ctx, &r.cfg, filepath.Join(r.cfg.Dir, "accept"), r.cfg.Parties, []string{party})
	if err != nil {
		return nil, err
	}
	defer n.stop()
	if err := n.startEcho(ctx, party); err != nil {
		return nil, err
	}
	var echoClients []*client.Client
	for range r.cfg.Concurrency {
		c, err := n.echoClient(ctx, party)
		if err != nil {
			closeAll(echoClients)
			return nil, err
		}
		echoClients = append(echoClients, c)
	}
	defer closeAll(echoClients)
	nodeClients, err := n.operators(ctx, party, r.cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	defer closeAll(nodeClients)
	turns := acceptTurns(r.cfg.Duration)
	profiled := r.startProfiles(ctx, n, "accept", []string{party})
	loads, err := r.alternate(ctx, "accept", turns, []target{
		{name: "accept: echo", target: "echo", ops: submitOps(echoClients, party), procs: []proc{{name: "echo", pid: n.echo.pid()}}},
		{name: "accept: node " + party, target: "node " + party, ops: submitOps(nodeClients, party), procs: n.procs()},
	})
	profiled()
	if err != nil {
		return nil, err
	}
	echo, node := loads[0], loads[1]
	a := &Acceptance{Echo: echo, Node: node, Turns: turns, Target: "node throughput ≥ 0.5 × echo throughput at the same concurrency"}
	a.Ratios = Ratios{
		Throughput: ratio(node.Throughput, echo.Throughput),
		P50:        ratio(node.Latency.P50, echo.Latency.P50),
		P99:        ratio(node.Latency.P99, echo.Latency.P99),
	}
	if len(node.Processes) > 0 && len(echo.Processes) > 0 {
		a.Ratios.CPUPer1000 = ratio(node.Processes[0].CPUPer1000, echo.Processes[0].CPUPer1000)
		a.Ratios.PeakRSS = ratio(node.Processes[0].PeakRSSMiB, echo.Processes[0].PeakRSSMiB)
	}
	a.Met = a.Ratios.Throughput >= 0.5
	return a, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// knowExchange probes n once per run for whether the nodes exchange.
func (r *runner) knowExchange(ctx context.Context, n *network) (string, error) {
	if r.exchange != nil {
		return *r.exchange, nil
	}
	reason, err := probe(ctx, n, r.cfg.ProbeTimeout)
	if err != nil {
		return "", fmt.Errorf("couldn't probe the exchange: %w", err)
	}
	r.exchange = &reason
	return reason, nil
}

// exchangePhase measures a network of parties parties with every node
// taking submissions; name is its directory and progress label.
func (r *runner) exchangePhase(ctx context.Context, name string, parties int) (*Exchange, error) {
	n, err := startNetwork(ctx, &r.cfg, filepath.Join(r.cfg.Dir, name), parties, nil)
	if err != nil {
		return nil, err
	}
	defer n.stop()
	reason, err := r.knowExchange(ctx, n)
	if err != nil {
		return nil, err
	}
	x := &Exchange{Parties: parties, Available: reason == "", Reason: reason}
	if parties == 3 {
		x.Target = "≥ 2,000 notifications/s fully exchanged among 3 parties"
	}
	if !x.Available && name == "exchange" {
		return x, nil // acceptance alone is phase accept's
	}
	if err := r.driveExchange(ctx, name, n, x); err != nil {
		return x, err
	}
	x.Met = x.Available && x.Target != "" && x.ExchangedPerSecond >= 2000
	return x, nil
}

// driveExchange submits notifications at every node of n, spreading the
// clients over the parties, and, when the exchange is available, tracks
// each until fully exchanged, keeping at most Window in flight.
func (r *runner) driveExchange(ctx context.Context, name string, n *network, x *Exchange) error {
	cfg := &r.cfg
	sem := make(chan struct{}, cfg.Window)
	var submitted atomic.Int64
	t := newTracker(n.order, func() { <-sem })
	stopWatch, err := t.watchAll(ctx, n)
	if err != nil {
		return err
	}
	defer stopWatch()
	var (
		ops     []op
		clients []*client.Client
	)
	defer func() { closeAll(clients) }()
	for w := range cfg.Concurrency {
		party := n.order[w%len(n.order)]
		c, err := n.operator(ctx, party)
		if err != nil {
			return err
		}
		clients = append(clients, c)
		i := 0
		ops = append(ops, func(ctx context.Context) error {
			i++
			start := time.Now()
			e, err := c.Notify(ctx, notification(party, w, i))
			if err != nil {
				if x.Available {
					<-sem
				}
				return err
			}
			submitted.Add(1)
			if x.Available {
				t.register(e, start, nil)
			}
			return nil
		})
	}
	var gate func(context.Context) error
	if x.Available {
		gate = func(ctx context.Context) error {
			select {
			case sem <- struct{}{}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	before, scrapeErr := n.scrapeAll(ctx)
	profiled := r.startProfiles(ctx, n, name, n.order)
	u := startUsage(n.procs()...)
	start := time.Now()
	res := drive(ctx, name, ops, gate, cfg.Duration, cfg.Progress)
	profiled()
	if err := ctx.Err(); err != nil {
		return err
	}
	end := time.Now()
	x.Submit = loadOf(fmt.Sprintf("%d nodes", len(n.order)), len(ops), res, nil)
	if x.Available {
		x.Exchanged = t.completedBy(end)
		x.ExchangedPerSecond = float64(x.Exchanged) / end.Sub(start).Seconds()
		x.Backlog, x.DrainSeconds = r.drain(ctx, name, t)
	} else {
		// Let the last entries reach the subscriptions.
		time.Sleep(2 * cfg.CheckpointInterval)
	}
	ps, err := u.finish(submitted.Load())
	if err != nil {
		cfg.logf("couldn't read process figures", "err", err)
	}
	x.Processes = ps
	if err := stopWatch(); err != nil {
		cfg.logf("subscription ended early", "err", err)
	}
	hist, _, counts, mismatches := t.snapshot()
	x.Latency, x.Mismatches = hist.latency(), mismatches
	heads, headsErr := allHeads(ctx, n)
	if headsErr != nil {
		cfg.logf("couldn't count the entries each node holds", "err", headsErr)
	}
	x.Messages = messagesOf(n.order, heads, counts, int(submitted.Load()))
	after, err := n.scrapeAll(ctx)
	if err = errors.Join(scrapeErr, err); err != nil {
		cfg.logf("couldn't count the messages between nodes", "err", err)
	} else if notes := float64(submitted.Load()); notes > 0 {
		d := after.minus(before)
		x.Messages.PeerMessagesPerNotification = (d.received + d.sent) / notes
		x.Messages.DeliveredPerNotification = d.delivered / notes
	}
	if x.Available {
		if headsErr != nil {
			x.Holding = headsErr.Error()
		} else {
			x.Holding = holding(n.order, heads)
		}
	}
	return nil
}

// drain waits until every tracked notification is fully exchanged, for at
// most the larger of 30 s and the load's duration. It returns the backlog
// left and how long it waited.
func (r *runner) drain(ctx context.Context, name string, t *tracker) (int, float64) {
	start := time.Now()
	limit := max(30*time.Second, r.cfg.Duration)
	stop := startProgress(name+" drain", start, limit, r.cfg.Progress, func() string {
		return fmt.Sprintf("backlog %d", t.pending())
	})
	defer stop()
	for {
		left := t.pending()
		if left == 0 || time.Since(start) > limit || ctx.Err() != nil {
			return left, time.Since(start).Seconds()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// messagesOf turns what each node holds (heads: its feed heads, each the
// number of that sender's entries it holds) and the receipts each received
// into costs per notification. notes counts the notifications submitted
// (warm-up calls included).
func messagesOf(nodes []string, heads map[string]map[string]uint64, counts map[string]logCounts, notes int) Messages {
	m := Messages{Notifications: notes}
	if notes == 0 {
		return m
	}
	var entries, foreign uint64
	for _, id := range nodes {
		for sender, seq := range heads[id] {
			entries += seq
			if sender != id {
				foreign += seq
			}
		}
	}
	first := counts[nodes[0]]
	m.EntriesPerNotification = float64(entries) / float64(notes)
	m.DeliveriesPerNotification = float64(foreign) / float64(notes)
	m.ReceiptsPerNotification = float64(first.receipts) / float64(notes)
	if first.receipts > 0 {
		m.AcksPerReceipt = float64(first.acks) / float64(first.receipts)
	}
	return m
}

// allHeads reads every node's feed heads: node → sender → the highest seq
// of that sender it holds.
func allHeads(ctx context.Context, n *network) (map[string]map[string]uint64, error) {
	heads := map[string]map[string]uint64{}
	for _, id := range n.order {
		h, err := feedHeads(ctx, n, id)
		if err != nil {
			return nil, err
		}
		heads[id] = h
	}
	return heads, nil
}

// holding checks, with every node's feed heads, that every node holds
// every sender's feed as far as the sender itself does.
func holding(nodes []string, heads map[string]map[string]uint64) string {
	var missing []string
	for _, s := range nodes {
		for _, id := range nodes {
			if got, want := heads[id][s], heads[s][s]; got < want {
				missing = append(missing, fmt.Sprintf("%s holds %s up to seq %d of %d", id, s, got, want))
			}
		}
	}
	if len(missing) > 0 {
		return "incomplete: " + strings.Join(missing, "; ")
	}
	return "every node holds every feed up to its sender's head"
}

// idlePoll is how often phase idle polls for a covering checkpoint.
const idlePoll = 5 * time.Millisecond

// idleLimit bounds phase idle: the longer of 2 × Duration and two
// checkpoint intervals per sample asked for. A sample takes about one and a
// half intervals (a pause of up to two, then up to one until a checkpoint
// covers it), so the samples asked for are all taken unless the network is
// slow, where 2 × Duration alone cut 30 samples to 22 at -duration 16s.
func idleLimit(cfg *Config) time.Duration {
	return max(2*cfg.Duration, time.Duration(cfg.IdleSamples)*2*cfg.CheckpointInterval)
}

// idle is phase idle: on a fresh network, one notification at a time from
// the first party, each after a random pause so that submissions fall
// anywhere in the checkpoint cycle.
func (r *runner) idle(ctx context.Context) (*Idle, error) {
	cfg := &r.cfg
	n, err := startNetwork(ctx, cfg, filepath.Join(cfg.Dir, "idle"), cfg.Parties, nil)
	if err != nil {
		return nil, err
	}
	defer n.stop()
	reason, err := r.knowExchange(ctx, n)
	if err != nil {
		return nil, err
	}
	res := &Idle{
		Parties: cfg.Parties, ReceiptReason: reason, PollMS: ms(idlePoll), CheckpointIntervalMS: ms(cfg.CheckpointInterval),
		ReceiptTarget:   "p50 ≤ 50 ms, p99 ≤ 150 ms",
		PublishedTarget: fmt.Sprintf("≤ checkpoint interval + 50 ms = %s", cfg.CheckpointInterval+50*time.Millisecond),
	}
	t := newTracker(n.order, nil)
	stopWatch, err := t.watchAll(ctx, n)
	if err != nil {
		return nil, err
	}
	defer stopWatch()
	sender := n.order[0]
	c, err := n.operator(ctx, sender)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	keys := n.LogKeys(sender)
	var accepted, published histogram
	start := time.Now()
	limit := idleLimit(cfg)
	var samples atomic.Int64
	stop := startProgress("idle", start, limit, cfg.Progress, func() string {
		return fmt.Sprintf("samples %d/%d", samples.Load(), cfg.IdleSamples)
	})
	defer stop()
	for i := 0; i < cfg.IdleSamples && time.Since(start) < limit; i++ {
		// A pause of up to two intervals since the last publication: about
		// half the samples find the last checkpoint fresh, so that the
		// next one waits for the interval, and half find it stale.
		pause := rand.N(2 * cfg.CheckpointInterval)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		done := make(chan struct{})
		t0 := time.Now()
		e, err := c.Notify(ctx, notification(sender, 0, i))
		if err != nil {
			return nil, fmt.Errorf("couldn't submit sample %d: %w", i, err)
		}
		accepted.add(time.Since(t0))
		if reason == "" {
			t.register(e, t0, done)
		}
		if err := awaitPublished(ctx, c, keys, e.GetIndex(), 10*time.Second+2*cfg.CheckpointInterval); err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		published.add(time.Since(t0))
		if reason == "" {
			select {
			case <-done:
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(10 * time.Second):
				return nil, fmt.Errorf("sample %d: not fully exchanged after 10s", i)
			}
		}
		samples.Add(1)
	}
	res.Samples = int(samples.Load())
	res.Accepted, res.Published = accepted.latency(), published.latency()
	if reason == "" {
		hist, _, _, _ := t.snapshot()
		l := hist.latency()
		res.Receipted = &l
		res.ReceiptMet = l.P50 <= 50 && l.P99 <= 150
	}
	res.PublishedMet = res.Published.Max <= ms(cfg.CheckpointInterval+50*time.Millisecond)
	return res, nil
}

// awaitPublished polls c's node until it serves a checkpoint that verifies
// against keys (node signature and witness quorum) and covers index.
func awaitPublished(ctx context.Context, c *client.Client, keys client.LogKeys, index uint64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last []byte
	for {
		resp, err := c.Log.GetCheckpoint(ctx, &parleyv1.GetCheckpointRequest{})
		if err == nil && string(resp.GetCheckpoint()) != string(last) {
			last = resp.GetCheckpoint()
			cp, err := client.VerifyCheckpoint(last, keys)
			if err != nil {
				return fmt.Errorf("checkpoint does not verify: %w", err)
			}
			if cp.Size > index {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no witnessed checkpoint covered index %d within %s", index, timeout)
		case <-time.After(idlePoll):
		}
	}
}
