package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"
)

// TestTuneGC checks the node's garbage-collection defaults and that GOGC
// and GOMEMLIMIT in the environment win over them, and that the mediator's
// leave the memory limit alone.
func TestTuneGC(t *testing.T) {
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// What the runtime read from the environment at start-up is not read
	// again: these stand in for it.
	const envPercent, envLimit = 100, 1 << 40
	for _, tc := range []struct {
		name, gogc, gomemlimit string
		wantPercent            int
		wantLimit              int64
	}{
		{"defaults", "", "", nodeGCPercent, nodeMemoryLimit},
		{"GOGC set", "50", "", envPercent, nodeMemoryLimit},
		{"GOMEMLIMIT set", "", "1TiB", nodeGCPercent, envLimit},
		{"both set", "off", "1TiB", envPercent, envLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.gogc)
			t.Setenv("GOMEMLIMIT", tc.gomemlimit)
			debug.SetGCPercent(envPercent)
			debug.SetMemoryLimit(envLimit)
			own := tuneGC(log, nodeGCPercent, nodeMemoryLimit)
			if want := tc.gomemlimit == "" && tc.gogc == ""; own != want {
				t.Errorf("tuneGC reported setting the limit %v, want %v", own, want)
			}
			if got := debug.SetGCPercent(100); got != tc.wantPercent {
				t.Errorf("GC percent %d, want %d", got, tc.wantPercent)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit %d, want %d", got, tc.wantLimit)
			}
		})
	}
	t.Run("evaluation", func(t *testing.T) {
		debug.SetMemoryLimit(nodeMemoryLimit)
		debug.SetGCPercent(nodeGCPercent)
		done := evaluationGC(1_000_000)
		if got, want := debug.SetMemoryLimit(-1), int64(nodeMemoryLimit+1_000_000*evaluationBytes); got != want {
			t.Errorf("memory limit %d during an evaluation of a million entries, want %d", got, want)
		}
		if got := debug.SetGCPercent(evaluationGCPercent); got != evaluationGCPercent {
			t.Errorf("GC percent %d during an evaluation, want %d", got, evaluationGCPercent)
		}
		done()
		if got := debug.SetMemoryLimit(-1); got != nodeMemoryLimit {
			t.Errorf("memory limit %d after the evaluation, want %d", got, nodeMemoryLimit)
		}
		if got := debug.SetGCPercent(100); got != nodeGCPercent {
			t.Errorf("GC percent %d after the evaluation, want %d", got, nodeGCPercent)
		}
		debug.SetMemoryLimit(envLimit)
	})
	t.Run("mediator", func(t *testing.T) {
		t.Setenv("GOGC", "")
		t.Setenv("GOMEMLIMIT", "")
		debug.SetGCPercent(envPercent)
		debug.SetMemoryLimit(envLimit)
		tuneGC(log, mediatorGCPercent, -1)
		if got := debug.SetGCPercent(100); got != mediatorGCPercent {
			t.Errorf("GC percent %d, want %d", got, mediatorGCPercent)
		}
		if got := debug.SetMemoryLimit(-1); got != envLimit {
			t.Errorf("memory limit %d, want %d (left alone)", got, int64(envLimit))
		}
	})
}
