package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parley-dev/parley/internal/bench"
)

func init() {
	commands["bench"] = &command{
		summary: "measure a local network against a bare gRPC baseline",
		usage: `Usage: parley bench [-parties N] [-mediators N] [-concurrency N] [-duration D] [-json FILE] [-dir DIR]

Starts networks on loopback, each party's node and each mediator a separate
process of this binary, every node with a durable, fsynced log witnessed by
the mediators; drives them with concurrent operator clients over mutual TLS;
and drives a bare grpc-go mutual TLS echo server with the same clients, the
same certificates and the same concurrency as the baseline, in the same run.
The nodes' per-party rate limits are lifted, so that capacity is measured.

Phases (-phases): accept (Submit until durable at one node vs the echo),
exchange (notifications fully exchanged among all parties: held by every
node and receipted by every counterpart), idle (one notification at a time:
until every receipt, until a witnessed checkpoint), scale (the exchange
phase for each network size of -scale) and, only when asked for, restart
(one node's memory and start-up time with a log of -restart-entries
entries, one ListFindings over that log, and the mediator's peak RSS
auditing it). Where the nodes do not exchange, the exchange figures are
reported as not available.

Prints a table to standard output and, with -json, writes every figure to
FILE; a progress line goes to standard error every second. Each measurement
lasts -duration; a full run takes several times that. docs/performance.md
explains the figures.
`,
		run: runBench,
	}
}

func runBench(ctx context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("bench")
	parties := fs.Int("parties", 3, "parties of the accept, exchange and idle networks (at least 2)")
	mediators := fs.Int("mediators", 1, "mediators, each witnessing every node's log (0 for none)")
	concurrency := fs.Int("concurrency", 16, "concurrent operator clients, one connection each")
	duration := fs.Duration("duration", 20*time.Second, "how long each measurement drives load")
	jsonFile := fs.String("json", "", "write the report as JSON to `FILE`")
	dir := fs.String("dir", "", "keep every network's files, data and logs in `DIR` (new or empty; default: a temporary directory, removed at the end)")
	interval := fs.Duration("checkpoint-interval", time.Second, "checkpoint interval of every node")
	scale := fs.String("scale", "3,5,9", "network sizes of the scale phase, comma-separated")
	phases := fs.String("phases", "", "phases to run, comma-separated: accept, exchange, idle, scale, restart (default all but restart, which -restart-entries adds)")
	window := fs.Int("window", 4096, "most notifications in flight but not yet fully exchanged")
	samples := fs.Int("idle-samples", 30, "notifications sent one at a time in the idle phase")
	restartEntries := fs.Int("restart-entries", 0, "run the restart phase with a log of `N` entries (default 1,000,000 if -phases names restart)")
	cpuProfile := fs.Bool("cpuprofile", false, "save a CPU profile of every loaded node during each load in DIR/profiles (needs -dir)")
	serveEcho := fs.String("serve-echo", "", "internal: serve the echo baseline on `ADDR` with the TLS configuration of -c's node, until interrupted")
	nodeConfig := fs.String("c", "", "internal, with -serve-echo: the node configuration `file` whose certificate and CAs the echo server uses")
	pos, err := env.parseFlags(fs, commands["bench"].usage, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	if *serveEcho != "" {
		if *nodeConfig == "" {
			return usageErrorf("-serve-echo needs -c")
		}
		return bench.ServeEcho(ctx, *serveEcho, *nodeConfig, env.Logger)
	}
	cfg := bench.Config{
		Parties: *parties, Mediators: *mediators, Concurrency: *concurrency, Duration: *duration,
		CheckpointInterval: *interval, Window: *window, IdleSamples: *samples, RestartEntries: *restartEntries,
		CPUProfile: *cpuProfile, Progress: env.Stderr, Logger: env.Logger,
		Scale: []int{},
	}
	for s := range strings.SplitSeq(*scale, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return usageErrorf("invalid -scale %q: want comma-separated party counts", *scale)
		}
		cfg.Scale = append(cfg.Scale, n)
	}
	for p := range strings.SplitSeq(*phases, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Phases = append(cfg.Phases, bench.Phase(p))
		}
	}
	if len(cfg.Scale) == 0 {
		if len(cfg.Phases) == 0 {
			cfg.Phases = without(bench.Phases, bench.PhaseScale)
			if *restartEntries == 0 {
				cfg.Phases = without(cfg.Phases, bench.PhaseRestart)
			}
		} else if cfg.Phases = without(cfg.Phases, bench.PhaseScale); len(cfg.Phases) == 0 {
			return usageErrorf("no phases to run: -scale is empty")
		}
	}
	if cfg.Binary, err = os.Executable(); err != nil {
		return fmt.Errorf("couldn't find this executable, which runs the nodes: %w", err)
	}
	if *cpuProfile && *dir == "" {
		return usageErrorf("-cpuprofile needs -dir, where the profiles are kept")
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "parley-bench-")
		if err != nil {
			return fmt.Errorf("couldn't make a temporary directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	} else if entries, err := os.ReadDir(*dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("directory %s is not empty; give a new or empty directory", *dir)
	}
	cfg.Dir = *dir
	report, runErr := bench.Run(ctx, cfg)
	if report == nil {
		return runErr
	}
	if err := report.WriteTable(env.Stdout); err != nil {
		return fmt.Errorf("couldn't print the report: %w", err)
	}
	if *jsonFile != "" {
		b, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return fmt.Errorf("couldn't encode the report: %w", err)
		}
		if err := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("couldn't write the report: %w", err)
		}
	}
	return runErr
}

func without(ps []bench.Phase, p bench.Phase) []bench.Phase {
	var out []bench.Phase
	for _, q := range ps {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}
