package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// ledger is every entry acknowledged to a client: (sender, seq) → digest.
type ledger struct {
	mu    sync.Mutex
	acked map[localnet.EntryKey][32]byte
}

// add records an acknowledgement; it returns an error if the same (sender,
// seq) was acknowledged before with another digest (a seq reused).
func (l *ledger) add(k localnet.EntryKey, digest []byte) error {
	var d [32]byte
	if len(digest) != len(d) {
		return fmt.Errorf("%s acknowledged with a digest of %d bytes", k, len(digest))
	}
	copy(d[:], digest)
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.acked[k]; ok && prev != d {
		return fmt.Errorf("%s acknowledged twice with different digests %x and %x", k, prev[:8], d[:8])
	}
	l.acked[k] = d
	return nil
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// snapshot returns a copy of the acknowledged entries.
func (l *ledger) snapshot() map[localnet.EntryKey][32]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[localnet.EntryKey][32]byte, len(l.acked))
	for k, d := range l.acked {
		m[k] = d
	}
	return m
}

// submit is one operator client of party: it submits notifications one
// after the other until ctx ends, and records what was acknowledged. A
// failed submission (node down, connection cut) is counted and retried
// after a short wait; its entry may or may not exist.
func (h *harness) submit(ctx context.Context, party string, worker int) {
	c, err := h.net.Operator(ctx, party)
	if err != nil {
		h.mu.Lock()
		h.res.problem("couldn't dial %s's node for load: %v", party, err)
		h.mu.Unlock()
		return
	}
	defer c.Close()
	for i := 0; ctx.Err() == nil; i++ {
		h.ops.Add(1)
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		e, err := c.Notify(sctx, Notification(fmt.Sprintf("Chaos %s-%d-%d", party, worker, i), 9000))
		cancel()
		pause := h.cfg.Pause
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return // the run ended, not the node
			}
			h.failed.Add(1)
			pause = 250 * time.Millisecond
		case e.GetSender() != party:
			h.mu.Lock()
			h.res.problem("%s's node acknowledged an entry of %s", party, e.GetSender())
			h.mu.Unlock()
		default:
			if err := h.ledger.add(localnet.EntryKey{Sender: party, Seq: e.GetSeq()}, e.GetDigest()); err != nil {
				h.mu.Lock()
				h.res.problem("%v", err)
				h.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// Notification returns a notification of a land exercise of troops
// starting in 60 days, well within the agreed lead time.
func Notification(designation string, troops uint32) *parleyv1.ActivityNotification {
	start := time.Now().UTC().AddDate(0, 0, 60).Truncate(time.Hour)
	return &parleyv1.ActivityNotification{
		Designation: designation,
		Type:        parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
		Start:       timestamppb.New(start),
		End:         timestamppb.New(start.Add(72 * time.Hour)),
		Area:        &parleyv1.Area{PlaceNames: []string{"Range 1"}},
		Forces:      &parleyv1.Forces{Troops: troops},
	}
}
