package server

import (
	"context"
	"fmt"
	"testing"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// ObserveCheckpoint exposes the fork check to tests: it checks raw, a
// checkpoint of party's log, against the last one the node verified, asking
// prove for consistency proofs.
func (n *Node) ObserveCheckpoint(ctx context.Context, party string, raw []byte, prove func(ctx context.Context, from, to uint64) ([][]byte, error)) error {
	return n.observeCheckpoint(ctx, party, raw, prove)
}

// Evidence lists the node's evidence as ListEvidence does.
func (n *Node) Evidence(ctx context.Context) ([]*parleyv1.Evidence, error) {
	resp, err := (&subscriptionService{n: n}).ListEvidence(ctx, &parleyv1.ListEvidenceRequest{})
	return resp.GetEvidence(), err
}

// HeldFindings returns the length of the list of findings the node keeps
// from its last evaluation of the log as it is; -1 if it keeps none.
func (n *Node) HeldFindings() int {
	n.cacheMu.Lock()
	defer n.cacheMu.Unlock()
	if n.findingsCache.list == nil {
		return -1
	}
	return n.findingsCache.list.Len()
}

// SpillFindingsAfter makes the nodes made until the test ends hold at most
// n findings of a list in memory, and spill longer lists to files.
func SpillFindingsAfter(t testing.TB, n int) {
	old := spillRunSet.Swap(int64(n))
	t.Cleanup(func() { spillRunSet.Store(old) })
}

// FindingsSpilled reports whether a list of findings the node keeps (of
// the log as it is, or for a client's pages) is held in a file.
func (n *Node) FindingsSpilled() bool {
	n.cacheMu.Lock()
	defer n.cacheMu.Unlock()
	for _, c := range []findingsCache{n.findingsCache, n.pagesCache} {
		if c.list != nil && c.list.spilled() {
			return true
		}
	}
	return false
}

// all returns the whole list in memory.
func (l *findingsList) all() ([]*parleyv1.Finding, error) {
	if l.file == nil {
		return l.mem, nil
	}
	out := make([]*parleyv1.Finding, 0, l.n)
	err := l.each(0, func(_ int, f *parleyv1.Finding) bool {
		out = append(out, f)
		return true
	})
	return out, err
}

// spilled reports whether the list is held in a file.
func (l *findingsList) spilled() bool { return l.file != nil }

// MaxConflictFetches is how many answers without a conflicting entry a
// node takes from a peer before it gives up on that peer's copy.
const MaxConflictFetches = maxConflictFetches

// OnReceiptNotHeld makes f run each time the node, checking a peer's
// receipt, finds that it does not hold an acknowledged entry: a test can
// accept the entry at that very moment.
func (n *Node) OnReceiptNotHeld(f func(sender string, seq uint64)) {
	n.exch.mu.Lock()
	defer n.exch.mu.Unlock()
	n.exch.notHeld = f
}

// ConflictPending reports whether the node is yet to fetch from peer its
// entry (sender, seq), found to conflict with the node's own.
func (n *Node) ConflictPending(peer, sender string, seq uint64) bool {
	p := n.exch.peers[peer]
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.conflicts[feedKey{sender, seq}]
	return ok
}

// SyncRound runs one periodic anti-entropy round with peer, as the sync
// loop does every SyncInterval.
func (n *Node) SyncRound(ctx context.Context, peer string) error {
	p := n.exch.peers[peer]
	if p == nil {
		return fmt.Errorf("node %s does not dial %s", n.party, peer)
	}
	return n.exch.syncOnce(ctx, p, true)
}

// ResumeSeq is the own seq after which the node's delivery to peer resumes
// at start-up, by the cursor persisted for peer.
func (n *Node) ResumeSeq(ctx context.Context, peer string) (uint64, error) {
	return n.exch.resumeSeq(ctx, peer)
}

// SetDeliveryCursor persists next as the log index from which the node
// delivers to peer.
func (n *Node) SetDeliveryCursor(peer string, next uint64) error {
	return n.store.SetCursor(peer, next)
}

// PendingAcks is how many acknowledgements wait for the node's next
// receipt.
func (n *Node) PendingAcks() int { return n.exch.rcpt.pending() }

// DropPendingAcks forgets the acknowledgements that wait for the node's next
// receipt, as a crash before that receipt would, and returns how many there
// were.
func (n *Node) DropPendingAcks() int {
	r := n.exch.rcpt
	r.mu.Lock()
	defer r.mu.Unlock()
	k := len(r.acks)
	r.acks = nil
	return k
}
