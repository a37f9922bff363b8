package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// acked is what a submitter was told about an entry it submitted.
type acked struct {
	digest []byte
	index  uint64
}

// TestCrashDuringSubmissions runs alpha's node as its own process (with
// the mediator's witness in this process) and kills it with SIGKILL in the
// middle of a stream of concurrent submissions, several times. After each
// restart:
//
//   - every acknowledged entry is in the log exactly once, at the index and
//     with the digest it was acknowledged with;
//   - alpha's feed in the log is seqs 1..n, each once, with no gap;
//   - the next submission gets seq n+1, so no seq is ever reused;
//   - the new checkpoint is consistent with the last one fetched before the
//     kill, and the witness, which cosigns only consistent checkpoints,
//     cosigns it.
//
// SIGKILL tests a process crash; the node's writes are fsynced, which a
// process crash cannot show (that would take a power cut).
func TestCrashDuringSubmissions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and restarts a node process; skipped with -short")
	}
	const (
		rounds     = 3
		submitters = 8
		perRound   = 40 // acknowledged submissions before the kill
	)
	bin := parleyBinary(t)
	net := generate(t, localnet.Options{CheckpointInterval: 200 * time.Millisecond})
	ctx := context.Background()
	keys := net.LogKeys("alpha")
	witnesses, err := net.StartWitnesses(ctx, testLogger(t))
	if err != nil {
		t.Fatalf("StartWitnesses: %v", err)
	}
	defer witnesses.Stop()
	out, err := os.Create(filepath.Join(t.TempDir(), "alpha.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	proc, err := net.StartProcess(ctx, bin, "alpha", out)
	if err != nil {
		t.Fatalf("StartProcess: %v", err)
	}
	defer proc.Stop() // before the witnesses stop: defers run LIFO
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("alpha's output (last 4 KiB):\n%s", tail(b, 4<<10))
		}
	}()

	var (
		mu  sync.Mutex
		ack = map[uint64]acked{} // alpha's seq → what its submitter was told
	)
	first, _ := awaitCheckpoint(t, dial(t, net), keys, 0, 10*time.Second)
	for round := 1; round <= rounds; round++ {
		c := dial(t, net)
		before, _ := awaitCheckpoint(t, c, keys, 0, 10*time.Second)

		// Stream submissions; kill the node once perRound were acknowledged.
		var (
			wg    sync.WaitGroup
			count atomic.Int64
			kill  = make(chan struct{})
			once  sync.Once
		)
		for range submitters {
			wg.Go(func() {
				for {
					sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					e, err := c.Notify(sctx, notification(int(count.Load())))
					cancel()
					if err != nil {
						return // the node is gone: the entry may or may not be in the log
					}
					mu.Lock()
					if prev, ok := ack[e.GetSeq()]; ok {
						t.Errorf("seq %d acknowledged twice: index %d, then %d", e.GetSeq(), prev.index, e.GetIndex())
					}
					ack[e.GetSeq()] = acked{digest: e.GetDigest(), index: e.GetIndex()}
					mu.Unlock()
					if count.Add(1) == perRound {
						once.Do(func() { close(kill) })
					}
				}
			})
		}
		select {
		case <-kill:
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d: only %d submissions acknowledged in 60s", round, count.Load())
		}
		// Keep the latest checkpoint before the kill; submissions go on,
		// and the kill lands at a random point of a batch.
		before, _ = awaitCheckpoint(t, c, keys, before.Size, time.Second)
		time.Sleep(time.Duration(rand.IntN(25)) * time.Millisecond)
		if err := proc.Kill(); err != nil {
			t.Fatalf("round %d: Kill: %v", round, err)
		}
		wg.Wait()
		c.Close()
		if err := proc.Restart(ctx, net); err != nil {
			t.Fatalf("round %d: Restart: %v", round, err)
		}

		c = dial(t, net)
		n := checkLog(t, c, ack, round)
		unacked := int(n) - len(ack) // in the log, but the submitter got an error
		// The feed continues right after what the log holds.
		e, err := c.Notify(ctx, notification(-1))
		if err != nil {
			t.Fatalf("round %d: Notify after restart: %v", round, err)
		}
		if e.GetSeq() != n+1 {
			t.Fatalf("round %d: first seq after restart is %d, want %d (the log holds alpha/1..%d)", round, e.GetSeq(), n+1, n)
		}
		mu.Lock()
		ack[e.GetSeq()] = acked{digest: e.GetDigest(), index: e.GetIndex()}
		mu.Unlock()
		after, _ := awaitCheckpoint(t, c, keys, e.GetIndex()+1, 20*time.Second)
		if err := c.ProveConsistency(ctx, before, after); err != nil {
			t.Fatalf("round %d: checkpoint %d after the restart is not consistent with %d before the kill: %v", round, after.Size, before.Size, err)
		}
		if err := c.ProveConsistency(ctx, first, after); err != nil {
			t.Fatalf("round %d: ProveConsistency from the first checkpoint: %v", round, err)
		}
		t.Logf("round %d: log holds alpha/1..%d (%d of them, so far, durable but never acknowledged), checkpoint %d before the kill → %d after, consistent", round, n, unacked, before.Size, after.Size)
	}
}

// checkLog checks alpha's log against what was acknowledged and returns the
// last seq of alpha's feed in it.
func checkLog(t *testing.T, c *client.Client, ack map[uint64]acked, round int) uint64 {
	t.Helper()
	entries := readLog(t, c)
	seen := map[uint64]*parleyv1.LogEntry{} // alpha's entries by seq
	at := map[string]uint64{}               // every entry's index by sender/seq
	var last uint64
	for i, e := range entries {
		if e.GetIndex() != uint64(i) {
			t.Fatalf("round %d: entry %d of the log has index %d", round, i, e.GetIndex())
		}
		key := fmt.Sprintf("%s/%d", e.GetSender(), e.GetSeq())
		if prev, ok := at[key]; ok {
			t.Fatalf("round %d: %s is in the log twice, at %d and %d", round, key, prev, i)
		}
		at[key] = uint64(i)
		if e.GetSender() == "alpha" {
			seen[e.GetSeq()] = e
			last = max(last, e.GetSeq())
		}
	}
	if uint64(len(seen)) != last {
		t.Fatalf("round %d: the log holds %d of alpha's entries but its feed reaches seq %d: a gap", round, len(seen), last)
	}
	for seq, a := range ack {
		e, ok := seen[seq]
		if !ok {
			t.Fatalf("round %d: acknowledged alpha/%d is not in the log (it holds alpha/1..%d)", round, seq, last)
		}
		if e.GetIndex() != a.index || !bytes.Equal(e.GetDigest(), a.digest) {
			t.Fatalf("round %d: alpha/%d is at index %d with digest %x, acknowledged at %d with %x", round, seq, e.GetIndex(), e.GetDigest(), a.index, a.digest)
		}
		byseq, err := c.Entry(context.Background(), "alpha", seq)
		if err != nil || !bytes.Equal(byseq.GetDigest(), a.digest) {
			t.Fatalf("round %d: Entry(alpha, %d): got %v, %v; want digest %x", round, seq, byseq, err, a.digest)
		}
	}
	return last
}

// dial dials alpha's node as its operator.
func dial(t *testing.T, net *localnet.Network) *client.Client {
	t.Helper()
	c, err := net.Operator(context.Background(), "alpha")
	if err != nil {
		t.Fatalf("dial alpha: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
