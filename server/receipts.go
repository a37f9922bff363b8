package server

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier/rules"
)

// Receipts: a node acknowledges every substantive entry of another party
// that it accepts, whoever delivered it, with a receipt in its own feed,
// signed and sequenced like any of its entries and delivered to everyone.
// Receipts are not acknowledged.
//
// A node writes at most one receipt per ExchangeConfig.ReceiptDelay, unless
// ReceiptMaxAcks acknowledgements fill one sooner: an idle node receipts an
// entry at once, and a busy one batches all that arrived during the delay
// into one receipt, so that receipts cost a bounded number of entries per
// second however many notifications flow.

// receiptFlushTimeout bounds writing the last receipt when the node stops.
const receiptFlushTimeout = 5 * time.Second

// maxReceiptBytes bounds the acknowledgements of one receipt, encoded, so
// that the signed envelope stays well within envelope.MaxSize whatever the
// length of party ids.
const maxReceiptBytes = envelope.MaxSize * 3 / 4

// receipter batches acknowledgements into receipts. It is safe for
// concurrent use; run writes the receipts.
type receipter struct {
	x *exchange

	mu   sync.Mutex
	acks []*parleyv1.Acknowledgement
	wake chan struct{} // buffered: one pending wake
}

func newReceipter(x *exchange) *receipter {
	return &receipter{x: x, wake: make(chan struct{}, 1)}
}

// add queues an acknowledgement of (sender, seq) with the entry's digest.
func (r *receipter) add(sender string, seq uint64, digest [32]byte, at time.Time) {
	r.mu.Lock()
	r.acks = append(r.acks, &parleyv1.Acknowledgement{Sender: sender, Seq: seq, Digest: digest[:], ReceivedAt: timestamppb.New(at.UTC())})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Bounds of the log tail that recover reads: back past recoverReceipts of
// the node's own receipts and at least recoverMinScan entries, or back
// past recoverMinScan entries none of which needs a receipt; at most
// recoverMaxScan entries.
const (
	recoverMinScan  = 10_000
	recoverMaxScan  = 100_000
	recoverReceipts = 3
)

// recover queues acknowledgements of the substantive entries of other
// parties that the log holds but that none of this node's receipts
// acknowledges: those accepted just before a crash. Their received_at is
// now, the earliest time this node can still vouch for. Call it before run,
// after the node reconciled its state.
//
// It reads only the tail of the log. A receipt always follows, in the log,
// the entries it acknowledges (an entry is queued for acknowledgement only
// once it is durable), and the node writes a receipt at least every
// ReceiptDelay while acknowledgements are queued; so an entry older than
// the node's last few receipts, or older than a long run of entries that
// need no receipt, was acknowledged before the node last stopped (or found
// by recover when it last started); so the tail holds every entry that may
// lack one. Acknowledging an entry
// twice is harmless: the rules take the earliest acknowledgement.
func (r *receipter) recover(ctx context.Context) error {
	n := r.x.n
	size, err := n.tlog.DurableSize(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the log size: %w", err)
	}
	// Walk back in batches until the tail holds recoverReceipts of the
	// node's receipts, or recoverMinScan entries that need none (so none
	// that would be left unacknowledged), whichever comes first, noting
	// what the node's receipts acknowledge and what needs a receipt.
	acked := map[feedKey]bool{}
	var missing []rules.Entry
	from, receipts, quiet := size, 0, uint64(0)
	for from > 0 && size-from < recoverMaxScan && quiet < recoverMinScan &&
		(size-from < recoverMinScan || receipts < recoverReceipts) {
		start := from - min(from, ruleReadBatch)
		var batch []rules.Entry
		err := n.scanStatements(ctx, start, from, func(e rules.Entry) error {
			batch = append(batch, e)
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range slices.Backward(batch) {
			body := e.Statement.GetBody()
			rc := body.GetReceipt()
			switch {
			case e.Sender == n.party:
				if rc != nil {
					receipts++
				}
				for _, a := range rc.GetAcks() {
					acked[feedKey{a.GetSender(), a.GetSeq()}] = true
				}
				quiet++
			case rc == nil && body.GetKind() != nil:
				missing = append(missing, rules.Entry{Sender: e.Sender, Seq: e.Seq, Digest: e.Digest})
				quiet = 0
			default:
				quiet++
			}
		}
		from = start
	}
	now := n.cfg.Now()
	queued := 0
	for _, e := range missing {
		if !acked[feedKey{e.Sender, e.Seq}] {
			r.add(e.Sender, e.Seq, e.Digest, now)
			queued++
		}
	}
	if queued > 0 {
		r.x.log.Info("acknowledging entries accepted before the last stop", "acks", queued, "log_tail_read", size-from)
	}
	return nil
}

// run writes receipts until ctx is done, then writes what is left.
func (r *receipter) run(ctx context.Context) {
	defer r.x.wg.Done()
	cfg := r.x.cfg
	rt := retry{min: cfg.BackoffMin, max: cfg.BackoffMax}
	var last time.Time // when the last receipt was started
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), receiptFlushTimeout)
			for r.pending() > 0 && fctx.Err() == nil {
				if err := r.flush(fctx); err != nil {
					break
				}
			}
			cancel()
			return
		case <-r.wake:
		}
		for r.pending() > 0 {
			// Wait for the batch to fill or the delay since the last
			// receipt to pass.
			wait := cfg.ReceiptDelay - time.Since(last)
			full := r.pending() >= cfg.ReceiptMaxAcks
			if !full && wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
				case <-t.C:
				case <-r.wake:
					t.Stop()
					continue
				}
				if ctx.Err() != nil {
					break
				}
			}
			last = time.Now()
			if err := r.flush(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				r.x.log.Warn("couldn't write a receipt; retrying", "err", err)
				if !sleep(ctx, rt.next()) {
					break
				}
				continue
			}
			rt.reset()
		}
	}
}

func (r *receipter) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acks)
}

// flush writes one receipt with up to ReceiptMaxAcks acknowledgements (fewer
// if they would make it too large). On failure they are queued again.
func (r *receipter) flush(ctx context.Context) error {
	r.mu.Lock()
	k, size := 0, 0
	for k < len(r.acks) && k < r.x.cfg.ReceiptMaxAcks {
		n := proto.Size(r.acks[k]) + 4 // tag and length
		if k > 0 && size+n > maxReceiptBytes {
			break
		}
		size += n
		k++
	}
	batch := r.acks[:k:k]
	r.acks = append([]*parleyv1.Acknowledgement(nil), r.acks[k:]...)
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	slices.SortFunc(batch, func(a, b *parleyv1.Acknowledgement) int {
		return cmp.Or(cmp.Compare(a.GetSender(), b.GetSender()), cmp.Compare(a.GetSeq(), b.GetSeq()))
	})
	batch = slices.CompactFunc(batch, func(a, b *parleyv1.Acknowledgement) bool {
		return a.GetSender() == b.GetSender() && a.GetSeq() == b.GetSeq()
	})
	body := &parleyv1.Body{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{Acks: batch}}}
	res, err := r.x.n.submit(ctx, body)
	if err != nil {
		r.mu.Lock()
		r.acks = append(batch, r.acks...)
		r.mu.Unlock()
		return err
	}
	r.x.stats.receipts.Add(1)
	r.x.stats.acks.Add(uint64(len(batch)))
	r.x.log.Debug("wrote receipt", "seq", res.entry.GetSeq(), "acks", len(batch))
	return nil
}
