// Package verifier checks Parley entries against the agreement and the
// sender's feed: the envelope and payload are well formed, the signature is
// valid under a key the sender held at issued_at, and the entry extends the
// sender's feed without a gap or a fork (ARCHITECTURE.md §4, steps 1 to 3).
// The agreed reporting rules (step 4) live in package verifier/rules.
//
// The package is pure: it does no I/O, reads no clock and starts no
// goroutines. The caller owns the state of every feed and passes it in, so
// the same checks serve a node on every entry it receives, a mediator
// auditing whole logs and the offline "parley verify".
package verifier

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// FeedState is the last accepted entry of one sender's feed (its head), or
// equally the stored entry at one seq. The zero FeedState is an empty feed.
type FeedState struct {
	// Seq is the entry's seq; 0 for an empty feed.
	Seq uint64
	// Digest is the entry digest (SHA-256 of the envelope bytes).
	Digest [32]byte
	// PayloadDigest is SHA-256 of the entry's payload; duplicates are
	// recognised by it.
	PayloadDigest [32]byte
	// Raw is the envelope. Optional: it becomes EquivocationError.First
	// when a later entry contradicts this one. The caller decides whether
	// to keep it.
	Raw []byte
}

// HeadFunc returns the head of sender's feed: the zero FeedState when
// nothing of the sender has been accepted.
type HeadFunc func(sender string) FeedState

// LookupFunc returns the accepted entry of sender at seq, with ok false when
// the caller does not have it. It is called only for seqs below the head.
type LookupFunc func(sender string, seq uint64) (entry FeedState, ok bool)

// Outcome is what Check decided about an entry that it did not refuse.
type Outcome int

const (
	// Accepted means the entry is the sender's next one: record it and
	// make it the sender's head.
	Accepted Outcome = iota + 1
	// Duplicate means the statement was already accepted at this seq
	// (possibly in an envelope with other signatures). Nothing to record.
	Duplicate
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is an entry that Check did not refuse.
type Result struct {
	// Parsed is the parsed envelope; its Statement is authentic.
	Parsed *envelope.Parsed
	// KeyID is the id of the sender's key whose signature verified.
	KeyID string
	// Outcome is Accepted or Duplicate.
	Outcome Outcome
}

// Sender returns the entry's sender.
func (r Result) Sender() string { return r.Parsed.Statement.GetHeader().GetSender() }

// Seq returns the entry's seq.
func (r Result) Seq() uint64 { return r.Parsed.Statement.GetHeader().GetSeq() }

// State returns the feed state to record when the entry is accepted,
// including its raw envelope.
func (r Result) State() FeedState {
	return FeedState{Seq: r.Seq(), Digest: r.Parsed.Digest, PayloadDigest: r.Parsed.PayloadDigest, Raw: r.Parsed.Raw}
}

// Verifier checks entries under one agreement. It is safe for concurrent
// use.
type Verifier struct {
	agreementID string
	parties     map[string]*party
	partyIDs    string // for error messages
	// from and until are the agreement's effective dates; until is zero
	// if it has no end.
	from, until time.Time
}

// New returns a Verifier for the agreement. It parses every party's keys
// once, checks that each key id matches its public key, and builds the
// verifiers and the content validator used by every Check. The agreement
// must not change afterwards.
func New(a *agreement.Agreement) (*Verifier, error) {
	if a == nil {
		return nil, fmt.Errorf("couldn't build verifier: no agreement")
	}
	if a.ID == "" {
		return nil, fmt.Errorf("couldn't build verifier: agreement has no id")
	}
	v := &Verifier{agreementID: a.ID, parties: make(map[string]*party, len(a.Parties)), from: a.EffectiveFrom, until: a.EffectiveUntil}
	ids := make([]string, 0, len(a.Parties))
	for _, ap := range a.Parties {
		if _, dup := v.parties[ap.ID]; dup || ap.ID == "" {
			return nil, fmt.Errorf("couldn't build verifier: party id %q is empty or repeated", ap.ID)
		}
		p := &party{id: ap.ID}
		for i, k := range ap.Keys {
			pk, err := loadKey(k)
			if err != nil {
				return nil, fmt.Errorf("couldn't load key %d of party %s: %w", i, ap.ID, err)
			}
			p.keys = append(p.keys, pk)
		}
		p.buildSpans()
		v.parties[ap.ID] = p
		ids = append(ids, ap.ID)
	}
	sort.Strings(ids)
	v.partyIDs = strings.Join(ids, ", ")
	validator, err := protovalidate.New(protovalidate.WithMessages(&parleyv1.Statement{}))
	if err != nil {
		return nil, fmt.Errorf("couldn't build statement validator: %w", err)
	}
	// Check validates only the body (by hand, see validate): it checks
	// seq, prev and issued_at itself and accepts only this agreement's id
	// and its parties as sender. Those must then satisfy the schema's
	// header rules, which is checked here, once, with protovalidate.
	for _, id := range ids {
		h := &parleyv1.Header{AgreementId: a.ID, Sender: id, Seq: 1, IssuedAt: &timestamppb.Timestamp{}}
		if err := validator.Validate(h); err != nil {
			return nil, fmt.Errorf("couldn't build verifier: party %q of agreement %q could never send a valid entry: %w", id, a.ID, err)
		}
	}
	return v, nil
}

// Check decides whether raw, an envelope as received, extends its
// sender's feed. In order, it
//
//  1. parses raw with envelope.Parse (size, payload type, canonical
//     encoding);
//  2. checks that the header names this agreement (ErrWrongAgreement) and a
//     party as sender (ErrUnknownSender), and that seq, prev and issued_at
//     are well formed (ErrInvalid);
//  3. verifies a signature under a key of the sender whose validity window
//     contains issued_at (ErrKeyNotValid if only a key outside its window
//     signed, ErrBadSignature otherwise), and that issued_at lies within
//     the agreement's effective dates (ErrInvalid);
//  4. places the entry in the sender's feed, whose head is head(sender):
//     the next seq chaining to the head is Accepted (a wrong prev is a
//     *PrevError), a seq beyond it is a *GapError, and a seq at or below
//     the head is a Duplicate when the entry stored at that seq (the head
//     itself, or lookup(sender, seq)) has the same payload digest, and an
//     *EquivocationError otherwise;
//  5. for an entry it would accept, validates the statement against the
//     schema's rules and checks that a receipt does not acknowledge the
//     sender's own entries (ErrInvalid).
//
// head and lookup may be nil: a nil head means every feed is empty and a
// nil lookup has no entries. Check only reads through them. It never
// changes any state: recording an accepted entry is the caller's job (see
// Result.State). Refusals are errors, and the first failed step decides
// which.
func (v *Verifier) Check(raw []byte, head HeadFunc, lookup LookupFunc) (Result, error) {
	a, err := v.authenticate(raw)
	if err != nil {
		return Result{}, err
	}
	return v.Place(&a, head, lookup)
}

// Authenticated is an entry that passed the steps of Check that do not
// depend on any feed (1 to 3): parsed, its header well formed, signed by
// its sender under a key valid at its issued_at, dated within the
// agreement. Only Place reads it.
type Authenticated struct {
	p     *envelope.Parsed // its Statement has a header
	keyID string
}

// Authenticate runs steps 1 to 3 of Check on raw, with Check's errors.
// They read no feed and no state that changes, so a caller that holds a
// lock while it places entries (a node) can authenticate before taking
// it, and verify signatures on several goroutines at once; Place then
// does the rest. Check is Authenticate followed by Place.
func (v *Verifier) Authenticate(raw []byte) (*Authenticated, error) {
	a, err := v.authenticate(raw)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// authenticate is Authenticate, returning a value (Check's stays on the
// stack).
func (v *Verifier) authenticate(raw []byte) (Authenticated, error) {
	p, err := envelope.Parse(raw)
	if err != nil {
		return Authenticated{}, fmt.Errorf("couldn't parse entry: %w", err)
	}
	st := p.Statement
	h := st.GetHeader()
	if h == nil {
		return Authenticated{}, fmt.Errorf("%w: statement has no header", ErrInvalid)
	}
	if h.AgreementId != v.agreementID {
		return Authenticated{}, fmt.Errorf("%w: entry is for agreement %q, want %q", ErrWrongAgreement, clip(h.AgreementId), v.agreementID)
	}
	pty, ok := v.parties[h.Sender]
	if !ok {
		return Authenticated{}, fmt.Errorf("%w: %q is not a party to agreement %q (want one of %s)", ErrUnknownSender, clip(h.Sender), v.agreementID, v.partyIDs)
	}
	if err := checkHeader(h); err != nil {
		return Authenticated{}, err
	}
	keyID, err := pty.verify(p, h.IssuedAt.AsTime())
	if err != nil {
		return Authenticated{}, err
	}
	if err := v.CheckEffective(h.IssuedAt.AsTime()); err != nil {
		return Authenticated{}, err
	}
	return Authenticated{p: p, keyID: keyID}, nil
}

// Place runs steps 4 and 5 of Check on an entry Authenticate returned,
// with Check's errors and result.
func (v *Verifier) Place(a *Authenticated, head HeadFunc, lookup LookupFunc) (Result, error) {
	res := Result{Parsed: a.p, KeyID: a.keyID}
	h := a.p.Statement.GetHeader()
	var cur FeedState
	if head != nil {
		cur = head(h.Sender)
	}
	var err error
	if res.Outcome, err = place(a.p, h, cur, lookup); err != nil {
		return Result{}, err
	}
	if res.Outcome == Accepted {
		if err := v.validate(a.p.Statement); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// CheckEffective refuses an entry dated outside the agreement's effective
// dates (ErrInvalid): the rules would otherwise judge it at any date a
// key's open window allows, back to the year 1. Check applies it to every
// entry; it is exported for a node that admits its own fresh statements
// without Check.
func (v *Verifier) CheckEffective(issued time.Time) error {
	const layout = time.RFC3339
	switch {
	case issued.Before(v.from):
		return fmt.Errorf("%w: issued_at %s is before the agreement takes effect at %s",
			ErrInvalid, issued.UTC().Format(layout), v.from.UTC().Format(layout))
	case !v.until.IsZero() && issued.After(v.until):
		return fmt.Errorf("%w: issued_at %s is after the agreement ends at %s",
			ErrInvalid, issued.UTC().Format(layout), v.until.UTC().Format(layout))
	}
	return nil
}

// checkHeader checks what the sequence and signature checks rely on.
func checkHeader(h *parleyv1.Header) error {
	if h.Seq == 0 {
		return fmt.Errorf("%w: seq is 0, want 1 or more", ErrInvalid)
	}
	if n := len(h.Prev); n != 0 && n != sha256.Size {
		return fmt.Errorf("%w: prev has %d bytes, want %d (or none at seq 1)", ErrInvalid, n, sha256.Size)
	}
	if err := h.IssuedAt.CheckValid(); err != nil {
		return fmt.Errorf("%w: bad issued_at: %w", ErrInvalid, err)
	}
	return nil
}

// place decides where an authentic entry falls in its sender's feed.
func place(p *envelope.Parsed, h *parleyv1.Header, head FeedState, lookup LookupFunc) (Outcome, error) {
	seq := h.Seq
	switch {
	case seq > head.Seq && seq-head.Seq == 1:
		var want []byte
		if head.Seq > 0 {
			want = head.Digest[:]
		}
		if !bytes.Equal(h.Prev, want) {
			return 0, &PrevError{Sender: h.Sender, Seq: seq, Want: bytes.Clone(want), Got: bytes.Clone(h.Prev)}
		}
		return Accepted, nil
	case seq > head.Seq:
		return 0, &GapError{Sender: h.Sender, Expected: head.Seq + 1, Got: seq}
	}
	prior, ok := head, true
	if seq != head.Seq {
		prior, ok = FeedState{}, false
		if lookup != nil {
			prior, ok = lookup(h.Sender, seq)
		}
	}
	if !ok {
		return 0, fmt.Errorf("%w: %s entry %d is below the head %d but its stored entry is not available", ErrMissingHistory, h.Sender, seq, head.Seq)
	}
	if prior.PayloadDigest == p.PayloadDigest {
		return Duplicate, nil
	}
	return 0, &EquivocationError{Sender: h.Sender, Seq: seq, First: prior.Raw, Second: p.Raw}
}

// bodyKind is the oneof of a Body.
var bodyKind = (&parleyv1.Body{}).ProtoReflect().Descriptor().Oneofs().ByName("kind")

// validate checks the statement's content against the schema's rules and
// the receipt rule.
//
// Only the body's content is validated (by hand, held equal to
// protovalidate); the rest of the schema's rules are implied by what Check already established, which
// saves a third of the validation time: the header passed checkHeader and
// names this agreement and a party, which together satisfy the header rules
// (see New); the statement requires a header and a body, and the body
// requires one kind and has no other rules. TestSchemaCoverage fails when a
// schema change breaks these premises.
func (v *Verifier) validate(st *parleyv1.Statement) error {
	if st.Body == nil {
		return fmt.Errorf("%w: statement has no body", ErrInvalid)
	}
	b := st.Body.ProtoReflect()
	fd := b.WhichOneof(bodyKind)
	if fd == nil {
		return fmt.Errorf("%w: body has no kind", ErrInvalid)
	}
	if r := st.Body.GetReceipt(); r != nil {
		// Receipts are most entries of a log; their rules are few and
		// simple, so they are checked by hand (receiptErr is held equal
		// to protovalidate by TestReceiptRulesMatchSchema and
		// FuzzReceiptRules).
		if err := receiptErr(r); err != nil {
			return fmt.Errorf("%w: body.receipt: %w", ErrInvalid, err)
		}
		return selfReceipt(st.Header.Sender, r)
	}
	if n := st.Body.GetNotification(); n != nil {
		if err := notificationErr(n); err != nil {
			return fmt.Errorf("%w: body.notification: %w", ErrInvalid, err)
		}
		return nil
	}
	// The other kinds are checked by hand too (ValidateBody, held equal to
	// protovalidate by TestBodyRulesMatchSchema and FuzzBodyRules); no rule
	// of theirs depends on the time.
	return ValidateBody(st.Body)
}

// selfReceipt refuses a receipt that acknowledges its sender's own entries.
func selfReceipt(sender string, r *parleyv1.Receipt) error {
	for _, a := range r.Acks {
		if a.Sender == sender {
			return fmt.Errorf("%w: receipt of %s acknowledges its own entry %d; a receipt acknowledges other parties' entries",
				ErrInvalid, a.Sender, a.Seq)
		}
	}
	return nil
}

// receiptErr checks a receipt against the schema's rules for Receipt and
// Acknowledgement (statement.proto), without protovalidate.
func receiptErr(r *parleyv1.Receipt) error {
	if n := len(r.Acks); n < 1 || n > 1000 {
		return fmt.Errorf("acks: %d acknowledgements, want 1 to 1000", n)
	}
	for i, a := range r.Acks {
		switch {
		case a == nil:
			return fmt.Errorf("acks[%d]: missing", i)
		case !validPartyID(a.Sender):
			return fmt.Errorf("acks[%d].sender: %q is not a party id", i, clip(a.Sender))
		case a.Seq < 1:
			return fmt.Errorf("acks[%d].seq: must be at least 1", i)
		case len(a.Digest) != 32:
			return fmt.Errorf("acks[%d].digest: %d bytes, want 32", i, len(a.Digest))
		case a.ReceivedAt == nil:
			return fmt.Errorf("acks[%d].received_at: required", i)
		}
	}
	return nil
}

// validPartyID matches the schema's ^[a-z][a-z0-9-]{0,62}$.
func validPartyID(s string) bool {
	if len(s) < 1 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// clip shortens strings from the entry that are quoted in errors.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
