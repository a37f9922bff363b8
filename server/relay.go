package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier"
)

// Relay and catch-up: anti-entropy between each pair of nodes. A node asks
// each peer for its feed heads every SyncInterval, and RelayDelay after the
// peer's receipt named an entry the node lacks; it pulls from that peer
// every feed the peer holds further than the node does, whoever the sender.
// Pulled entries are verified exactly like delivered ones, so any peer can
// relay any party's signed entries.

// syncLoop runs anti-entropy and checkpoint checks with p until ctx is done.
func (x *exchange) syncLoop(ctx context.Context, p *peer) {
	defer x.wg.Done()
	log := x.log.With("peer", p.id)
	t := time.NewTimer(jitter(x.cfg.SyncInterval))
	defer t.Stop()
	r := retry{min: x.cfg.BackoffMin, max: x.cfg.SyncInterval}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := x.syncOnce(ctx, p, true)
			if err == nil {
				err = x.checkCheckpoint(ctx, p)
			}
			next := jitter(x.cfg.SyncInterval)
			if errors.Is(err, ErrCheckpoint) {
				// Published checkpoints are witnessed: one that does not
				// verify is the peer's doing (or a key mix-up), not the link's.
				log.Warn("peer serves a checkpoint that does not verify", "err", err)
				err = nil
			}
			if err != nil && ctx.Err() == nil {
				log.Debug("couldn't sync with peer", "err", err)
				p.failover()
				next = min(next, r.next())
			} else {
				r.reset()
			}
			t.Reset(next)
		case <-p.kick:
			if !sleep(ctx, x.cfg.RelayDelay) {
				return
			}
			if !x.stillWanted(p) {
				continue
			}
			if err := x.syncOnce(ctx, p, false); err != nil && ctx.Err() == nil {
				log.Debug("couldn't sync with peer", "err", err)
			}
		}
	}
}

// stillWanted drops from p's wanted entries those the node holds by now,
// and reports whether anything remains to fetch from p at once: a wanted
// entry, or a conflicting one not asked for yet (the others wait for the
// periodic round).
func (x *exchange) stillWanted(p *peer) bool {
	p.mu.Lock()
	want := make([]feedKey, 0, len(p.want))
	for k := range p.want {
		want = append(want, k)
	}
	conflicts := 0
	for _, tries := range p.conflicts {
		if tries == 0 {
			conflicts++
		}
	}
	p.mu.Unlock()
	remaining := false
	for _, k := range want {
		if _, ok := x.held(k.sender, k.seq); ok {
			p.mu.Lock()
			delete(p.want, k)
			p.mu.Unlock()
			continue
		}
		remaining = true
	}
	return remaining || conflicts > 0
}

// syncOnce fetches conflicting entries p was found to hold, compares feed
// heads with p and pulls from p the feeds it holds further: in a periodic
// round, those in which p was ahead a round ago already, and in any round
// those of which p's receipts named entries this node lacks.
func (x *exchange) syncOnce(ctx context.Context, p *peer, periodic bool) error {
	x.fetchConflicts(ctx, p, periodic)

	hctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	heads, err := p.exchangeClient().FeedHeads(hctx, &parleyv1.FeedHeadsRequest{})
	cancel()
	x.stats.heads.Add(1)
	if err != nil {
		return fmt.Errorf("couldn't read %s's feed heads: %w", p.id, err)
	}
	x.observeHeads(p, heads)
	p.mu.Lock()
	wanted := map[string]bool{}
	for k := range p.want {
		wanted[k.sender] = true
	}
	seen := p.seen
	p.seen = map[string]uint64{}
	for _, h := range heads.GetHeads() {
		p.seen[h.GetSender()] = h.GetSeq()
	}
	p.mu.Unlock()
	var errs []error
	for _, h := range heads.GetHeads() {
		sender := h.GetSender()
		if sender == x.n.party {
			continue // this node's own feed is delivered, never pulled
		}
		x.n.mu.Lock()
		mine := x.n.heads[sender].Seq
		x.n.mu.Unlock()
		if h.GetSeq() <= mine {
			continue
		}
		// Entries p got just now are most likely on their way here from
		// their sender too: pull what a receipt says is wanted, and what
		// p held already a round ago (all of it in the first round).
		if !periodic && !wanted[sender] {
			continue
		}
		if prev, ok := seen[sender]; periodic && seen != nil && !wanted[sender] && (!ok || prev <= mine) {
			continue
		}
		if err := x.pull(ctx, p, sender, mine+1); err != nil {
			errs = append(errs, err)
		}
	}
	p.mu.Lock()
	for k := range p.want {
		if _, ok := x.held(k.sender, k.seq); ok {
			delete(p.want, k)
		}
	}
	p.mu.Unlock()
	return errors.Join(errs...)
}

// observeHeads compares p's feed heads with the entries this node holds at
// the same seqs; a different digest means one of the two holds an envelope
// that conflicts with the other's.
func (x *exchange) observeHeads(p *peer, heads *parleyv1.FeedHeadsResponse) {
	for _, h := range heads.GetHeads() {
		if h.GetSender() == p.id {
			continue // p's own feed: its delivery brings the conflict to light
		}
		d, ok := x.held(h.GetSender(), h.GetSeq())
		if ok && !bytes.Equal(d[:], h.GetDigest()) {
			x.conflict(p.id, h.GetSender(), h.GetSeq())
		}
	}
}

// pull fetches sender's feed from seq from p and accepts it, in rounds of
// pullLimit entries, unless the feed is being pulled from another peer.
func (x *exchange) pull(ctx context.Context, p *peer, sender string, from uint64) error {
	x.mu.Lock()
	busy := x.pulling[sender]
	x.pulling[sender] = true
	x.mu.Unlock()
	if busy {
		return nil
	}
	defer func() {
		x.mu.Lock()
		delete(x.pulling, sender)
		x.mu.Unlock()
	}()
	for {
		got, err := x.pullRound(ctx, p, sender, from)
		if err != nil || got < pullLimit {
			return err
		}
		from += uint64(got)
	}
}

// pullRound pulls up to pullLimit entries of sender's feed from seq and
// accepts them. It returns how many p sent.
func (x *exchange) pullRound(ctx context.Context, p *peer, sender string, from uint64) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := p.exchangeClient().PullFeed(ctx, &parleyv1.PullFeedRequest{Sender: sender, FromSeq: from, Limit: pullLimit})
	if err != nil {
		return 0, fmt.Errorf("couldn't pull %s's feed from %s: %w", sender, p.id, err)
	}
	var raws [][]byte
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("couldn't pull %s's feed from %s: %w", sender, p.id, err)
		}
		x.stats.pulled.Add(1)
		raws = append(raws, resp.GetEntry().GetEnvelope())
	}
	if len(raws) == 0 {
		return 0, nil
	}
	n, err := x.n.acceptAll(ctx, raws, "relay:"+p.id)
	if n > 0 {
		x.log.Debug("pulled entries", "peer", p.id, "sender", sender, "seq", from, "entries", n)
	}
	if err != nil {
		// Not the link's fault: an entry that does not verify, or a feed
		// that forked (whose evidence is kept). Stop pulling this feed.
		x.log.Debug("refused an entry pulled from peer", "peer", p.id, "sender", sender, "err", err)
		return 0, nil
	}
	return len(raws), nil
}

// fetchConflicts fetches the conflicting entries p was found to hold: in a
// periodic round all of them, in another only those not asked for yet. An
// entry is settled once it has been checked; one that p answered without
// is asked for again in the next periodic rounds, up to
// maxConflictFetches times in all. A failed call is retried without limit,
// like the rest of the round.
func (x *exchange) fetchConflicts(ctx context.Context, p *peer, periodic bool) {
	p.mu.Lock()
	conflicts := make(map[feedKey]int, len(p.conflicts))
	for k, tries := range p.conflicts {
		if periodic || tries == 0 {
			conflicts[k] = tries
		}
	}
	p.mu.Unlock()
	for k, tries := range conflicts {
		checked, err := x.fetchConflict(ctx, p, k)
		if err != nil {
			x.log.Debug("couldn't fetch a conflicting entry; retrying next round", "peer", p.id, "sender", k.sender, "seq", k.seq, "err", err)
			continue
		}
		if !checked {
			tries++
			if tries < maxConflictFetches {
				x.log.Debug("peer sent no conflicting entry; retrying next round", "peer", p.id, "sender", k.sender, "seq", k.seq, "tries", tries)
				p.mu.Lock()
				p.conflicts[k] = tries
				p.mu.Unlock()
				continue
			}
			x.log.Warn("peer never sent the conflicting entry it holds; giving up on it", "peer", p.id, "sender", k.sender, "seq", k.seq, "tries", tries)
		}
		x.fetchedFrom(p.id, k)
		p.mu.Lock()
		delete(p.conflicts, k)
		p.mu.Unlock()
	}
}

// fetchConflict fetches p's entry k, which differs from the one this node
// holds, and checks it: the verifier turns a real conflict into evidence,
// which the node keeps. It reports whether the entry was checked: kept as
// evidence, found to repeat this node's statement, or refused as invalid.
// It reports false when p sent nothing (it may not have indexed the entry
// yet) or the node could not check what p sent (its own copy unreadable
// for now): both are worth another try. An error means the call failed.
func (x *exchange) fetchConflict(ctx context.Context, p *peer, k feedKey) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	stream, err := p.exchangeClient().PullFeed(ctx, &parleyv1.PullFeedRequest{Sender: k.sender, FromSeq: k.seq, Limit: 1})
	if err != nil {
		return false, fmt.Errorf("couldn't fetch %s/%d from %s: %w", k.sender, k.seq, p.id, err)
	}
	resp, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return false, nil // p does not serve it (or has not indexed it yet)
	}
	if err != nil {
		return false, fmt.Errorf("couldn't fetch %s/%d from %s: %w", k.sender, k.seq, p.id, err)
	}
	x.stats.pulled.Add(1)
	// An equivocation is kept and reported as the entry is checked.
	_, err = x.n.accept(ctx, resp.GetEntry().GetEnvelope(), "relay:"+p.id)
	switch {
	case err == nil, errors.Is(err, verifier.ErrEquivocation):
		return true, nil
	case ctx.Err() != nil:
		return false, fmt.Errorf("couldn't check %s/%d fetched from %s: %w", k.sender, k.seq, p.id, err)
	case errors.Is(err, verifier.ErrMissingHistory):
		x.log.Debug("couldn't check a conflicting entry fetched from peer", "peer", p.id, "sender", k.sender, "seq", k.seq, "err", err)
		return false, nil
	}
	x.log.Warn("conflicting entry fetched from peer does not verify", "peer", p.id, "sender", k.sender, "seq", k.seq, "err", err)
	return true, nil
}

// acceptAll verifies raws, in order, like accept, and logs those it admits
// concurrently. It stops admitting at the first refusal, since later entries
// of a feed cannot follow a refused one, and returns how many it accepted
// (not counting duplicates) and that refusal.
func (n *Node) acceptAll(ctx context.Context, raws [][]byte, source string) (int, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
		errs     []error
	)
	var refusal error
	for _, raw := range raws {
		auth, err := n.authenticateEntry(raw, source)
		if err != nil {
			refusal = err
			break
		}
		n.mu.Lock()
		adm, err := n.admitAuthenticatedLocked(ctx, auth, raw, source)
		n.mu.Unlock()
		if err != nil {
			refusal = err
			break
		}
		if adm.duplicate && adm.pending.done == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := n.finish(context.WithoutCancel(ctx), adm)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if !res.duplicate {
				accepted++
			}
		}()
	}
	wg.Wait()
	if refusal != nil {
		errs = append(errs, refusal)
	}
	return accepted, errors.Join(errs...)
}
