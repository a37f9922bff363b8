package verifier

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/parley-dev/parley/envelope"
)

// Sentinel errors, for callers that branch on why an entry was refused.
// Every error Check returns wraps one of these or one of envelope's parse
// errors (envelope.ErrTooLarge, ErrMalformed, ErrPayloadType,
// ErrNonCanonical).
var (
	// ErrWrongAgreement means the entry names another agreement.
	ErrWrongAgreement = errors.New("wrong agreement")
	// ErrUnknownSender means the entry's sender is not a party.
	ErrUnknownSender = errors.New("unknown sender")
	// ErrBadSignature means no signature verifies under a key of the
	// sender. It is envelope.ErrBadSignature, so either name matches.
	ErrBadSignature = envelope.ErrBadSignature
	// ErrKeyNotValid means the entry is signed by a key of the sender whose
	// validity window does not contain the entry's issued_at.
	ErrKeyNotValid = errors.New("signing key not valid at issued_at")
	// ErrInvalid means the statement's content breaks the schema's rules
	// (protovalidate) or the entry rules checked here.
	ErrInvalid = errors.New("invalid statement")
	// ErrEquivocation means the sender signed two different statements for
	// one seq. The error is an *EquivocationError holding both envelopes.
	ErrEquivocation = errors.New("equivocation")
	// ErrGap means the entry is beyond the sender's next seq. The error is
	// a *GapError naming the expected seq.
	ErrGap = errors.New("gap in feed")
	// ErrWrongPrev means the entry has the next seq but does not chain to
	// the sender's last entry. The error is a *PrevError.
	ErrWrongPrev = errors.New("wrong prev")
	// ErrMissingHistory means the entry repeats a seq below the head whose
	// stored entry the lookup could not supply, so duplicate and
	// equivocation cannot be told apart.
	ErrMissingHistory = errors.New("missing history")
)

// EquivocationError is the evidence of an equivocation: two envelopes,
// both validly signed by Sender, with different statements at Seq.
type EquivocationError struct {
	Sender string
	Seq    uint64
	// First is the envelope accepted earlier, as the caller stored it (nil
	// if the caller did not keep it; see FeedState.Raw).
	First []byte
	// Second is the envelope just checked.
	Second []byte
}

func (e *EquivocationError) Error() string {
	first := "(not kept)"
	if e.First != nil {
		d := envelope.Digest(e.First)
		first = hex.EncodeToString(d[:])
	}
	second := envelope.Digest(e.Second)
	return fmt.Sprintf("equivocation: %s signed two different statements at seq %d: accepted envelope %s, new envelope %x",
		e.Sender, e.Seq, first, second)
}

// Is reports whether target is ErrEquivocation.
func (e *EquivocationError) Is(target error) bool { return target == ErrEquivocation }

// GapError says that an entry skips seqs of its sender's feed.
type GapError struct {
	Sender string
	// Expected is the seq the feed needs next.
	Expected uint64
	// Got is the seq of the refused entry.
	Got uint64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("gap in feed: %s entry has seq %d, want %d (entries %d to %d are missing)",
		e.Sender, e.Got, e.Expected, e.Expected, e.Got-1)
}

// Is reports whether target is ErrGap.
func (e *GapError) Is(target error) bool { return target == ErrGap }

// PrevError says that an entry with the next seq does not chain to the
// sender's last accepted entry.
type PrevError struct {
	Sender string
	Seq    uint64
	// Want is the digest of the sender's entry at Seq-1; empty at seq 1.
	Want []byte
	// Got is the entry's prev.
	Got []byte
}

func (e *PrevError) Error() string {
	hexOrEmpty := func(b []byte) string {
		if len(b) == 0 {
			return "empty"
		}
		return hex.EncodeToString(b)
	}
	return fmt.Sprintf("wrong prev: %s entry %d has prev %s, want %s", e.Sender, e.Seq, hexOrEmpty(e.Got), hexOrEmpty(e.Want))
}

// Is reports whether target is ErrWrongPrev.
func (e *PrevError) Is(target error) bool { return target == ErrWrongPrev }
