package verifier

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/parley-dev/parley/envelope"
)

// ReplayInput is one envelope given to [Verifier.Replay], with where it was
// read from.
type ReplayInput struct {
	// Raw is the envelope exactly as logged.
	Raw []byte
	// Source says where Raw was read, e.g. "alpha log index 7" or
	// "file.jsonl:3"; it is only reported.
	Source string
}

// Replayed is the outcome of [Verifier.Replay].
type Replayed struct {
	// Feeds are the results per claimed sender, sorted by sender.
	Feeds []*FeedReplay
	// Unreadable are the envelopes that could not be parsed, so have no
	// sender.
	Unreadable []Refusal
	// Accepted are the accepted entries, by sender and then seq.
	Accepted []Result
}

// FeedReplay is the outcome of replaying one sender's feed.
type FeedReplay struct {
	// Sender is the sender the entries claim.
	Sender string
	// Accepted is how many entries extended the feed; Head is the last one
	// (the zero FeedState if none).
	Accepted int
	Head     FeedState
	// Duplicates are entries repeating an accepted statement.
	Duplicates []Refusal
	// Gaps are the places where the feed skips seqs.
	Gaps []Gap
	// Equivocations are entries contradicting an accepted one; each holds
	// both envelopes.
	Equivocations []Equivocation
	// BadSignatures are entries without a valid signature of the sender
	// (including signatures by a key outside its validity window).
	BadSignatures []Refusal
	// Refused are entries refused for any other reason (wrong agreement,
	// unknown sender, wrong prev, invalid statement), and entries left
	// unverified because the feed stops at an earlier refused entry.
	Refused []Refusal
}

// Refusal is one entry and what was wrong with it (or, for a duplicate,
// that it is one).
type Refusal struct {
	Seq    uint64
	Source string
	Err    error
}

// Gap is an entry that came after missing seqs, and how many entries after
// it were left unverified because of the same gap.
type Gap struct {
	Expected, Got uint64
	Source        string
	Later         int
}

// Equivocation is an entry whose seq already holds another statement of
// its sender.
type Equivocation struct {
	*EquivocationError
	// Source is where the second envelope was read.
	Source string
}

// Refused returns how many entries failed verification: every entry that
// is neither accepted nor a duplicate.
func (r *Replayed) Refused() int {
	n := len(r.Unreadable)
	for _, f := range r.Feeds {
		n += len(f.BadSignatures) + len(f.Refused) + len(f.Equivocations)
		for _, g := range f.Gaps {
			n += 1 + g.Later
		}
	}
	return n
}

// ReplayOptions tune [Verifier.Replay].
type ReplayOptions struct {
	// Workers is how many goroutines verify signatures and content.
	// Default: runtime.GOMAXPROCS(0).
	Workers int
}

// prechecked is what the stateless steps of Check found about one input.
type prechecked struct {
	in     ReplayInput
	p      *envelope.Parsed
	keyID  string
	seq    uint64
	sender string
	// err is the error of the first failing step before sequencing.
	err error
	// invalid is the content validation error, which counts only if the
	// entry would be accepted.
	invalid error
}

// Replay verifies envelopes as a verifier re-reading whole logs does: it
// groups them by sender, orders each feed by seq (stably, so among
// envelopes with the same seq the one given first is accepted and a
// different statement given later is an equivocation) and checks each
// entry against the feed built so far, exactly as [Verifier.Check] would
// with that feed's head and history.
//
// The checks that do not depend on the feed (parsing, signatures, content
// validation) run on opts.Workers goroutines; placing entries in their
// feeds is sequential. Replay keeps every accepted envelope in memory.
func (v *Verifier) Replay(inputs []ReplayInput, opts ReplayOptions) *Replayed {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	pre := make([]prechecked, len(inputs))
	var next atomic.Int64
	var wg sync.WaitGroup
	const chunk = 256
	for range min(workers, max(1, len(inputs)/chunk+1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= len(inputs) {
					return
				}
				for i := start; i < min(start+chunk, len(inputs)); i++ {
					pre[i] = v.precheck(inputs[i])
				}
			}
		}()
	}
	wg.Wait()

	rep := &Replayed{}
	feeds := map[string][]*prechecked{}
	for i := range pre {
		e := &pre[i]
		if e.p == nil {
			rep.Unreadable = append(rep.Unreadable, Refusal{Source: e.in.Source, Err: e.err})
			continue
		}
		feeds[e.sender] = append(feeds[e.sender], e)
	}
	senders := make([]string, 0, len(feeds))
	for s := range feeds {
		senders = append(senders, s)
	}
	slices.Sort(senders)
	for _, sender := range senders {
		entries := feeds[sender]
		slices.SortStableFunc(entries, func(x, y *prechecked) int { return cmp.Compare(x.seq, y.seq) })
		fr := &FeedReplay{Sender: sender}
		rep.Feeds = append(rep.Feeds, fr)
		rep.Accepted = v.replayFeed(fr, entries, rep.Accepted)
	}
	return rep
}

// precheck runs the steps of Check that do not depend on the feed.
func (v *Verifier) precheck(in ReplayInput) prechecked {
	e := prechecked{in: in}
	p, err := envelope.Parse(in.Raw)
	if err != nil {
		e.err = fmt.Errorf("couldn't parse entry: %w", err)
		return e
	}
	e.p = p
	st := p.Statement
	h := st.GetHeader()
	e.sender, e.seq = h.GetSender(), h.GetSeq()
	switch {
	case h == nil:
		e.err = fmt.Errorf("%w: statement has no header", ErrInvalid)
		return e
	case h.AgreementId != v.agreementID:
		e.err = fmt.Errorf("%w: entry is for agreement %q, want %q", ErrWrongAgreement, clip(h.AgreementId), v.agreementID)
		return e
	}
	pty, ok := v.parties[h.Sender]
	if !ok {
		e.err = fmt.Errorf("%w: %q is not a party to agreement %q (want one of %s)", ErrUnknownSender, clip(h.Sender), v.agreementID, v.partyIDs)
		return e
	}
	if err := checkHeader(h); err != nil {
		e.err = err
		return e
	}
	if e.keyID, err = pty.verify(p, h.IssuedAt.AsTime()); err != nil {
		e.err = err
		return e
	}
	e.invalid = v.validate(st)
	return e
}

// replayFeed places one sender's entries, ordered by seq, and appends the
// accepted ones to accepted.
func (v *Verifier) replayFeed(fr *FeedReplay, entries []*prechecked, accepted []Result) []Result {
	var (
		head    FeedState
		history = map[uint64]FeedState{}
		// stuck are the next seqs at which an entry was refused: later
		// entries are gaps because of that refusal, not missing entries.
		stuck = map[uint64]bool{}
	)
	lookup := func(_ string, seq uint64) (FeedState, bool) {
		s, ok := history[seq]
		return s, ok
	}
	for _, e := range entries {
		err := e.err
		var outcome Outcome
		if err == nil {
			outcome, err = place(e.p, e.p.Statement.GetHeader(), head, lookup)
			if err == nil && outcome == Accepted {
				err = e.invalid
			}
		}
		ref := Refusal{Seq: e.seq, Source: e.in.Source, Err: err}
		var (
			gapErr *GapError
			eqErr  *EquivocationError
		)
		switch {
		case err == nil && outcome == Accepted:
			res := Result{Parsed: e.p, KeyID: e.keyID, Outcome: Accepted}
			head = res.State()
			history[head.Seq] = head
			fr.Accepted++
			fr.Head = head
			accepted = append(accepted, res)
		case err == nil:
			fr.Duplicates = append(fr.Duplicates, ref)
		case errors.As(err, &gapErr):
			switch {
			case len(fr.Gaps) > 0 && fr.Gaps[len(fr.Gaps)-1].Expected == gapErr.Expected:
				fr.Gaps[len(fr.Gaps)-1].Later++
			case stuck[gapErr.Expected]:
				fr.Refused = append(fr.Refused, Refusal{Seq: e.seq, Source: e.in.Source,
					Err: fmt.Errorf("not verified: the feed stops at refused entry %d", gapErr.Expected)})
			default:
				fr.Gaps = append(fr.Gaps, Gap{Expected: gapErr.Expected, Got: gapErr.Got, Source: e.in.Source})
			}
		case errors.As(err, &eqErr):
			fr.Equivocations = append(fr.Equivocations, Equivocation{EquivocationError: eqErr, Source: e.in.Source})
		case errors.Is(err, ErrBadSignature), errors.Is(err, ErrKeyNotValid):
			fr.BadSignatures = append(fr.BadSignatures, ref)
			if e.seq == head.Seq+1 {
				stuck[e.seq] = true
			}
		default:
			fr.Refused = append(fr.Refused, ref)
			if e.seq == head.Seq+1 {
				stuck[e.seq] = true
			}
		}
	}
	return accepted
}
