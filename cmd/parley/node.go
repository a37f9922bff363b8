package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/server"
)

func init() {
	commands["node"] = &command{
		summary: "run a party's node",
		usage: `Usage: parley node -c node.yaml

Runs a party's node: the gRPC services over mutual TLS, the exchange log and
its witnessed checkpoints. The node refuses to start unless every party has
signed the agreement. It runs until interrupted (SIGINT or SIGTERM), then
drains its streams and stops.

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
	if c.LogLevel != "" && env.level.Level() != slog.LevelDebug { // -v wins
		env.level.Set(c.Level())
	}
	scfg, err := c.Build(ctx, env.Logger)
	if err != nil {
		return err
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
	return node.Serve(ctx, l)
}
