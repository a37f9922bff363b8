package mediator

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/verifier"
)

// ErrEvidence is returned, wrapped, by VerifyEvidence for evidence that
// does not prove what it claims.
var ErrEvidence = errors.New("evidence does not verify")

// howToVerify says, per kind, how a third party checks evidence with the
// agreement alone; VerifyEvidence does exactly this.
var howToVerify = map[string]string{
	KindEquivocation: "Decode both envelopes (base64). Each must be a canonical DSSE envelope whose signature verifies, over PAE(payload_type, payload), " +
		"under a key the agreement lists for the sender with a validity window containing its issued_at. Both statements name the same " +
		"sender and seq but their payloads differ (different SHA-256): the sender signed two histories.",
	KindFork: "Both checkpoints are signed notes that verify under the log's checkpoint_key in the agreement. With equal sizes, their root " +
		"hashes differ. With different sizes, the RFC 6962 consistency proof from the smaller size to the larger one verifies between " +
		"from_root and the larger checkpoint's root, so from_root is the only possible root of the smaller tree, and the smaller " +
		"checkpoint's root differs from it.",
	KindDisagreement: "As for a fork; in addition each checkpoint carries a cosignature by a mediator of the agreement: two mediators " +
		"cosigned views of the log that cannot both be true.",
	KindOmission: "The receipt envelope verifies as the party's entry and acknowledges the digest in 'acknowledged'. The checkpoint " +
		"verifies under the party's checkpoint_key. The RFC 6962 root of the log's envelopes equals the checkpoint's root, the receipt " +
		"is among them, and no envelope among them has the acknowledged digest (SHA-256 of the envelope bytes): the party receipted an " +
		"entry its own log does not hold.",
}

// VerifyEvidence checks evidence as a third party holding only the
// agreement does, and returns an error wrapping ErrEvidence if it does not
// prove what it claims. It does not trust the report's summaries, digests
// or sizes: it recomputes them from the signed material.
func VerifyEvidence(a *agreement.Agreement, e *Evidence) error {
	var err error
	switch e.Kind {
	case KindEquivocation:
		err = verifyEquivocation(a, e)
	case KindFork, KindDisagreement:
		err = verifyFork(a, e)
	case KindOmission:
		err = verifyOmission(a, e)
	default:
		err = fmt.Errorf("unknown kind %q", e.Kind)
	}
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrEvidence, e.Kind, e.ID, err)
	}
	return nil
}

// checkEntry verifies one envelope on its own: its form, its signature
// under a key of its sender valid at its issued_at, and its content, as
// the verifier would accept it as the next entry of its feed.
func checkEntry(v *verifier.Verifier, raw []byte) (*envelope.Parsed, error) {
	p, err := envelope.Parse(raw)
	if err != nil {
		return nil, err
	}
	h := p.Statement.GetHeader()
	head := verifier.FeedState{}
	if h.GetSeq() > 1 {
		if len(h.GetPrev()) != 32 {
			return nil, fmt.Errorf("entry %d has no valid prev", h.GetSeq())
		}
		head = verifier.FeedState{Seq: h.GetSeq() - 1, Digest: [32]byte(h.GetPrev())}
	}
	res, err := v.Check(raw, func(string) verifier.FeedState { return head }, nil)
	if err != nil {
		return nil, err
	}
	return res.Parsed, nil
}

func verifyEquivocation(a *agreement.Agreement, e *Evidence) error {
	if len(e.Envelopes) != 2 {
		return fmt.Errorf("want 2 envelopes, got %d", len(e.Envelopes))
	}
	v, err := verifier.New(a)
	if err != nil {
		return err
	}
	var ps [2]*envelope.Parsed
	for i, ee := range e.Envelopes {
		if ps[i], err = checkEntry(v, ee.Envelope); err != nil {
			return fmt.Errorf("envelope %d: %w", i+1, err)
		}
	}
	h0, h1 := ps[0].Statement.GetHeader(), ps[1].Statement.GetHeader()
	switch {
	case h0.GetSender() != h1.GetSender() || h0.GetSeq() != h1.GetSeq():
		return fmt.Errorf("envelopes are %s/%d and %s/%d, not one (sender, seq)", h0.GetSender(), h0.GetSeq(), h1.GetSender(), h1.GetSeq())
	case h0.GetSender() != e.Party:
		return fmt.Errorf("envelopes are by %s, evidence names %s", h0.GetSender(), e.Party)
	case ps[0].PayloadDigest == ps[1].PayloadDigest:
		return errors.New("both envelopes carry the same statement")
	}
	return nil
}

// openCheckpoint verifies a checkpoint under party's log key and returns
// it with the note.
func openCheckpoint(a *agreement.Agreement, party string, raw []byte, extra ...note.Verifier) (*flog.Checkpoint, *note.Note, error) {
	p, ok := a.Party(party)
	if !ok {
		return nil, nil, fmt.Errorf("%q is not a party", party)
	}
	v, err := fnote.NewVerifier(p.CheckpointKey)
	if err != nil {
		return nil, nil, err
	}
	cp, _, n, err := flog.ParseCheckpoint(raw, p.LogOrigin, v, extra...)
	if err != nil {
		return nil, nil, err
	}
	return cp, n, nil
}

func verifyFork(a *agreement.Agreement, e *Evidence) error {
	if len(e.Checkpoints) != 2 {
		return fmt.Errorf("want 2 checkpoints, got %d", len(e.Checkpoints))
	}
	var witnesses []note.Verifier
	for _, m := range a.Mediators {
		if v, err := fnote.NewVerifier(m.CosigningKey); err == nil {
			witnesses = append(witnesses, v)
		}
	}
	var cps [2]*flog.Checkpoint
	for i, c := range e.Checkpoints {
		cp, n, err := openCheckpoint(a, e.Party, []byte(c.Note), witnesses...)
		if err != nil {
			return fmt.Errorf("checkpoint %d: %w", i+1, err)
		}
		cps[i] = cp
		if e.Kind == KindDisagreement && !cosignedByMediator(n, witnesses) {
			return fmt.Errorf("checkpoint %d carries no mediator's cosignature", i+1)
		}
	}
	small, large := cps[0], cps[1]
	if small.Size > large.Size {
		small, large = large, small
	}
	if small.Size == large.Size {
		if bytes.Equal(small.Hash, large.Hash) {
			return errors.New("both checkpoints have the same size and root")
		}
		return nil
	}
	pr := e.Proof
	if pr == nil || pr.FromSize != small.Size || pr.ToSize != large.Size {
		return fmt.Errorf("no consistency proof from size %d to size %d", small.Size, large.Size)
	}
	if err := proof.VerifyConsistency(hasher, pr.FromSize, pr.ToSize, pr.Hashes, pr.FromRoot, large.Hash); err != nil {
		return fmt.Errorf("the consistency proof does not verify against the larger checkpoint: %w", err)
	}
	if bytes.Equal(pr.FromRoot, small.Hash) {
		return errors.New("the smaller checkpoint is consistent with the larger one")
	}
	return nil
}

func cosignedByMediator(n *note.Note, witnesses []note.Verifier) bool {
	for _, s := range n.Sigs {
		for _, w := range witnesses {
			if s.Hash == w.KeyHash() && s.Name == w.Name() {
				return true
			}
		}
	}
	return false
}

func verifyOmission(a *agreement.Agreement, e *Evidence) error {
	if e.Acknowledged == nil || e.Log == nil || len(e.Checkpoints) != 1 {
		return errors.New("want an acknowledged entry, a log and one checkpoint")
	}
	var receipt []byte
	for _, ee := range e.Envelopes {
		if ee.Role == "receipt" {
			receipt = ee.Envelope
		}
	}
	if receipt == nil {
		return errors.New("no receipt envelope")
	}
	v, err := verifier.New(a)
	if err != nil {
		return err
	}
	p, err := checkEntry(v, receipt)
	if err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	if s := p.Statement.GetHeader().GetSender(); s != e.Party {
		return fmt.Errorf("the receipt is by %s, evidence names %s", s, e.Party)
	}
	want, err := hex.DecodeString(e.Acknowledged.Digest)
	if err != nil || len(want) != 32 {
		return errors.New("acknowledged digest is not 32 bytes of hex")
	}
	acked := false
	for _, ack := range p.Statement.GetBody().GetReceipt().GetAcks() {
		if bytes.Equal(ack.GetDigest(), want) {
			acked = true
		}
	}
	if !acked {
		return errors.New("the receipt does not acknowledge that digest")
	}
	cp, _, err := openCheckpoint(a, e.Party, []byte(e.Checkpoints[0].Note))
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if e.Log.Envelopes == nil || uint64(len(e.Log.Envelopes)) != cp.Size {
		return fmt.Errorf("the log has %d envelopes, the checkpoint size %d", len(e.Log.Envelopes), cp.Size)
	}
	root, err := rootOf(hashLeaves(e.Log.Envelopes))
	if err != nil {
		return err
	}
	if !bytes.Equal(root, cp.Hash) {
		return errors.New("the log's envelopes do not reproduce the checkpoint's root hash")
	}
	found := false
	for _, raw := range e.Log.Envelopes {
		d := envelope.Digest(raw)
		if bytes.Equal(d[:], want) {
			return errors.New("the log holds the acknowledged entry")
		}
		if bytes.Equal(raw, receipt) {
			found = true
		}
	}
	if !found {
		return errors.New("the receipt is not in the log")
	}
	return nil
}
