package e2e_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/chaos"
)

// TestChaos is the short chaos pass CI runs on every submission: three
// nodes and a mediator, each its own process, under load for 30 seconds
// while the harness kills and restarts them and cuts links between the
// nodes, then the checks of package chaos: nothing acknowledged lost, the
// same feeds everywhere exactly once, no fork, no false evidence, a clean
// audit. "parley chaos -duration 10m" is the long run (docs/reliability.md).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos pass: runs processes for about a minute; skipped with -short")
	}
	bin := parleyBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := chaos.Run(ctx, chaos.Config{
		Binary:        bin,
		Dir:           dir,
		Duration:      30 * time.Second,
		Seed:          10,
		FaultInterval: 2 * time.Second,
		MaxDown:       3 * time.Second,
		Reconverge:    3 * time.Minute,
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatalf("chaos.Run: %v", err)
	}
	var b strings.Builder
	_ = res.WriteText(&b)
	t.Log("\n" + b.String())
	if !res.OK() {
		logProcesses(t, dir)
		t.Fatalf("the chaos pass found %d problem(s): %s", len(res.Problems), strings.Join(res.Problems, "; "))
	}
	if res.NodeKills == 0 || res.MediatorKills == 0 || res.Partitions == 0 || res.Acknowledged == 0 {
		t.Errorf("got %d node kills, %d mediator kills, %d partitions and %d acknowledged entries; want some of each",
			res.NodeKills, res.MediatorKills, res.Partitions, res.Acknowledged)
	}
}

// logProcesses logs the tail of every process log under dir.
func logProcesses(t *testing.T, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*", "*.log"))
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		t.Logf("--- %s (last 4 KiB):\n%s", f, tail(b, 4<<10))
	}
}
