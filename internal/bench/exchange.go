package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// A notification is fully exchanged when every other party's node holds it
// and the sender's node holds a signed receipt acknowledging it (same
// sender, seq and digest) from every counterpart. A counterpart's node
// writes its receipt only after accepting the entry, so the receipts imply
// the holding; the harness also checks it at the end of a run by comparing
// every node's feed heads.
//
// The tracker watches the sender's node: it subscribes to the receipts in
// every node's log (SubscriptionService.Subscribe, as that party's
// operator, asking for receipts only) and reads those that other parties'
// nodes delivered to it. Asking for receipts only keeps the harness's own
// cost out of the figures it measures: following every entry of every node
// cost the harness (parsing each) and the nodes (sending each) about a
// tenth of the two cores during phase exchange.

// noteKey names a notification: its sender and seq.
type noteKey struct {
	sender string
	seq    uint64
}

// noteState is what the tracker knows of one notification.
type noteState struct {
	digest    []byte    // from the submit response; nil until registered
	submitted time.Time // when its Submit call started
	acks      map[string][]byte
	done      bool
	notify    chan struct{} // closed when done, if someone waits
}

// tracker follows notifications until they are fully exchanged.
type tracker struct {
	parties map[string][]string // sender → its counterparts

	mu        sync.Mutex
	notes     map[noteKey]*noteState
	hist      histogram
	completed []time.Time // completion times, in order
	mismatch  int         // acknowledgements with another digest
	counts    map[string]*logCounts
	onDone    func() // called, without mu, once per completion
}

// logCounts counts the receipts one node's log received during the run
// and the acknowledgements they carry.
type logCounts struct {
	receipts, acks int
}

func newTracker(parties []string, onDone func()) *tracker {
	t := &tracker{parties: map[string][]string{}, notes: map[noteKey]*noteState{}, counts: map[string]*logCounts{}, onDone: onDone}
	for _, p := range parties {
		for _, q := range parties {
			if q != p {
				t.parties[p] = append(t.parties[p], q)
			}
		}
		t.counts[p] = &logCounts{}
	}
	return t
}

func (t *tracker) state(k noteKey) *noteState {
	s, ok := t.notes[k]
	if !ok {
		s = &noteState{acks: map[string][]byte{}}
		t.notes[k] = s
	}
	return s
}

// register records a submitted notification; wait, if set, is closed once
// it is fully exchanged. Acknowledgements may have arrived before.
func (t *tracker) register(e *parleyv1.LogEntry, submitted time.Time, wait chan struct{}) {
	t.mu.Lock()
	s := t.state(noteKey{e.GetSender(), e.GetSeq()})
	s.digest, s.submitted, s.notify = e.GetDigest(), submitted, wait
	done := t.checkLocked(e.GetSender(), s)
	t.mu.Unlock()
	if done && t.onDone != nil {
		t.onDone()
	}
}

// ack records that by acknowledged (sender, seq) with digest.
func (t *tracker) ack(by, sender string, seq uint64, digest []byte) bool {
	s := t.state(noteKey{sender, seq})
	if _, ok := s.acks[by]; !ok {
		s.acks[by] = digest
	}
	return t.checkLocked(sender, s)
}

// checkLocked completes s if it is registered and every counterpart of
// sender acknowledged its digest. Callers hold t.mu.
func (t *tracker) checkLocked(sender string, s *noteState) bool {
	if s.done || s.digest == nil {
		return false
	}
	for _, q := range t.parties[sender] {
		d, ok := s.acks[q]
		if !ok {
			return false
		}
		if !bytes.Equal(d, s.digest) {
			t.mismatch++
			return false
		}
	}
	s.done = true
	now := time.Now()
	t.hist.add(now.Sub(s.submitted))
	t.completed = append(t.completed, now)
	if s.notify != nil {
		close(s.notify)
	}
	s.acks = nil
	return true
}

// observe handles one receipt of node's log (any other entry is ignored).
func (t *tracker) observe(node string, e *parleyv1.LogEntry) {
	if k, ok := envelope.PeekKind(e.GetEnvelope()); !ok || k != parleyv1.EntryKind_ENTRY_KIND_RECEIPT {
		return
	}
	var acks []*parleyv1.Acknowledgement
	if p, err := envelope.Parse(e.GetEnvelope()); err == nil {
		acks = p.Statement.GetBody().GetReceipt().GetAcks()
	}
	completions := 0
	t.mu.Lock()
	c := t.counts[node]
	if len(acks) > 0 {
		c.receipts++
		c.acks += len(acks)
	}
	for _, a := range acks {
		// Receipts of other parties for this node's own entries.
		if e.GetSender() != node && a.GetSender() == node && t.ack(e.GetSender(), a.GetSender(), a.GetSeq(), a.GetDigest()) {
			completions++
		}
	}
	t.mu.Unlock()
	for range completions {
		if t.onDone != nil {
			t.onDone()
		}
	}
}

// watch subscribes to the receipts of node's log from index 0 until ctx
// ends, feeding each to observe. It returns the subscription's error, if
// any other than ctx ending.
func (t *tracker) watch(ctx context.Context, node string, c *client.Client) error {
	req := &parleyv1.SubscribeRequest{Kinds: []parleyv1.EntryKind{parleyv1.EntryKind_ENTRY_KIND_RECEIPT}}
	err := c.SubscribeWith(ctx, req, func(ev *parleyv1.SubscribeResponse) error {
		if e := ev.GetEntry(); e != nil {
			t.observe(node, e)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("subscription to %s's node: %w", node, err)
	}
	return nil
}

// pending is how many registered notifications are not yet fully exchanged.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.notes {
		if s.digest != nil && !s.done {
			n++
		}
	}
	return n
}

// completedBy counts completions up to end.
func (t *tracker) completedBy(end time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.completed {
		if !c.After(end) {
			n++
		}
	}
	return n
}

// snapshot returns the latency histogram, the completions and the counts.
func (t *tracker) snapshot() (histogram, int, map[string]logCounts, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	counts := map[string]logCounts{}
	for k, v := range t.counts {
		counts[k] = *v
	}
	return t.hist, len(t.completed), counts, t.mismatch
}

// watchAll starts a subscription per node; the returned function ends them
// and returns the first subscription error.
func (t *tracker) watchAll(ctx context.Context, n *network) (stop func() error, err error) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		cs   []*client.Client
	)
	for _, id := range n.order {
		c, err := n.operator(ctx, id)
		if err != nil {
			cancel()
			closeAll(cs)
			return nil, err
		}
		cs = append(cs, c)
		wg.Go(func() {
			if err := t.watch(ctx, id, c); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	var once sync.Once
	return func() error {
		once.Do(func() {
			cancel()
			wg.Wait()
			closeAll(cs)
		})
		if len(errs) > 0 {
			return errs[0]
		}
		return nil
	}, nil
}

// probe submits one notification from the first party and waits up to
// timeout for it to be fully exchanged. It returns "" if it was, else why
// the exchange figures are not available.
func probe(ctx context.Context, n *network, timeout time.Duration) (string, error) {
	t := newTracker(n.order, nil)
	stop, err := t.watchAll(ctx, n)
	if err != nil {
		return "", err
	}
	defer stop()
	sender := n.order[0]
	c, err := n.operator(ctx, sender)
	if err != nil {
		return "", err
	}
	defer c.Close()
	done := make(chan struct{})
	start := time.Now()
	e, err := c.Notify(ctx, notification(sender, 0, 0))
	if err != nil {
		return "", fmt.Errorf("couldn't submit the probe notification: %w", err)
	}
	t.register(e, start, done)
	select {
	case <-done:
		return "", nil
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(timeout):
	}
	// Why not: did any counterpart receive it at all?
	var holders []string
	for _, id := range n.order[1:] {
		if held(ctx, n, id, sender, e.GetSeq()) {
			holders = append(holders, id)
		}
	}
	if len(holders) == 0 {
		return fmt.Sprintf("not available: exchange not implemented (no other node held %s/%d %s after it was accepted)", sender, e.GetSeq(), timeout), nil
	}
	return fmt.Sprintf("not available: exchange not implemented (%v hold %s/%d but the sender's node held no receipt from every counterpart %s after it was accepted)", holders, sender, e.GetSeq(), timeout), nil
}

// held reports whether party's node holds (sender, seq) by its feed heads.
func held(ctx context.Context, n *network, party, sender string, seq uint64) bool {
	heads, err := feedHeads(ctx, n, party)
	return err == nil && heads[sender] >= seq
}

// feedHeads returns the highest seq of each sender that party's node holds.
func feedHeads(ctx context.Context, n *network, party string) (map[string]uint64, error) {
	c, err := n.operator(ctx, party)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.Exchange.FeedHeads(ctx, &parleyv1.FeedHeadsRequest{})
	if err != nil {
		return nil, fmt.Errorf("couldn't read %s's feed heads: %w", party, err)
	}
	heads := map[string]uint64{}
	for _, h := range resp.GetHeads() {
		heads[h.GetSender()] = h.GetSeq()
	}
	return heads, nil
}
