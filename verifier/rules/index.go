package rules

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// key names an entry by sender and seq.
type key struct {
	sender string
	seq    uint64
}

// item is one entry of the log with what the index learnt about it.
type item struct {
	sender string
	seq    uint64
	digest [32]byte
	body   *parleyv1.Body
	// receipt is the body's receipt, if it is one.
	receipt *parleyv1.Receipt
	issued  time.Time // the sender's issued_at
	// given is when the entry counts as given (t_given): see the package
	// documentation.
	given time.Time
	// acks holds, per party index, that party's acknowledgement of this
	// entry; nil until the first one.
	acks []ack
}

// ack is one party's acknowledgement of an entry, over all its receipts.
type ack struct {
	ok bool
	// received is the earliest received_at the party stated.
	received time.Time
	// at is the earliest time the party acknowledged the entry: the later
	// of received_at and the issued_at of the receipt stating it.
	at time.Time
	// by is the receipt that acknowledged the entry at 'at'.
	by *item
}

// logIndex orders and cross-references the entries of a log.
type logIndex struct {
	items   map[key]*item
	feeds   map[string][]*item // each feed ordered by seq
	all     []*item            // ordered by sender, seq
	senders []string           // sorted
	// earliest is the earliest t_given of any entry; zero if none.
	earliest time.Time
}

func compareItems(a, b *item) int {
	return cmp.Or(cmp.Compare(a.sender, b.sender), cmp.Compare(a.seq, b.seq), bytes.Compare(a.digest[:], b.digest[:]))
}

// index builds the log index and computes every entry's t_given.
func (e *Engine) index(entries []Entry) *logIndex {
	all := make([]*item, 0, len(entries))
	for _, en := range entries {
		body := en.Statement.GetBody()
		if body == nil || body.GetKind() == nil {
			continue
		}
		issued, _ := timeOf(en.Statement.GetHeader().GetIssuedAt())
		all = append(all, &item{sender: en.Sender, seq: en.Seq, digest: en.Digest, body: body, receipt: body.GetReceipt(), issued: issued})
	}
	slices.SortFunc(all, compareItems)
	all = slices.CompactFunc(all, func(a, b *item) bool { return a.sender == b.sender && a.seq == b.seq })

	lg := &logIndex{items: make(map[key]*item, len(all)), feeds: make(map[string][]*item), all: all}
	for _, it := range all {
		lg.items[key{it.sender, it.seq}] = it
		if len(lg.feeds[it.sender]) == 0 {
			lg.senders = append(lg.senders, it.sender)
		}
		lg.feeds[it.sender] = append(lg.feeds[it.sender], it)
	}

	// Acknowledgements. Receipts are visited in (sender, seq) order, so
	// ties between equal times go to the first receipt in that order.
	for _, r := range all {
		rc := r.receipt
		if rc == nil {
			continue
		}
		p, ok := e.party[r.sender]
		if !ok {
			continue
		}
		for _, a := range rc.GetAcks() {
			target := lg.items[key{a.GetSender(), a.GetSeq()}]
			if target == nil || target.sender == r.sender || target.receipt != nil ||
				!bytes.Equal(a.GetDigest(), target.digest[:]) {
				continue
			}
			received, ok := timeOf(a.GetReceivedAt())
			if !ok {
				continue
			}
			at := received
			if r.issued.After(at) {
				at = r.issued
			}
			if target.acks == nil {
				target.acks = make([]ack, len(e.parties))
			}
			prev := &target.acks[p]
			if !prev.ok {
				*prev = ack{ok: true, received: received, at: at, by: r}
				continue
			}
			if received.Before(prev.received) {
				prev.received = received
			}
			if at.Before(prev.at) {
				prev.at, prev.by = at, r
			}
		}
	}

	for _, it := range all {
		it.given = e.given(it)
		if it.given.IsZero() {
			continue
		}
		if lg.earliest.IsZero() || it.given.Before(lg.earliest) {
			lg.earliest = it.given
		}
	}
	return lg
}

// given computes t_given: the earliest counterpart receipt, or the sender's
// issued_at if it is no later than that receipt and at most the clock skew
// earlier; issued_at alone while no counterpart has receipted the entry.
func (e *Engine) given(it *item) time.Time {
	var first time.Time
	for p, a := range it.acks {
		if !a.ok || e.parties[p] == it.sender {
			continue
		}
		if first.IsZero() || a.received.Before(first) {
			first = a.received
		}
	}
	if first.IsZero() {
		return it.issued
	}
	if !it.issued.IsZero() && !it.issued.After(first) && first.Sub(it.issued) <= e.skew {
		return it.issued
	}
	return first
}

// ackBy returns party p's acknowledgement of it.
func (e *Engine) ackBy(it *item, p string) ack {
	i, ok := e.party[p]
	if !ok || it.acks == nil {
		return ack{}
	}
	return it.acks[i]
}

// timeOf converts a timestamp; ok is false for a missing one.
func timeOf(ts *timestamppb.Timestamp) (time.Time, bool) {
	if ts == nil {
		return time.Time{}, false
	}
	return ts.AsTime().UTC(), true
}

// normalize returns the comparison form of a place name or designation.
func normalize(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}
