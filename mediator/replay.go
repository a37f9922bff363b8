package mediator

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"google.golang.org/protobuf/proto"

	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier"
	"github.com/parley-dev/parley/verifier/rules"
)

// This file is the auditor's pass over the mirrored logs. It reads each
// log once, sequentially, keeping for every entry only a compact record,
// and verifies every distinct envelope once (on in.Workers goroutines,
// while reading). Envelopes are read again, by location, only for the
// feeds that are not clean and for evidence.
//
// Its verdicts are those of [verifier.Verifier.Replay] over the union of
// the logs (see auditor.replay for the order): a feed whose entries all
// pass the checks that do not depend on the feed, with seqs 1 to n each
// once and every prev the digest of the entry before, is accepted whole,
// as Replay would; any other feed, and every envelope that does not parse,
// is handed to Replay itself, with its entries in the same order. Feeds do
// not depend on each other, so the union is what one Replay over all
// entries returns.

// distinct is one envelope digest found in the logs: 32 bytes, and the
// statement once verified.
type distinct struct {
	// digest is the envelope's digest.
	digest [32]byte
	// index and log are where it was found first, in party order and then
	// log order.
	index uint64
	log   int32
	// seq is the seq peeked from the envelope.
	seq uint64
	// parsed is the envelope parsed (Digest, PayloadDigest and Statement
	// only) if it passed the checks and is kept as its statement; the
	// statement is slimmed (see auditor.slim), its prev kept as prevID
	// instead. It is nil for a receipt or notification kept as rc or nt
	// (most entries: the digest is kept above, and a parsed envelope
	// beside it would cost 112 bytes more).
	parsed *envelope.Parsed
	// prevID is the id of the envelope whose digest the statement's prev
	// is, noID if it has none or no log holds that envelope.
	prevID uint32
	// rc is set for a receipt kept without its statement (parsed has no
	// Statement then): most entries are receipts.
	rc *receipt
	// nt is set for an activity notification kept without its statement
	// (parsed has no Statement then), as the rules read it.
	nt *notice
	// own is whether the log it was found first in is its sender's.
	own bool
	// status is the outcome of the stateless checks.
	status checkStatus
	// accepted is whether the replay accepted it; parsed is then set.
	accepted bool
}

// receipt is a receipt that passed the checks, kept as what the audit
// reads of it.
type receipt struct {
	sender string
	rules.Receipt
	// one holds Acks when there is one, as there usually is.
	one [1]rules.Ack
}

// notice is an activity notification that passed the checks, kept as
// what the audit reads of it: a third of the memory of its statement.
type notice struct {
	sender string
	*rules.Notification
}

// sender returns the sender of an envelope that passed the checks.
func (e *distinct) sender() string {
	switch {
	case e.rc != nil:
		return e.rc.sender
	case e.nt != nil:
		return e.nt.sender
	}
	return e.statement().GetHeader().GetSender()
}

// statement returns the statement of an envelope that passed the checks,
// if it is kept as its statement; nil if it is kept as rc or nt.
func (e *distinct) statement() *parleyv1.Statement {
	if e.parsed == nil {
		return nil
	}
	return e.parsed.Statement
}

// headerSeq returns the seq of an envelope that passed the checks, as its
// statement states it. (A receipt or notification kept as such has its
// seq peeked, which is the same for an envelope that passed the checks:
// its encoding is canonical.)
func (e *distinct) headerSeq() uint64 {
	if e.rc != nil || e.nt != nil {
		return e.seq
	}
	return e.statement().GetHeader().GetSeq()
}

// entry returns an accepted envelope as the rules read it.
func (e *distinct) entry() rules.Entry {
	en := rules.Entry{Sender: e.sender(), Seq: e.headerSeq(), Digest: e.digest, Statement: e.statement()}
	switch {
	case e.rc != nil:
		en.Receipt = &e.rc.Receipt
	case e.nt != nil:
		en.Notification = e.nt.Notification
	}
	return en
}

// noID is the prevID of an envelope that chains to none in the logs.
const noID = ^uint32(0)

type checkStatus uint8

const (
	unchecked checkStatus = iota
	checkedOK
	checkedFailed
	unreadable
)

// auditProgress is what the periodic audit of one mediator remembers from
// one run to the next: how far each mirrored log was verified, so that
// signatures and content are checked once per envelope over the life of
// the process, not once per run. A log's first verified entries only need
// parsing (package rules needs their statements).
//
// It is safe for concurrent use; audits using it run one at a time.
type auditProgress struct {
	mu sync.Mutex
	// verified is, by party, how many leading entries of its mirror were
	// audited: each holds an envelope whose first occurrence was checked,
	// and passed unless its digest is in failed.
	verified map[string]uint64
	// failed are the digests of the envelopes that failed the checks; they
	// are checked again every run. (Only misbehaving nodes log them.)
	failed map[[32]byte]bool
}

// logPass is what reading one log yields besides the distinct envelopes.
type logPass struct {
	// seqs are, by peeked sender, the seqs its entries in this log claim.
	seqs map[string]*[]uint64
	// own are the entries of the log's own party, in log order.
	own []ownEntry
}

type ownEntry struct {
	index uint64
	id    uint32
}

// checkBatch is a batch of envelopes verified by one worker.
type checkBatch struct {
	ids  []uint32
	buf  []byte
	ends []int
	// known are the entries verified by an earlier run: only parsed.
	known []bool
	out   []checkResult
}

type checkResult struct {
	status  checkStatus
	parsed  *envelope.Parsed
	rc      *receipt
	nt      *notice
	prev    [32]byte
	chained bool
	// sender and digest are set when the checks failed.
	sender string
	digest [32]byte
}

const batchSize = 128

// scan reads every log, records the distinct envelopes and verifies them.
func (ad *auditor) scan() error {
	workers := ad.in.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// Every envelope of the largest log is distinct.
	var most uint64
	for _, l := range ad.logs {
		most = max(most, l.size)
	}
	ad.ids = make(map[[32]byte]uint32, most)
	ad.dist = make([]distinct, 0, most)
	ad.failedSender = map[uint32]string{}
	ad.names = make(map[string]string, len(ad.a.Parties))
	for _, p := range ad.a.Parties {
		ad.names[p.ID] = p.ID
	}
	ad.stride = (len(ad.logs) + 63) / 64
	ad.masks = make([]uint64, 0, int(most)*ad.stride)
	work := make(chan *checkBatch, 2*workers)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done []*checkBatch
	)
	pool := sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*checkBatch
			for b := range work {
				ad.check(b)
				buf := b.buf[:0]
				pool.Put(&buf)
				b.buf, b.ends, b.known = nil, nil, nil
				mine = append(mine, b)
			}
			mu.Lock()
			done = append(done, mine...)
			mu.Unlock()
		}()
	}
	prog := ad.in.progress
	var verified map[string]uint64
	var failed map[[32]byte]bool
	if prog != nil {
		prog.mu.Lock()
		verified, failed = prog.verified, prog.failed
	}
	var b *checkBatch
	flush := func() {
		if b != nil && len(b.ids) > 0 {
			work <- b
		}
		b = nil
	}
	var err error
	for li, l := range ad.logs {
		lp := &logPass{seqs: map[string]*[]uint64{}}
		ad.passes = append(ad.passes, lp)
		known := verified[l.party]
		// With progress, entries verified before are taken on trust by
		// position, so the entries read must be those the checkpoint (or
		// else the mirror's tree, built as they were written) commits to:
		// the mirror's file could have changed since.
		var (
			tree *compact.Range
			lh   *leafHasher
		)
		if prog != nil {
			tree, lh = ranges.NewEmptyRange(0), newLeafHasher()
		}
		err = l.ml.Scan(0, l.size, func(i uint64, raw []byte) error {
			if tree != nil {
				if err := tree.Append(lh.hash(raw), nil); err != nil {
					return err
				}
			}
			d := sha256.Sum256(raw)
			pk, _ := envelope.PeekRawHeader(raw)
			id, seen := ad.ids[d]
			if !seen {
				id = uint32(len(ad.dist))
				ad.ids[d] = id
				ad.dist = append(ad.dist, distinct{digest: d, log: int32(li), index: i, seq: pk.Seq, own: string(pk.Sender) == l.party, prevID: noID})
				for range ad.stride {
					ad.masks = append(ad.masks, 0)
				}
				if b == nil {
					b = &checkBatch{buf: *pool.Get().(*[]byte)}
				}
				b.ids = append(b.ids, id)
				b.buf = append(b.buf, raw...)
				b.ends = append(b.ends, len(b.buf))
				b.known = append(b.known, i < known && !failed[d])
				if len(b.ids) == batchSize {
					flush()
				}
			}
			ad.masks[int(id)*ad.stride+li/64] |= 1 << (li % 64)
			if len(pk.Sender) > 0 {
				if s := lp.seqs[string(pk.Sender)]; s != nil {
					*s = append(*s, pk.Seq)
				} else {
					lp.seqs[string(pk.Sender)] = &[]uint64{pk.Seq}
				}
			}
			if string(pk.Sender) == l.party {
				lp.own = append(lp.own, ownEntry{index: i, id: id})
			}
			return nil
		})
		if err != nil {
			break
		}
		if tree != nil && tree.End() > 0 {
			want, werr := l.ml.RootAt(l.size)
			if l.cp != nil && l.cp.Size == l.size {
				want, werr = l.cp.Hash, nil
			}
			if root, rerr := tree.GetRootHash(nil); werr != nil || rerr != nil || !bytes.Equal(root, want) {
				err = fmt.Errorf("%w: %s's log no longer reproduces its root hash", errMirrorChanged, l.party)
				break
			}
		}
	}
	flush()
	close(work)
	wg.Wait()
	switch {
	case errors.Is(err, errMirrorChanged):
		clear(verified)
		clear(failed)
	case err == nil && prog != nil:
		for _, l := range ad.logs {
			verified[l.party] = l.size
		}
	}
	for _, b := range done {
		for k, id := range b.ids {
			r := b.out[k]
			e := &ad.dist[id]
			e.status, e.parsed, e.rc, e.nt = r.status, r.parsed, r.rc, r.nt
			if r.chained {
				if pid, ok := ad.ids[r.prev]; ok {
					e.prevID = pid
				}
			}
			if r.status == checkedFailed {
				ad.failedSender[id] = r.sender
			}
			if prog != nil && r.status != checkedOK {
				failed[r.digest] = true
			}
		}
	}
	if prog != nil {
		prog.mu.Unlock()
	}
	if errors.Is(err, errMirrorChanged) {
		return err
	}
	if err != nil {
		return fmt.Errorf("couldn't audit: %w", err)
	}
	return nil
}

// errMirrorChanged is a mirrored log whose entries no longer reproduce its
// checkpoint's root hash though the mirror's tree, built when they were
// written, does: its file changed since.
var errMirrorChanged = errors.New("mirrored entries changed on disk")

// check verifies one batch: each envelope as verifier.Check would accept
// it as the next entry of its feed (the feed itself is judged later), or
// only parses it if an earlier run verified it.
func (ad *auditor) check(b *checkBatch) {
	b.out = make([]checkResult, len(b.ids))
	start := 0
	for k := range b.ids {
		raw := b.buf[start:b.ends[k]:b.ends[k]]
		start = b.ends[k]
		var p *envelope.Parsed
		pk, _ := envelope.PeekRawHeader(raw)
		switch {
		case b.known[k]:
			p = parseVerified(raw)
		case pk.Seq == 0:
			// Refused whatever the feed; the replay says why.
		default:
			head := func(string) verifier.FeedState {
				if len(pk.Prev) != sha256.Size {
					return verifier.FeedState{Seq: pk.Seq - 1}
				}
				return verifier.FeedState{Seq: pk.Seq - 1, Digest: [32]byte(pk.Prev)}
			}
			if res, err := ad.v.Check(raw, head, nil); err == nil && res.Outcome == verifier.Accepted {
				p = res.Parsed
			}
		}
		if p == nil {
			// The verifier's replay will say what is wrong with it.
			if q, err := envelope.Parse(raw); err != nil {
				b.out[k] = checkResult{status: unreadable, digest: sha256.Sum256(raw)}
			} else {
				b.out[k] = checkResult{status: checkedFailed, sender: q.Statement.GetHeader().GetSender(), digest: q.Digest}
			}
			continue
		}
		// Keep the statement and digests, not the envelope.
		p.Raw, p.Envelope = nil, nil
		prev, chained := ad.slim(p.Statement)
		rc := receiptOf(p.Statement)
		var nt *notice
		if rc != nil {
			p = nil
		} else if p.Statement.GetBody().GetNotification() != nil {
			h := p.Statement.GetHeader()
			en := rules.Compact(rules.Entry{Sender: h.GetSender(), Seq: h.GetSeq(), Statement: p.Statement})
			nt = &notice{sender: h.GetSender(), Notification: en.Notification}
			p = nil
		}
		b.out[k] = checkResult{status: checkedOK, parsed: p, rc: rc, nt: nt, prev: prev, chained: chained}
	}
}

// receiptOf returns a slimmed receipt as what the audit reads of it, or nil
// if the statement is not a receipt or does not fit that form (an
// acknowledgement without a digest or a receipt time, which validation
// refuses).
func receiptOf(st *parleyv1.Statement) *receipt {
	rc := st.GetBody().GetReceipt()
	issued := st.GetHeader().GetIssuedAt()
	if rc == nil || issued == nil {
		return nil
	}
	out := &receipt{sender: st.GetHeader().GetSender(), Receipt: rules.Receipt{IssuedAt: issued.AsTime().UTC()}}
	if n := len(rc.GetAcks()); n == 1 {
		out.Acks = out.one[:]
	} else {
		out.Acks = make([]rules.Ack, n)
	}
	for i, a := range rc.GetAcks() {
		if len(a.GetDigest()) != sha256.Size || a.GetReceivedAt() == nil {
			return nil
		}
		out.Acks[i] = rules.Ack{Sender: a.GetSender(), Seq: a.GetSeq(), Digest: [32]byte(a.GetDigest()), ReceivedAt: a.GetReceivedAt().AsTime().UTC()}
	}
	return out
}

// slim drops from a verified statement what the rest of the audit does
// not read, and makes the strings that every statement repeats share one
// copy: a large log's statements are most of an audit's memory. The
// agreement id, checked equal to the agreement's, and the party ids
// become the agreement's strings; prev is returned, to be kept with the
// entry, and dropped from the header.
//
// It is called by the check workers: it only reads the auditor.
func (ad *auditor) slim(st *parleyv1.Statement) (prev [32]byte, chained bool) {
	h := st.GetHeader()
	if h == nil {
		return prev, false
	}
	if len(h.Prev) == sha256.Size {
		prev, chained = [32]byte(h.Prev), true
	}
	h.Prev = nil
	if h.AgreementId == ad.a.ID {
		h.AgreementId = ad.a.ID
	}
	h.Sender = ad.name(h.Sender)
	for _, ack := range st.GetBody().GetReceipt().GetAcks() {
		ack.Sender = ad.name(ack.Sender)
	}
	return prev, chained
}

// name returns the agreement's copy of party id s if it is one, else s.
func (ad *auditor) name(s string) string {
	if n, ok := ad.names[s]; ok {
		return n
	}
	return s
}

// parseVerified parses an envelope that an earlier audit verified: only
// its statement, which is all the audit needs of it. It returns nil if
// that fails.
func parseVerified(raw []byte) *envelope.Parsed {
	payload, ok := envelope.PeekPayload(raw)
	st := new(parleyv1.Statement)
	if !ok || proto.Unmarshal(payload, st) != nil {
		return nil
	}
	return &envelope.Parsed{Digest: sha256.Sum256(raw), PayloadDigest: sha256.Sum256(payload), Statement: st}
}

// inLog reports whether log li holds the envelope id.
func (ad *auditor) inLog(id uint32, li int) bool {
	return ad.masks[int(id)*ad.stride+li/64]&(1<<(li%64)) != 0
}

// rawAt reads the envelope at index of log li from the mirror.
func (ad *auditor) rawAt(li int32, index uint64) ([]byte, error) {
	raws, err := ad.logs[li].ml.Entries(index, 1)
	if err != nil {
		return nil, err
	}
	return raws[0], nil
}

// replay judges every feed over the union of the logs: every distinct
// envelope once, each sender's own log first, so that where a sender
// equivocated the statement its own node logged is the one accepted. It
// returns the accepted entries, by sender and then seq, apart from the
// verdicts (the replay's Accepted is left empty), as their ids in ad.dist:
// 4 bytes each where a rules.Entry takes 80 (see entry).
func (ad *auditor) replay() (*verifier.Replayed, []uint32, error) {
	order := make([]uint32, 0, len(ad.dist))
	for id, e := range ad.dist {
		if e.own {
			order = append(order, uint32(id))
		}
	}
	for id, e := range ad.dist {
		if !e.own {
			order = append(order, uint32(id))
		}
	}
	feeds := map[string][]uint32{}
	for _, id := range order {
		e := &ad.dist[id]
		switch e.status {
		case checkedOK:
			s := e.sender()
			feeds[s] = append(feeds[s], id)
		case checkedFailed:
			s := ad.failedSender[id]
			feeds[s] = append(feeds[s], id)
		}
	}
	senders := sortedKeys(feeds)
	rep := &verifier.Replayed{}
	slow := map[string]bool{}
	fast := map[string]*verifier.FeedReplay{}
	for _, s := range senders {
		ids := feeds[s]
		bySeq := func(x, y uint32) int { return cmp.Compare(ad.dist[x].seq, ad.dist[y].seq) }
		// Feeds are usually logged in seq order already.
		if !slices.IsSortedFunc(ids, bySeq) {
			slices.SortStableFunc(ids, bySeq)
		}
		if fr := ad.cleanFeed(s, ids); fr != nil {
			fast[s] = fr
		} else {
			slow[s] = true
		}
	}
	var inputs []verifier.ReplayInput
	for _, id := range order {
		e := &ad.dist[id]
		if e.status == unreadable || e.status == checkedFailed && slow[ad.failedSender[id]] || e.status == checkedOK && slow[e.sender()] {
			raw, err := ad.rawAt(e.log, e.index)
			if err != nil {
				return nil, nil, fmt.Errorf("couldn't audit: %w", err)
			}
			inputs = append(inputs, verifier.ReplayInput{Raw: raw, Source: fmt.Sprintf("%s's log, index %d", ad.logs[e.log].party, e.index)})
		}
	}
	var replayed *verifier.Replayed
	if len(inputs) > 0 {
		replayed = ad.v.Replay(inputs, verifier.ReplayOptions{Workers: ad.in.Workers})
		rep.Unreadable = replayed.Unreadable
	}
	var accepted []uint32
	next := 0 // next feed of replayed
	for _, s := range senders {
		if fr := fast[s]; fr != nil {
			rep.Feeds = append(rep.Feeds, fr)
			accepted = slices.Grow(accepted, len(feeds[s]))
			for _, id := range feeds[s] {
				ad.dist[id].accepted = true
				accepted = append(accepted, id)
			}
			continue
		}
		fr := replayed.Feeds[next]
		next++
		if fr.Sender != s {
			return nil, nil, fmt.Errorf("couldn't audit: replayed feed %q, want %q", fr.Sender, s)
		}
		rep.Feeds = append(rep.Feeds, fr)
		for _, r := range replayed.Accepted {
			if r.Sender() != s {
				continue
			}
			p := &envelope.Parsed{Digest: r.Parsed.Digest, PayloadDigest: r.Parsed.PayloadDigest, Statement: r.Parsed.Statement}
			id := ad.ids[p.Digest]
			e := &ad.dist[id]
			e.parsed, e.rc, e.nt, e.accepted = p, nil, nil, true
			accepted = append(accepted, id)
		}
	}
	return rep, accepted, nil
}

// cleanFeed returns the replay of sender's feed, its distinct envelopes in
// replay order, if every one is accepted: all passed the checks, and they
// are seqs 1 to n, each chaining to the one before. Otherwise it returns
// nil.
func (ad *auditor) cleanFeed(sender string, ids []uint32) *verifier.FeedReplay {
	for i, id := range ids {
		e := &ad.dist[id]
		if e.status != checkedOK {
			return nil
		}
		if e.headerSeq() != uint64(i)+1 {
			return nil
		}
		if i > 0 && e.prevID != ids[i-1] {
			return nil
		}
	}
	fr := &verifier.FeedReplay{Sender: sender, Accepted: len(ids)}
	if len(ids) == 0 {
		return fr
	}
	last := &ad.dist[ids[len(ids)-1]]
	fr.Head = verifier.FeedState{Seq: uint64(len(ids)), Digest: last.digest}
	if last.parsed != nil {
		fr.Head.PayloadDigest = last.parsed.PayloadDigest
		return fr
	}
	// Kept as rc or nt, without its parsed envelope: its payload digest is
	// read again from the mirror, once per feed. Should that fail, the
	// verifier's replay judges the feed.
	raw, err := ad.rawAt(last.log, last.index)
	payload, ok := envelope.PeekPayload(raw)
	if err != nil || !ok || sha256.Sum256(raw) != last.digest {
		return nil
	}
	fr.Head.PayloadDigest = sha256.Sum256(payload)
	return fr
}
