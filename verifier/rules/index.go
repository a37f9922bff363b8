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
	st     *parleyv1.Statement // with a body; nil for an entry given as rc or nt
	rc     *Receipt
	nt     *Notification
	// given is when the entry counts as given (t_given): see the package
	// documentation.
	given time.Time
	// acks holds, per party index, that party's acknowledgement of this
	// entry; nil until the first one.
	acks []ack
	// act is the activity of a notification or of an amendment applied to
	// it (vd2011 only).
	act *activity
}

// body returns the statement body.
func (it *item) body() *parleyv1.Body { return it.st.GetBody() }

// issued returns the sender's issued_at; zero if there is none.
func (it *item) issued() time.Time {
	if it.rc != nil {
		return it.rc.IssuedAt
	}
	if it.nt != nil {
		return it.nt.issued
	}
	t, _ := timeOf(it.st.GetHeader().GetIssuedAt())
	return t
}

// isReceipt reports whether the entry is a receipt.
func (it *item) isReceipt() bool {
	if it.rc != nil {
		return true
	}
	_, ok := it.body().GetKind().(*parleyv1.Body_Receipt)
	return ok
}

// isNotification reports whether the entry is an activity notification.
func (it *item) isNotification() bool {
	return it.nt != nil || it.body().GetNotification() != nil
}

// notification returns the content of an activity notification, whichever
// way it was given; nil if the entry is not one.
func (it *item) notification() *content {
	if it.nt != nil {
		return &it.nt.c
	}
	if n := it.body().GetNotification(); n != nil {
		return contentOf(n)
	}
	return nil
}

// kindName names the entry's body kind for findings.
func (it *item) kindName() string {
	switch {
	case it.rc != nil:
		return "a receipt"
	case it.nt != nil:
		return "a notification"
	}
	return kindName(it.body())
}

// receiptAcks returns the acknowledgements of a receipt, whichever way it
// was given; nil if the entry is not a receipt.
func (it *item) receiptAcks() []Ack {
	if it.rc != nil {
		return it.rc.Acks
	}
	rc := it.body().GetReceipt()
	if rc == nil {
		return nil
	}
	acks := make([]Ack, 0, len(rc.GetAcks()))
	for _, a := range rc.GetAcks() {
		received, ok := timeOf(a.GetReceivedAt())
		if !ok || len(a.GetDigest()) != 32 {
			// No receipt time, or not an entry digest: it matches no
			// entry.
			continue
		}
		acks = append(acks, Ack{Sender: a.GetSender(), Seq: a.GetSeq(), Digest: [32]byte(a.GetDigest()), ReceivedAt: received})
	}
	return acks
}

// ack is one party's acknowledgement of an entry, over all its receipts.
type ack struct {
	// received is the earliest received_at the party stated.
	received time.Time
	// at is the earliest time the party acknowledged the entry: the later
	// of received_at and the issued_at of the receipt stating it.
	at time.Time
	// by is the receipt that acknowledged the entry at 'at'; nil if the
	// party did not acknowledge it.
	by *item
}

// ok reports whether the party acknowledged the entry.
func (a ack) ok() bool { return a.by != nil }

// logIndex orders and cross-references the entries of a log.
type logIndex struct {
	feeds   map[string][]*item // each feed ordered by seq; a part of all
	all     []*item            // ordered by sender, seq
	senders []string           // sorted
	// earliest is the earliest t_given of any entry; zero if none.
	earliest time.Time
}

// item returns the entry of sender with seq, or nil.
func (lg *logIndex) item(sender string, seq uint64) *item {
	feed := lg.feeds[sender]
	i, ok := slices.BinarySearchFunc(feed, seq, func(it *item, seq uint64) int { return cmp.Compare(it.seq, seq) })
	if !ok {
		return nil
	}
	return feed[i]
}

func compareItems(a, b *item) int {
	return cmp.Or(cmp.Compare(a.sender, b.sender), cmp.Compare(a.seq, b.seq), bytes.Compare(a.digest[:], b.digest[:]))
}

// index builds the log index and computes every entry's t_given.
func (e *Engine) index(entries []Entry) *logIndex {
	// The items live in one array, and the acknowledgements in another:
	// an evaluation allocates per log, not per entry.
	store := make([]item, 0, len(entries))
	for _, en := range entries {
		if en.Statement == nil {
			switch {
			case en.Receipt != nil:
				store = append(store, item{sender: en.Sender, seq: en.Seq, digest: en.Digest, rc: en.Receipt})
			case en.Notification != nil:
				store = append(store, item{sender: en.Sender, seq: en.Seq, digest: en.Digest, nt: en.Notification})
			}
			continue
		}
		body := en.Statement.GetBody()
		if body == nil || body.GetKind() == nil {
			continue
		}
		store = append(store, item{sender: en.Sender, seq: en.Seq, digest: en.Digest, st: en.Statement})
	}
	all := make([]*item, len(store))
	for i := range store {
		all[i] = &store[i]
	}
	slices.SortFunc(all, compareItems)
	all = slices.CompactFunc(all, func(a, b *item) bool { return a.sender == b.sender && a.seq == b.seq })

	lg := &logIndex{feeds: make(map[string][]*item), all: all}
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].sender == all[i].sender {
			j++
		}
		lg.senders = append(lg.senders, all[i].sender)
		lg.feeds[all[i].sender] = all[i:j:j]
		i = j
	}

	// Acknowledgements. Receipts are visited in (sender, seq) order, so
	// ties between equal times go to the first receipt in that order.
	var slab []ack
	for _, r := range all {
		if !r.isReceipt() {
			continue
		}
		p, ok := e.party[r.sender]
		if !ok {
			continue
		}
		issued := r.issued()
		for _, a := range r.receiptAcks() {
			target := lg.item(a.Sender, a.Seq)
			if target == nil || target.sender == r.sender || target.isReceipt() || a.Digest != target.digest {
				continue
			}
			received := a.ReceivedAt
			at := received
			if issued.After(at) {
				at = issued
			}
			if target.acks == nil {
				if len(slab) < len(e.parties) {
					slab = make([]ack, len(e.parties)*min(len(all), 1024))
				}
				target.acks, slab = slab[:len(e.parties):len(e.parties)], slab[len(e.parties):]
			}
			prev := &target.acks[p]
			if !prev.ok() {
				*prev = ack{received: received, at: at, by: r}
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
		if !a.ok() || e.parties[p] == it.sender {
			continue
		}
		if first.IsZero() || a.received.Before(first) {
			first = a.received
		}
	}
	issued := it.issued()
	if first.IsZero() {
		return issued
	}
	if !issued.IsZero() && !issued.After(first) && first.Sub(issued) <= e.skew {
		return issued
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
