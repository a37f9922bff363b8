package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/parley-dev/parley/internal/chaos"
)

const chaosUsage = `Usage: parley chaos [-duration D] [-seed N] [-json FILE] [-dir DIR]
                    [-clients N] [-pause D] [-fault-interval D] [-max-down D] [-reconverge D]

Chaos runs a local network of three parties and a mediator, each node and
the mediator a separate process of this binary ("parley node", "parley
mediator"), under continuous load from operator clients for -duration. At
random moments, chosen from -seed, it kills a node or the mediator with
SIGKILL and restarts it after a while, or cuts the link between two nodes
(both directions) and restores it: every node reaches its peers only
through loopback TCP proxies the harness controls (exchange.peer_overrides).

When the time is up it ends the faults, waits (at most -reconverge) for the
network to reconverge, and checks: every notification acknowledged to a
client is in every party's log exactly once with the acknowledged digest;
every log holds the same feeds, without holes; every checkpoint fetched
during the run is consistent with every earlier one (consistency proofs);
no node holds evidence of misbehaviour, which would be false since nobody
misbehaves; the mediator's audit reports no evidence, no feed, log or
receipt finding and no problem.

It prints the figures (operations, kills, partitions, entries acknowledged,
entries lost, false evidence, time to reconverge after the last fault) and,
with -json, writes them to FILE. It exits with status 1 if anything was lost
or wrong; the processes' logs are then kept (in DIR, or a temporary
directory named in the output). docs/reliability.md describes the harness
and its results.
`

func init() {
	commands["chaos"] = &command{
		summary: "run a local network under load, crashes and partitions, and check nothing is lost",
		usage:   chaosUsage,
		run:     runChaos,
	}
}

func runChaos(ctx context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("chaos")
	cfg := chaos.Config{Logger: env.Logger, Progress: env.Stderr}
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long load and faults last")
	seed := fs.Int64("seed", 0, "seed of the faults' choice and timing (default: from the clock, printed)")
	jsonFile := fs.String("json", "", "also write the figures as JSON to `FILE`")
	dir := fs.String("dir", "", "keep the network's files, data and process logs in `DIR` (new or empty; default a temporary directory, removed if the run passes)")
	fs.IntVar(&cfg.Clients, "clients", 2, "concurrent operator clients per party")
	fs.DurationVar(&cfg.Pause, "pause", 50*time.Millisecond, "pause of each client between two submissions")
	fs.DurationVar(&cfg.FaultInterval, "fault-interval", 3*time.Second, "mean time between two faults")
	fs.DurationVar(&cfg.MaxDown, "max-down", 4*time.Second, "longest a process stays down or a link cut")
	fs.DurationVar(&cfg.Reconverge, "reconverge", 3*time.Minute, "bound on the wait for reconvergence after the faults")
	pos, err := env.parseFlags(fs, chaosUsage, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	if cfg.Duration <= 0 || cfg.FaultInterval <= 0 || cfg.MaxDown <= 0 || cfg.Reconverge <= 0 {
		return usageErrorf("-duration, -fault-interval, -max-down and -reconverge must be positive")
	}
	cfg.MinDown = min(500*time.Millisecond, cfg.MaxDown)
	cfg.Seed = uint64(*seed)
	if *seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.Binary, err = os.Executable(); err != nil {
		return fmt.Errorf("couldn't find this executable, which runs the nodes: %w", err)
	}
	keep := *dir != ""
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "parley-chaos-"); err != nil {
			return fmt.Errorf("couldn't make a temporary directory: %w", err)
		}
	} else if entries, err := os.ReadDir(*dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("directory %s is not empty; give a new or empty directory", *dir)
	}
	cfg.Dir = *dir
	fmt.Fprintf(env.Stderr, "chaos: seed %d, %s of load and faults, files in %s\n", cfg.Seed, cfg.Duration, cfg.Dir)
	res, err := chaos.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w (files kept in %s)", err, cfg.Dir)
	}
	if err := res.WriteText(env.Stdout); err != nil {
		return err
	}
	if *jsonFile != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return fmt.Errorf("couldn't encode the figures: %w", err)
		}
		if err := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("couldn't write the figures: %w", err)
		}
	}
	if !res.OK() {
		return fmt.Errorf("%d problem(s), see above; the processes' logs are in %s", len(res.Problems), cfg.Dir)
	}
	if !keep {
		if err := os.RemoveAll(cfg.Dir); err != nil {
			return fmt.Errorf("couldn't remove %s: %w", cfg.Dir, err)
		}
	}
	return nil
}
