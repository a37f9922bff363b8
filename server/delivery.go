package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

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
	// The peer's header says whether it takes several envelopes per
	// request; until it comes, and if it does not say so, one per request.
	var batch batchLimit
	headerDone := make(chan struct{})
	go func() {
		defer close(headerDone)
		if md, err := stream.Header(); err == nil {
			batch.set(md)
		}
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A receiver that takes batches says so at once; an older one
		// sends its header only with its first answer.
		select {
		case <-headerDone:
		case <-time.After(deliverHeaderWait):
		case <-ctx.Done():
		}
		for seq := d.acked + 1; ; {
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
			seq++
			req := &parleyv1.DeliverRequest{Envelope: e.raw}
			// Fill the request with what else is durable already, as far
			// as the peer takes and the window allows, without waiting.
			count, size := batch.get()
			for used := wireLen(len(e.raw)); len(req.More)+1 < count; {
				next, ok, err := x.ownEntry(ctx, seq)
				if err != nil || !ok || used+wireLen(len(next.raw)) > size || !offer(inflight, seq) {
					break
				}
				used += wireLen(len(next.raw))
				req.More = append(req.More, next.raw)
				seq++
			}
			if err := stream.Send(req); err != nil {
				sendErr <- err
				return
			}
			x.stats.delivered.Add(uint64(1 + len(req.More)))
			x.stats.deliverRequests.Add(1)
		}
	}()
	defer func() { <-headerDone }()
	defer wg.Wait()
	defer cancel()
	progressed := false
	var answers []*parleyv1.DeliverResponse
	for {
		if len(answers) == 0 {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return progressed, nil
			}
			if err != nil {
				return progressed, fmt.Errorf("delivery stream to %s ended: %w", p.id, err)
			}
			answers = append(append(answers, resp), resp.GetMore()...)
		}
		resp := answers[0]
		answers = answers[1:]
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

// batchLimit is how many envelopes, and in how many bytes, a peer takes in
// one Deliver request: one, until its header says more. It is safe for
// concurrent use.
type batchLimit struct {
	mu          sync.Mutex
	count, size int
}

// set reads the peer's announcement from its response header.
func (b *batchLimit) set(md metadata.MD) {
	count, err1 := strconv.Atoi(lastValue(md, deliverBatchHeader))
	size, err2 := strconv.Atoi(lastValue(md, deliverBatchBytesHeader))
	if err1 != nil || err2 != nil || count < 2 || size <= 0 {
		return
	}
	b.mu.Lock()
	b.count, b.size = min(count, deliverBatchMax), size
	b.mu.Unlock()
}

// get returns the most envelopes, and their most bytes as wireLen counts
// them, of one request: 1 and no bound on bytes (a request of one envelope
// is sent whatever its size) until the peer announced more.
func (b *batchLimit) get() (count, size int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.count < 2 {
		return 1, 0
	}
	return b.count, b.size
}

// lastValue is md's last value for key, or "".
func lastValue(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// offer sends v on c if c has room, and reports whether it did.
func offer[T any](c chan<- T, v T) bool {
	select {
	case c <- v:
		return true
	default:
		return false
	}
}

// wireLen is what an envelope of n bytes adds to a Deliver request: a tag,
// its length and its bytes.
func wireLen(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

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
	// Announce that requests may carry more envelopes (see deliverBatch).
	if err := stream.SendHeader(metadata.Pairs(
		deliverBatchHeader, strconv.Itoa(deliverBatchMax),
		deliverBatchBytesHeader, strconv.Itoa(max(n.cfg.Limits.MaxRecvMessageBytes-deliverBatchOverhead, 0)),
	)); err != nil {
		return err
	}
	answers := make(chan *deliverAnswer, deliverWindow)
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
		answers <- n.deliverBatch(ctx, source, req)
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

// Batched delivery: a receiver announces, in the Deliver stream's response
// header, that a request may carry up to deliverBatchMax envelopes (its
// envelope and more) in up to that many bytes; a sender that sees the
// header fills requests with the own entries that are durable when it
// sends, and one that does not (an older node) sends one envelope per
// request. Each envelope is answered as if it came alone, in one response
// per request. Under load it cuts the gRPC messages of an entry's delivery
// (a request, its answer and their frames and TLS records at both ends) by
// the batch's size.
const (
	deliverBatchHeader      = "parley-deliver-batch"
	deliverBatchBytesHeader = "parley-deliver-batch-bytes"
	// deliverBatchMax is the most envelopes a request may carry (the
	// schema allows 1 + 255).
	deliverBatchMax = 128
	// deliverHeaderWait is how long a sender waits for the receiver's
	// header, on a new stream, before it sends one envelope per request:
	// a receiver that takes batches sends it at once, and an older one,
	// which sends it only with its first answer, costs this once per
	// stream (streams stay open while entries flow).
	deliverHeaderWait = time.Second
	// deliverBatchOverhead is what a request's encoding may add to its
	// envelopes' bytes, beyond their own tags and lengths, which senders
	// count.
	deliverBatchOverhead = 1024
)

// deliverAnswer is the response to one Deliver request, ready once done is
// closed.
type deliverAnswer struct {
	resp *parleyv1.DeliverResponse
	done chan struct{}
}

// deliverBatch admits the envelopes of one Deliver request in order and
// returns their answer, which is ready once every admitted one is durable.
// Signatures are verified before the node's lock, while other streams and
// submissions admit theirs, and the envelopes are admitted in one hold of
// it.
func (n *Node) deliverBatch(ctx context.Context, source string, req *parleyv1.DeliverRequest) *deliverAnswer {
	raws := make([][]byte, 0, 1+len(req.GetMore()))
	raws = append(append(raws, req.GetEnvelope()), req.GetMore()...)
	auths := make([]*verifier.Authenticated, len(raws))
	errs := make([]error, len(raws))
	for i, raw := range raws {
		auths[i], errs[i] = n.authenticateEntry(raw, source)
	}
	adms := make([]admission, len(raws))
	admitted := false
	n.mu.Lock()
	for i, raw := range raws {
		if errs[i] == nil {
			adms[i], errs[i] = n.admitAuthenticatedLocked(ctx, auths[i], raw, source)
			admitted = admitted || errs[i] == nil
		}
	}
	n.mu.Unlock()
	a := &deliverAnswer{done: make(chan struct{})}
	answer := func(res []accepted) {
		resps := make([]*parleyv1.DeliverResponse, len(raws))
		for i, raw := range raws {
			resps[i] = deliverResponse(raw, res[i], errs[i])
		}
		a.resp = resps[0]
		if len(resps) > 1 {
			a.resp.More = resps[1:]
		}
		close(a.done)
	}
	res := make([]accepted, len(raws))
	if !admitted {
		answer(res)
		return a
	}
	go func() {
		// Once a seq is taken the entry must be logged, whether or not
		// the peer is still there.
		for i := range raws {
			if errs[i] == nil {
				res[i], errs[i] = n.finish(context.WithoutCancel(ctx), adms[i])
			}
		}
		answer(res)
	}()
	return a
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
