package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/server"
)

func init() {
	commands["node"] = &command{
		summary: "run a party's node",
		usage: `Usage: parley node -c node.yaml

Runs a party's node: the gRPC services over mutual TLS, the exchange log and
its witnessed checkpoints and, if tiles_listen is set, the log's tiles
(C2SP tlog-tiles) over HTTPS with the same mutual TLS. The node refuses to
start unless every party has signed the agreement. A new node waits until a
quorum of the agreement's witnesses has cosigned its log's first checkpoint.
If admin_listen is set, it serves metrics, pprof and channelz on that
loopback address. SIGHUP makes it reload its certificate and CRLs, which it
also does when their files change. It runs until interrupted (SIGINT or
SIGTERM), then drains its streams and stops.

The configuration file is YAML, decoded strictly; docs/configuration.md
lists every field.
`,
		run: runNode,
	}
}

func runNode(ctx context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("node")
	cfgPath := fs.String("c", "node.yaml", "node configuration `file`")
	if _, err := env.parseFlags(fs, commands["node"].usage, args); err != nil {
		return err
	}
	c, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	ownGC := tuneGC(env.Logger, nodeGCPercent, nodeMemoryLimit)
	if c.LogLevel != "" && env.level.Level() != slog.LevelDebug { // -v wins
		env.level.Set(c.Level())
	}
	scfg, err := c.Build(ctx, env.Logger)
	if err != nil {
		return err
	}
	if ownGC {
		scfg.Evaluating = evaluationGC
	}
	node, err := server.New(ctx, scfg)
	if err != nil {
		return err
	}
	defer node.Close()
	l, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("couldn't listen on %s: %w", c.Listen, err)
	}
	var tl, al net.Listener
	if c.TilesListen != "" {
		if tl, err = net.Listen("tcp", c.TilesListen); err != nil {
			_ = l.Close()
			return fmt.Errorf("couldn't listen on %s for tiles: %w", c.TilesListen, err)
		}
	}
	if c.AdminListen != "" {
		if al, err = net.Listen("tcp", c.AdminListen); err != nil {
			_ = l.Close()
			if tl != nil {
				_ = tl.Close()
			}
			return fmt.Errorf("couldn't listen on %s for the admin port: %w", c.AdminListen, err)
		}
	}
	// The tile and admin servers stop with the node: when Serve returns
	// (interrupted, or the node failed), gctx ends.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := node.Serve(gctx, l)
		if err == nil {
			err = context.Canceled // stop the other servers too
		}
		return err
	})
	if tl != nil {
		g.Go(func() error { return node.ServeTiles(gctx, tl) })
	}
	if al != nil {
		g.Go(func() error { return node.ServeAdmin(gctx, al) })
	}
	// SIGHUP reloads the certificate and CRLs at once; the node also
	// reloads them when their files change.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				env.Logger.InfoContext(gctx, "SIGHUP: reloading the certificate and CRLs")
				_ = node.Reload() // logged by the node; the old ones stay in force
			}
		}
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// The node's garbage collection, unless GOGC or GOMEMLIMIT say otherwise:
// the heap may grow to four times what is live between collections instead
// of Go's two, which halves their number under load (the collector took
// about 5 % of a loaded node's CPU), with a soft limit that keeps the
// process well under the 200 MiB the node is meant to stay within: near it,
// the collector runs as often as it must.
const (
	nodeGCPercent   = 300
	nodeMemoryLimit = 150 << 20
	// While the rules are evaluated over the log, which holds what they
	// read of every entry (about 330 bytes live for phase restart's
	// notifications), the soft limit is raised by evaluationBytes per
	// entry, a little less than that, and the heap may grow by half what is
	// live (evaluationGCPercent), so that the peak stays about where the
	// limit put it and the collector, no longer past the limit, pauses
	// between cycles. Over a million entries one evaluation took 12–15 s
	// and 24–30 CPU-seconds under the 150 MiB limit, 4 s and 6 with the
	// limit at 360–400 MiB, at the same peak (docs/performance-history.md).
	evaluationBytes     = 240
	evaluationGCPercent = 50
)

// evaluationGC tunes the collector for an evaluation of the rules over
// entries log entries (server.Config.Evaluating) and returns the function
// that puts it back.
func evaluationGC(entries uint64) func() {
	limit := debug.SetMemoryLimit(int64(nodeMemoryLimit) + int64(min(entries, 1<<40))*evaluationBytes)
	percent := debug.SetGCPercent(evaluationGCPercent)
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}
