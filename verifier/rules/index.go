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
	// src is the entry as it was given: a *parleyv1.Statement with a
	// body, a *Receipt or a *Notification (one interface, not three
	// pointers: 8 bytes less for every entry).
	src any
	// givenAt is when the entry counts as given (t_given, see the package
	// documentation); unset if it has none.
	givenAt stamp
	// ackRun numbers the entry's acknowledgements in its log index, one
	// per party (see logIndex.acksOf); 0 until the first one.
	ackRun uint32
	// actAt numbers the activity of a notification or of an amendment
	// applied to it (vd2011 only; see vdState.activityOf); 0 if none.
	actAt int32
}

// st returns the entry's statement; nil if it was given as a Receipt or
// Notification.
func (it *item) st() *parleyv1.Statement {
	st, _ := it.src.(*parleyv1.Statement)
	return st
}

// rc returns the entry as a Receipt; nil if it was not given as one.
func (it *item) rc() *Receipt {
	rc, _ := it.src.(*Receipt)
	return rc
}

// nt returns the entry as a Notification; nil if it was not given as one.
func (it *item) nt() *Notification {
	nt, _ := it.src.(*Notification)
	return nt
}

// given returns when the entry counts as given (t_given); the zero time
// if it has none.
func (it *item) given() time.Time { return it.givenAt.time() }

// body returns the statement body.
func (it *item) body() *parleyv1.Body { return it.st().GetBody() }

// issued returns the sender's issued_at; zero if there is none.
func (it *item) issued() time.Time {
	switch src := it.src.(type) {
	case *Receipt:
		return src.IssuedAt
	case *Notification:
		return src.issued().time()
	}
	t, _ := timeOf(it.st().GetHeader().GetIssuedAt())
	return t
}

// isReceipt reports whether the entry is a receipt.
func (it *item) isReceipt() bool {
	if it.rc() != nil {
		return true
	}
	_, ok := it.body().GetKind().(*parleyv1.Body_Receipt)
	return ok
}

// isNotification reports whether the entry is an activity notification.
func (it *item) isNotification() bool {
	return it.nt() != nil || it.body().GetNotification() != nil
}

// notification returns the content of an activity notification, whichever
// way it was given; nil if the entry is not one.
func (it *item) notification() *content {
	if nt := it.nt(); nt != nil {
		return &nt.c
	}
	if n := it.body().GetNotification(); n != nil {
		c := contentOf(n)
		return &c
	}
	return nil
}

// kindName names the entry's body kind for findings.
func (it *item) kindName() string {
	switch {
	case it.rc() != nil:
		return "a receipt"
	case it.nt() != nil:
		return "a notification"
	}
	return kindName(it.body())
}

// receiptAcks returns the acknowledgements of a receipt, whichever way it
// was given; nil if the entry is not a receipt.
func (it *item) receiptAcks() []Ack {
	if rc := it.rc(); rc != nil {
		return rc.Acks
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
	// receivedAt is the earliest received_at the party stated.
	receivedAt stamp
	// firstAt is the earliest time the party acknowledged the entry: the
	// later of received_at and the issued_at of the receipt stating it.
	firstAt stamp
	// by is the receipt that acknowledged the entry at firstAt; nil if the
	// party did not acknowledge it.
	by *item
}

// received returns the earliest received_at the party stated.
func (a ack) received() time.Time { return a.receivedAt.time() }

// at returns the earliest time the party acknowledged the entry.
func (a ack) at() time.Time { return a.firstAt.time() }

// ok reports whether the party acknowledged the entry.
func (a ack) ok() bool { return a.by != nil }

// logIndex orders and cross-references the entries of a log.
type logIndex struct {
	feeds   map[string][]*item // each feed ordered by seq; a part of all
	all     []*item            // ordered by sender, seq
	senders []string           // sorted
	// ackRuns holds the acknowledgements of the entries that have any: run
	// r (from 1) is ackRuns[(r-1)/ackChunk][(r-1)%ackChunk*parties:], one
	// ack per party index. Chunks, not one growing array: no copying, and
	// no slice header in every item.
	ackRuns [][]ack
	runs    int
	parties int
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

// index builds the log index of entries and computes every entry's
// t_given.
func (e *Engine) index(entries []Entry) *logIndex {
	l := e.NewLog(len(entries))
	for _, en := range entries {
		l.Add(en)
	}
	return l.index()
}

// Log gathers the entries of one evaluation ([Log.Evaluate]). A caller that
// reads a large log entry by entry adds each to a Log instead of holding
// them in a slice of its own for [Engine.Evaluate]: the Log keeps what the
// rules read of each, once. A Log is not safe for concurrent use.
type Log struct {
	e *Engine
	// store holds the items in one array: an evaluation allocates per
	// log, not per entry.
	store []item
	done  bool
}

// NewLog returns an empty Log for e, with room for capacity entries (a
// hint: a Log takes any number).
func (e *Engine) NewLog(capacity int) *Log {
	return &Log{e: e, store: make([]item, 0, max(capacity, 0))}
}

// Len returns how many entries the log holds: those added, less those
// without a statement body (nor a Receipt or Notification), which the rules
// ignore.
func (l *Log) Len() int { return len(l.store) }

// Add adds en to the log. The Log keeps en's Statement, Receipt or
// Notification: they must not change until the evaluation. Add panics
// after [Log.Evaluate].
func (l *Log) Add(en Entry) {
	if l.done {
		panic("rules: Log.Add after Log.Evaluate")
	}
	if en.Statement == nil {
		switch {
		case en.Receipt != nil:
			l.store = append(l.store, item{sender: en.Sender, seq: en.Seq, digest: en.Digest, src: en.Receipt})
		case en.Notification != nil:
			l.store = append(l.store, item{sender: en.Sender, seq: en.Seq, digest: en.Digest, src: en.Notification})
		}
		return
	}
	body := en.Statement.GetBody()
	if body == nil || body.GetKind() == nil {
		return
	}
	l.store = append(l.store, item{sender: en.Sender, seq: en.Seq, digest: en.Digest, src: en.Statement})
}

// Evaluate is [Engine.Evaluate] over the entries added. A Log is evaluated
// once: its entries are then the evaluation's, and a second call panics.
func (l *Log) Evaluate(now time.Time) []*parleyv1.Finding {
	return l.e.evaluate(l.index(), now)
}

// EvaluateEach is [Log.Evaluate] for a caller that needs less than the
// list (counts, say): it hands fn each finding as it is made, in no
// particular order, and keeps none, so that a list longer than the log
// (a finding per entry and party for the receipts of a long silence) is
// never held whole. fn sees every finding of the list once. Like
// Evaluate, it may be called once.
func (l *Log) EvaluateEach(now time.Time, fn func(*parleyv1.Finding)) {
	l.e.judge(l.index(), now, &collector{sink: fn})
}

// index builds the log index of l and computes every entry's t_given.
func (l *Log) index() *logIndex {
	if l.done {
		panic("rules: Log evaluated twice")
	}
	l.done = true
	e, store := l.e, l.store
	l.store = nil
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
	lg.parties = len(e.parties)
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
			if target.ackRun == 0 {
				target.ackRun = lg.newAckRun(len(all))
			}
			prev := &lg.acksOf(target)[p]
			if !prev.ok() {
				*prev = ack{receivedAt: stampAt(received, true), firstAt: stampAt(at, true), by: r}
				continue
			}
			if received.Before(prev.received()) {
				prev.receivedAt = stampAt(received, true)
			}
			if at.Before(prev.at()) {
				prev.firstAt, prev.by = stampAt(at, true), r
			}
		}
	}

	for _, it := range all {
		given := e.given(it, lg.acksOf(it))
		it.givenAt = stampAt(given, !given.IsZero())
		if given.IsZero() {
			continue
		}
		if lg.earliest.IsZero() || given.Before(lg.earliest) {
			lg.earliest = given
		}
	}
	return lg
}

// given computes t_given: the earliest counterpart receipt, or the sender's
// issued_at if it is no later than that receipt and at most the clock skew
// earlier; issued_at alone while no counterpart has receipted the entry.
// acks are its acknowledgements (see logIndex.acksOf).
func (e *Engine) given(it *item, acks []ack) time.Time {
	var first time.Time
	for p, a := range acks {
		if !a.ok() || e.parties[p] == it.sender {
			continue
		}
		if first.IsZero() || a.received().Before(first) {
			first = a.received()
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

// ackChunk is how many runs of acknowledgements a chunk of
// logIndex.ackRuns holds.
const ackChunk = 1024

// newAckRun adds a run of acknowledgements, none yet, and returns its
// number. A log of n entries has at most n runs.
func (lg *logIndex) newAckRun(n int) uint32 {
	if lg.runs%ackChunk == 0 {
		lg.ackRuns = append(lg.ackRuns, make([]ack, lg.parties*min(n-lg.runs, ackChunk)))
	}
	lg.runs++
	return uint32(lg.runs)
}

// acksOf returns the acknowledgements of it by party index; nil if it has
// none.
func (lg *logIndex) acksOf(it *item) []ack {
	if it.ackRun == 0 {
		return nil
	}
	r := int(it.ackRun - 1)
	i := r % ackChunk * lg.parties
	return lg.ackRuns[r/ackChunk][i : i+lg.parties : i+lg.parties]
}

// ackBy returns party p's acknowledgement of it.
func (lg *logIndex) ackBy(e *Engine, it *item, p string) ack {
	i, ok := e.party[p]
	if acks := lg.acksOf(it); ok && acks != nil {
		return acks[i]
	}
	return ack{}
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
