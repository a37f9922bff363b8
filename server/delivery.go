package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	grpcstatus "google.golang.org/grpc/status"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier"
)

// Delivery: each node pushes its own feed to every peer, in seq order, over
// one long-lived Deliver stream per peer.
//
// The worker of a peer resumes from what the peer already holds of this
// node's feed: its FeedHeads answer when it can be asked, else the
// persisted cursor. The cursor (state.Store.Cursor) is a log index below
// which every own entry has been acknowledged by the peer; it is a hint that
// spares a restarted node from resending its whole feed, since the peer's
// own answers (FeedHeads, and GAP on the stream) are authoritative and
// duplicates are harmless.
//
// A peer's head is not this node's entry if its digest differs: the peer
// holds another envelope signed with this party's key at that seq, which it
// got from elsewhere (relayed, or sent by whoever else holds the key). It
// sees the conflict only when this node's own envelope reaches it, and its
// anti-entropy leaves this node's feed to this delivery, so the worker sends
// that seq again: the peer answers EQUIVOCATION and keeps both envelopes as
// evidence.

// ownEntry is one of the node's own durable entries.
type ownEntry struct {
	index uint64
	raw   []byte
}

// ownFeed caches the node's latest own envelopes and wakes the delivery
// workers when one becomes durable. It is safe for concurrent use.
type ownFeed struct {
	mu      sync.Mutex
	entries map[uint64]ownEntry // by seq
	wake    chan struct{}       // closed and replaced on every put
}

func newOwnFeed() *ownFeed {
	return &ownFeed{entries: map[uint64]ownEntry{}, wake: make(chan struct{})}
}

func (f *ownFeed) put(seq, index uint64, raw []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries[seq] = ownEntry{index: index, raw: raw}
	// Own seqs are made one after the other: dropping the one ownCacheSize
	// below keeps the cache at about that size.
	if seq > ownCacheSize {
		delete(f.entries, seq-ownCacheSize)
	}
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *ownFeed) get(seq uint64) (ownEntry, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.entries[seq]
	return e, ok
}

// waiter returns a channel closed at the next put.
func (f *ownFeed) waiter() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wake
}

// ownEntry returns the node's own durable entry seq, and false if it is not
// durable (yet).
func (x *exchange) ownEntry(ctx context.Context, seq uint64) (ownEntry, bool, error) {
	if e, ok := x.own.get(seq); ok {
		return e, true, nil
	}
	ref, ok, err := x.n.store.Lookup(x.n.party, seq)
	if err != nil || !ok {
		return ownEntry{}, false, err
	}
	raws, err := x.n.tlog.Entries(ctx, ref.Index, 1)
	if err != nil {
		return ownEntry{}, false, fmt.Errorf("couldn't read own entry %d at log index %d: %w", seq, ref.Index, err)
	}
	if len(raws) != 1 {
		return ownEntry{}, false, nil
	}
	return ownEntry{index: ref.Index, raw: raws[0]}, true, nil
}

// waitOwn waits until the node's own entry seq is durable.
func (x *exchange) waitOwn(ctx context.Context, seq uint64) (ownEntry, error) {
	for {
		wake := x.own.waiter()
		e, ok, err := x.ownEntry(ctx, seq)
		if err != nil {
			return ownEntry{}, err
		}
		if ok {
			return e, nil
		}
		select {
		case <-ctx.Done():
			return ownEntry{}, ctx.Err()
		case <-wake:
		}
	}
}

// delivery is the state of one peer's delivery worker.
type delivery struct {
	p     *peer
	acked uint64 // highest own seq the peer has answered for
	saved time.Time
	// shown is the last own seq at which the peer held another envelope
	// and has answered for this node's since: it is not sent again.
	shown uint64
}

// errGap ends a delivery session whose peer lacks earlier own entries; the
// next session starts at the seq the peer expects.
var errGap = errors.New("peer lacks earlier entries")

// deliverLoop pushes the node's feed to p until ctx is done, reconnecting
// with backoff.
func (x *exchange) deliverLoop(ctx context.Context, p *peer) {
	defer x.wg.Done()
	log := x.log.With("peer", p.id)
	d := &delivery{p: p}
	var err error
	if d.acked, err = x.resumeSeq(ctx, p.id); err != nil {
		log.Warn("couldn't read the delivery cursor; resending the whole feed", "err", err)
	}
	defer x.saveCursor(d, true)
	r := retry{min: x.cfg.BackoffMin, max: x.cfg.BackoffMax}
	failures := 0
	for ctx.Err() == nil {
		progressed, err := x.deliverSession(ctx, d)
		if progressed {
			r.reset()
			failures = 0
		}
		x.saveCursor(d, true)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil, errors.Is(err, errGap):
			continue
		}
		failures++
		if failures == 1 {
			log.Info("peer unreachable; retrying with backoff", "err", err)
		} else {
			log.Debug("peer still unreachable", "err", err, "attempts", failures)
		}
		p.failover()
		if !sleep(ctx, r.next()) {
			return
		}
	}
}

// streamIdle is how long a delivery stream stays open with nothing to
// send; the next entry opens a new one. Peers close idle streams after a
// while (Config.StreamIdleTimeout) anyway.
const streamIdle = time.Minute

// deliverSession runs one Deliver stream: it opens it once there is an
// entry to send and closes it after streamIdle without one. It reports
// whether the peer answered anything; a nil error is a clean end.
func (x *exchange) deliverSession(ctx context.Context, d *delivery) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := d.p
	ex := p.exchangeClient()
	// The peer's view of this node's feed comes first: it may hold more than
	// the cursor says (relayed entries, a lost cursor) or less (lost data).
	hctx, hcancel := context.WithTimeout(ctx, rpcTimeout)
	heads, err := ex.FeedHeads(hctx, &parleyv1.FeedHeadsRequest{})
	hcancel()
	x.stats.heads.Add(1)
	if err != nil {
		return false, fmt.Errorf("couldn't read %s's feed heads: %w", p.id, err)
	}
	x.observeHeads(p, heads)
	var resend uint64 // own seq sent again, the peer holding another envelope
	for _, h := range heads.GetHeads() {
		if h.GetSender() != x.n.party {
			continue
		}
		d.acked = min(h.GetSeq(), x.ownHead())
		if s := h.GetSeq(); s == d.acked && s != d.shown {
			if own, ok := x.held(x.n.party, s); ok && !bytes.Equal(own[:], h.GetDigest()) {
				d.acked, resend = s-1, s
			}
		}
	}
	if _, err := x.waitOwn(ctx, d.acked+1); err != nil {
		return false, err
	}
	stream, err := ex.Deliver(ctx)
	if err != nil {
		return false, fmt.Errorf("couldn't open a delivery stream to %s: %w", p.id, err)
	}
	inflight := make(chan uint64, x.cfg.Window)
	sendErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := d.acked + 1; ; seq++ {
			wctx, wcancel := context.WithTimeout(ctx, streamIdle)
			e, err := x.waitOwn(wctx, seq)
			wcancel()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				sendErr <- stream.CloseSend() // idle: end cleanly
				return
			}
			if err != nil {
				sendErr <- err
				return
			}
			select {
			case inflight <- seq:
			case <-ctx.Done():
				sendErr <- ctx.Err()
				return
			}
			if err := stream.Send(&parleyv1.DeliverRequest{Envelope: e.raw}); err != nil {
				sendErr <- err
				return
			}
			x.stats.delivered.Add(1)
		}
	}()
	defer wg.Wait()
	defer cancel()
	progressed := false
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return progressed, nil
		}
		if err != nil {
			return progressed, fmt.Errorf("delivery stream to %s ended: %w", p.id, err)
		}
		progressed = true
		var seq uint64
		select {
		case seq = <-inflight:
		default:
			return progressed, fmt.Errorf("%s answered an entry that was not sent", p.id)
		}
		if seq == resend && resp.GetStatus() != parleyv1.DeliveryStatus_DELIVERY_STATUS_GAP {
			d.shown = seq
		}
		switch resp.GetStatus() {
		case parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED, parleyv1.DeliveryStatus_DELIVERY_STATUS_DUPLICATE:
			d.acked = seq
		case parleyv1.DeliveryStatus_DELIVERY_STATUS_GAP:
			if e := resp.GetExpectedSeq(); e >= 1 && e <= seq {
				d.acked = e - 1
			}
			x.log.Info("peer lacks earlier entries of this node; resending from there", "peer", p.id, "seq", d.acked+1)
			return progressed, errGap
		case parleyv1.DeliveryStatus_DELIVERY_STATUS_EQUIVOCATION:
			// The peer holds another envelope signed with this party's key
			// at seq: fetch it for the evidence. The peer will never take
			// this feed beyond it.
			x.log.Error("peer holds a conflicting envelope of this node's feed", "peer", p.id, "seq", seq, "reason", resp.GetReason())
			x.conflict(p.id, x.n.party, seq)
			d.acked = seq
		default:
			x.log.Error("peer rejected an entry of this node's feed", "peer", p.id, "seq", seq, "status", resp.GetStatus().String(), "reason", resp.GetReason())
			d.acked = seq
		}
		x.saveCursor(d, false)
	}
}

// ownHead is the seq of the node's last own entry (durable or in flight).
func (x *exchange) ownHead() uint64 {
	x.n.mu.Lock()
	defer x.n.mu.Unlock()
	return x.n.heads[x.n.party].Seq
}

// cursorEvery is how often a delivery worker persists its cursor while
// entries flow.
const cursorEvery = 250 * time.Millisecond

// saveCursor updates the peer's delivery lag metric and persists d's
// cursor: the lowest log index of an own entry the
// peer has not acknowledged, or the store's log size if there is none. Only
// the entries just after the acknowledged seq are examined: own entries are
// appended concurrently, so their log order may differ from their seq order
// by about the number in flight; the cursor is only a hint (see above).
func (x *exchange) saveCursor(d *delivery, force bool) {
	if !force && time.Since(d.saved) < cursorEvery {
		return
	}
	d.saved = time.Now()
	top := x.ownHead()
	if x.n.metrics != nil {
		x.n.metrics.setDeliveryLag(d.p.id, top-min(d.acked, top))
	}
	size, err := x.n.store.LogSize()
	if err != nil {
		return
	}
	cursor := size
	for seq := d.acked + 1; seq <= top && seq <= d.acked+uint64(2*x.cfg.Window); seq++ {
		e, ok := x.own.get(seq)
		if !ok {
			ref, found, err := x.n.store.Lookup(x.n.party, seq)
			if err != nil || !found {
				continue
			}
			e.index = ref.Index
		}
		cursor = min(cursor, e.index)
	}
	if err := x.n.store.SetCursor(d.p.id, cursor); err != nil {
		x.log.Warn("couldn't save the delivery cursor", "peer", d.p.id, "err", err)
	}
}

// resumeSeq returns the highest own seq that peer has acknowledged according
// to the persisted cursor: one below the first own seq at or beyond the
// cursor in the log, or the node's head if the log holds none there.
//
// The log holds every feed in seq order: take queues entries for the log in
// admission order, under n.mu, and they become durable in that order. So
// the first own entry at or beyond the cursor has the lowest own seq there,
// and the scan stops at it: at start-up, for a peer never reached, at the
// log's first own entry. (It used to read on to the end of the log, once
// per peer: with a million entries and two peers away, about 940 MB read
// and garbage in the node's first seconds.) It only peeks at each entry's
// header (the node verified every entry when it logged it).
func (x *exchange) resumeSeq(ctx context.Context, peer string) (uint64, error) {
	cursor, err := x.n.store.Cursor(peer)
	if err != nil {
		return 0, err
	}
	size, err := x.n.tlog.DurableSize(ctx)
	if err != nil {
		return 0, err
	}
	// Small reads first, doubling: the first own entry is usually near
	// the cursor.
	for start, n := cursor, uint64(32); start < size; start, n = start+n, min(2*n, 1024) {
		raws, err := x.n.tlog.Entries(ctx, start, int(min(n, size-start)))
		if err != nil {
			return 0, err
		}
		for i, raw := range raws {
			h, ok := envelope.PeekRawHeader(raw)
			if !ok {
				return 0, fmt.Errorf("log entry %d has no well-formed statement header", start+uint64(i))
			}
			if string(h.Sender) == x.n.party {
				if h.Seq == 0 {
					return 0, fmt.Errorf("log entry %d is an own entry of seq 0", start+uint64(i))
				}
				return h.Seq - 1, nil
			}
		}
	}
	return x.ownHead(), nil
}

// deliverWindow bounds the entries of one Deliver stream that a node
// verifies and logs concurrently.
const deliverWindow = 1024

// serveDeliver is the receiving side of a Deliver stream. Entries are
// verified and take their seq one after the other, in stream order, then
// are logged concurrently (so that the log batches them); answers go back
// in stream order.
func (n *Node) serveDeliver(stream parleyv1.ExchangeService_DeliverServer) error {
	ctx := stream.Context()
	id, _ := certs.IdentityFrom(ctx)
	source := "peer:" + id.String()
	type answer struct {
		resp *parleyv1.DeliverResponse
		done chan struct{}
	}
	answers := make(chan *answer, deliverWindow)
	sent := make(chan error, 1)
	go func() {
		var err error
		for a := range answers {
			<-a.done
			if err == nil {
				err = stream.Send(a.resp)
			}
		}
		sent <- err
	}()
	// Recv cannot be interrupted: it runs on its own so that the handler
	// can end when its context does (the node shutting down); gRPC then
	// ends the stream and the abandoned Recv returns.
	reqs := make(chan *parleyv1.DeliverRequest)
	recvDone := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvDone <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	var recvErr error
	for recvErr == nil {
		var req *parleyv1.DeliverRequest
		select {
		case <-ctx.Done():
			recvErr = ctx.Err()
			continue
		case recvErr = <-recvDone:
			continue
		case req = <-reqs:
		}
		a := &answer{done: make(chan struct{})}
		raw := req.GetEnvelope()
		// The signature is verified before the lock, while other
		// streams and submissions admit theirs.
		auth, err := n.authenticateEntry(raw, source)
		var adm admission
		if err == nil {
			n.mu.Lock()
			adm, err = n.admitAuthenticatedLocked(ctx, auth, raw, source)
			n.mu.Unlock()
		}
		if err != nil {
			a.resp = deliverResponse(raw, accepted{}, err)
			close(a.done)
		} else {
			go func() {
				// Once a seq is taken the entry must be logged, whether or
				// not the peer is still there.
				res, err := n.finish(context.WithoutCancel(ctx), adm)
				a.resp = deliverResponse(raw, res, err)
				close(a.done)
			}()
		}
		answers <- a
	}
	close(answers)
	sendErr := <-sent
	switch {
	case errors.Is(recvErr, io.EOF):
		return sendErr
	case errors.Is(recvErr, context.Canceled), errors.Is(recvErr, context.DeadlineExceeded):
		return grpcstatus.FromContextError(recvErr).Err()
	}
	return recvErr
}

// deliverResponse is the answer to one delivered envelope.
func deliverResponse(raw []byte, res accepted, err error) *parleyv1.DeliverResponse {
	d := envelope.Digest(raw)
	resp := &parleyv1.DeliverResponse{Digest: d[:]}
	var gap *verifier.GapError
	switch {
	case err == nil && res.duplicate:
		resp.Status = parleyv1.DeliveryStatus_DELIVERY_STATUS_DUPLICATE
	case err == nil:
		resp.Status = parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED
	case errors.As(err, &gap):
		resp.Status = parleyv1.DeliveryStatus_DELIVERY_STATUS_GAP
		resp.ExpectedSeq = gap.Expected
		resp.Reason = err.Error()
	case errors.Is(err, verifier.ErrEquivocation):
		resp.Status = parleyv1.DeliveryStatus_DELIVERY_STATUS_EQUIVOCATION
		resp.Reason = err.Error()
	default:
		resp.Status = parleyv1.DeliveryStatus_DELIVERY_STATUS_REJECTED
		resp.Reason = err.Error()
	}
	return resp
}
