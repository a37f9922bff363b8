package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// TestQuorumNotMetNotPublished runs alpha's node in this process with its
// one witness (quorum 1) started and stopped under it:
//
//   - a new node waits for its witness before it serves, since its log's
//     first checkpoint must be cosigned like every other;
//   - with the witness unreachable, submissions are still acknowledged
//     (durable, readable by seq) but no new checkpoint is published;
//   - once the witness is back, publication resumes with a checkpoint
//     consistent with the last one and covering every entry.
func TestQuorumNotMetNotPublished(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for witness timeouts; skipped with -short")
	}
	net := generate(t, localnet.Options{CheckpointInterval: 200 * time.Millisecond})
	logger := testLogger(t)
	ctx := context.Background()
	keys := net.LogKeys("alpha")
	// The node stops before the witness, so that it can have its last
	// checkpoint cosigned on the way out.
	var nodeRun, witnessRun *localnet.Running
	t.Cleanup(func() {
		if nodeRun != nil {
			nodeRun.Stop()
		}
		if witnessRun != nil {
			witnessRun.Stop()
		}
	})

	// A new node without its witness does not come up.
	type started struct {
		run *localnet.Running
		err error
	}
	nodes := make(chan started, 1)
	nodeCtx, cancelNode := context.WithCancel(ctx)
	defer cancelNode()
	go func() {
		run, err := net.StartNodes(nodeCtx, logger, "alpha")
		nodes <- started{run, err}
	}()
	select {
	case s := <-nodes:
		if s.run != nil {
			s.run.Stop()
		}
		t.Fatalf("StartNodes without a witness returned (%v), want it to wait for the witness", s.err)
	case <-time.After(2 * time.Second):
	}
	witnessRun, err := net.StartWitnesses(ctx, logger)
	if err != nil {
		t.Fatalf("StartWitnesses: %v", err)
	}
	var s started
	select {
	case s = <-nodes:
	case <-time.After(30 * time.Second):
		t.Fatal("node did not start within 30s of its witness")
	}
	if s.err != nil {
		t.Fatalf("StartNodes: %v", s.err)
	}
	nodeRun = s.run
	alpha := operator(t, net, "alpha")
	first, _ := awaitCheckpoint(t, alpha, keys, 0, 10*time.Second)
	if first.Size != 0 {
		t.Fatalf("first checkpoint has size %d, want 0", first.Size)
	}

	// With the witness, entries are published.
	submit := func(n int) []*parleyv1.LogEntry {
		t.Helper()
		var out []*parleyv1.LogEntry
		for i := range n {
			e, err := alpha.Notify(ctx, notification(i))
			if err != nil {
				t.Fatalf("Notify: %v", err)
			}
			out = append(out, e)
		}
		return out
	}
	submit(3)
	published, _ := awaitCheckpoint(t, alpha, keys, 3, 10*time.Second)

	// Without it, entries are acknowledged and durable, but not published.
	witnessRun.Stop()
	witnessRun = nil
	pending := submit(4)
	for _, e := range pending {
		got, err := alpha.Entry(ctx, "alpha", e.GetSeq())
		if err != nil || string(got.GetDigest()) != string(e.GetDigest()) {
			t.Fatalf("Entry(alpha, %d) with the witness down: got %v, %v; want the acknowledged entry", e.GetSeq(), got, err)
		}
	}
	time.Sleep(10 * 200 * time.Millisecond) // ten checkpoint intervals
	stalled, _, err := alpha.Checkpoint(ctx, keys)
	if err != nil {
		t.Fatalf("Checkpoint with the witness down: %v", err)
	}
	if stalled.Size != published.Size || string(stalled.Hash) != string(published.Hash) {
		t.Fatalf("with the witness down, got a checkpoint of size %d, want the last witnessed one, of size %d", stalled.Size, published.Size)
	}

	// Back to quorum: publication resumes, consistent with what came before.
	if witnessRun, err = net.StartWitnesses(ctx, logger); err != nil {
		t.Fatalf("StartWitnesses again: %v", err)
	}
	resumed, _ := awaitCheckpoint(t, alpha, keys, 7, 20*time.Second)
	if err := alpha.ProveConsistency(ctx, published, resumed); err != nil {
		t.Fatalf("ProveConsistency(%d, %d): %v", published.Size, resumed.Size, err)
	}
	for _, e := range pending {
		if err := alpha.ProveInclusion(ctx, resumed, e); err != nil {
			t.Errorf("ProveInclusion(alpha/%d): %v", e.GetSeq(), err)
		}
	}
}
