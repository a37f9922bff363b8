package mediator_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/agreement/agreementtest"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/keys"
	"github.com/parley-dev/parley/mediator"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// diskNet is an agreement with deterministic Ed25519 signing keys and the
// private material to write a mediator's data directory by hand: the
// mirrored logs and collected state of a network that never ran.
type diskNet struct {
	fx      *agreementtest.Fixture
	file    *agreement.File
	signers map[string]*feedSigner
	base    time.Time
}

// feedSigner signs one party's feed in order.
type feedSigner struct {
	party string
	keyID string
	priv  ed25519.PrivateKey
	seq   uint64
	prev  []byte
}

func newDiskNet(tb testing.TB) *diskNet {
	tb.Helper()
	return newDiskNetN(tb, 1)
}

// newDiskNetN is newDiskNet with the given number of mediators.
func newDiskNetN(tb testing.TB, mediators int) *diskNet {
	tb.Helper()
	fx := agreementtest.New(tb, 3, mediators)
	d := &diskNet{fx: fx, signers: map[string]*feedSigner{}, base: agreementtest.EffectiveFrom.AddDate(0, 1, 0)}
	for i := range fx.Agreement.Parties {
		p := &fx.Agreement.Parties[i]
		seed := sha256.Sum256([]byte("parley audit benchmark key " + p.ID))
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := priv.Public()
		id, err := keys.KeyID(pub)
		if err != nil {
			tb.Fatal(err)
		}
		pem, err := keys.MarshalPublicPEM(pub)
		if err != nil {
			tb.Fatal(err)
		}
		p.Keys = []agreement.Key{{ID: id, PublicKey: string(pem), NotBefore: agreementtest.EffectiveFrom}}
		signer, err := keys.NewSigner(priv)
		if err != nil {
			tb.Fatal(err)
		}
		fx.Parties[i].Keys = []agreementtest.SigningKey{{ID: id, Private: priv, Signer: signer}}
		d.signers[p.ID] = &feedSigner{party: p.ID, keyID: id, priv: priv}
	}
	d.file = fx.SignedFile(tb)
	return d
}

// sign signs body as the party's next entry.
func (d *diskNet) sign(tb testing.TB, party string, issued time.Time, body *parleyv1.Body) []byte {
	tb.Helper()
	s := d.signers[party]
	s.seq++
	st := &parleyv1.Statement{
		Header: &parleyv1.Header{AgreementId: d.file.Agreement.ID, Sender: party, Seq: s.seq, Prev: s.prev, IssuedAt: timestamppb.New(issued)},
		Body:   body,
	}
	signer := d.fx.Party(tb, party).Keys[0].Signer
	raw, err := envelope.Sign(context.Background(), st, signer, s.keyID)
	if err != nil {
		tb.Fatal(err)
	}
	dg := envelope.Digest(raw)
	s.prev = dg[:]
	return raw
}

func receiptBody(sender string, seq uint64, raw []byte, at time.Time) *parleyv1.Body {
	d := envelope.Digest(raw)
	return &parleyv1.Body{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{
		Acks: []*parleyv1.Acknowledgement{{Sender: sender, Seq: seq, Digest: d[:], ReceivedAt: timestamppb.New(at)}},
	}}}
}

// exchange returns n entries as one log would hold them: rounds of a
// notification by one party (in turn), receipted by the two others a
// minute later; every 7th notification is given only 30 days ahead.
// Feeds are signed on one goroutine per party.
func (d *diskNet) exchange(tb testing.TB, n int) [][]byte {
	tb.Helper()
	ids := []string{"alpha", "bravo", "charlie"}
	rounds := (n + 2) / 3
	out := make([][]byte, rounds*3)
	notes := make([][]byte, rounds)
	var mu sync.Mutex
	ready := make([]chan struct{}, rounds)
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for pi, party := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				at := d.base.Add(time.Duration(r) * time.Hour)
				sender := ids[r%3]
				if sender == party {
					lead := 60
					if r%7 == 0 {
						lead = 30
					}
					raw := d.sign(tb, party, at, notificationBody(fmt.Sprintf("Exercise %d", r), at.AddDate(0, 0, lead), 9000+uint32(r%3000)))
					mu.Lock()
					notes[r] = raw
					out[r*3] = raw
					mu.Unlock()
					close(ready[r])
					continue
				}
				<-ready[r]
				mu.Lock()
				note := notes[r]
				mu.Unlock()
				// The two receipts follow the notification in party order;
				// every party signs once a round, so the notification is
				// its sender's entry r+1.
				slot := r*3 + 1
				if pi > r%3 && pi-r%3 == 2 || pi < r%3 && r%3-pi == 1 {
					slot = r*3 + 2
				}
				seq := uint64(r + 1)
				raw := d.sign(tb, party, at.Add(time.Minute), receiptBody(sender, seq, note, at.Add(time.Minute)))
				mu.Lock()
				out[slot] = raw
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out[:n]
}

// writeDir writes a mediator data directory: the agreement, the mirrored
// logs (each with a checkpoint signed by its party's log key and cosigned
// by the mediator), and the collected state.
func (d *diskNet) writeDir(tb testing.TB, dir string, logs map[string][][]byte, col *mediator.Collected) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(dir, "agreement.yaml"), d.file.Marshal(), 0o644); err != nil {
		tb.Fatal(err)
	}
	for _, p := range d.file.Agreement.Parties {
		ml, err := mediator.OpenMirrorLog(filepath.Join(dir, "mirror", p.ID), true)
		if err != nil {
			tb.Fatal(err)
		}
		raws := logs[p.ID]
		for len(raws) > 0 {
			k := min(len(raws), 100000)
			if err := ml.Append(raws[:k]); err != nil {
				tb.Fatal(err)
			}
			raws = raws[k:]
		}
		root, err := ml.RootAt(ml.Size())
		if err != nil {
			tb.Fatal(err)
		}
		if err := ml.SetCheckpoint(d.checkpoint(tb, p.ID, ml.Size(), root, true)); err != nil {
			tb.Fatal(err)
		}
		ml.Close()
	}
	if col == nil {
		col = &mediator.Collected{}
	}
	col.Mediator = "mediator1"
	b, err := json.Marshal(col)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "collected.json"), b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// checkpoint signs a checkpoint of party's log, cosigned by the mediator
// if cosign.
func (d *diskNet) checkpoint(tb testing.TB, party string, size uint64, root []byte, cosign bool) []byte {
	tb.Helper()
	var cosigners []note.Signer
	if cosign {
		cosigners = append(cosigners, d.fx.Mediators[0].Cosigner)
	}
	return d.checkpointBy(tb, party, size, root, cosigners...)
}

// checkpointBy signs a checkpoint of party's log, cosigned by cosigners.
func (d *diskNet) checkpointBy(tb testing.TB, party string, size uint64, root []byte, cosigners ...note.Signer) []byte {
	tb.Helper()
	p, _ := d.file.Agreement.Party(party)
	signers := append([]note.Signer{d.fx.Party(tb, party).CheckpointSigner}, cosigners...)
	b, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: p.LogOrigin, Size: size, Hash: root}.Marshal())}, signers...)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestAuditForkedMirror audits a data directory in which alpha's mirrored
// log disagrees with checkpoints alpha's log key also signed: one the
// witness cosigned with the mirror's size, and one of a smaller size that
// alpha's node served later. Both are forks with evidence that verifies.
func TestAuditForkedMirror(t *testing.T) {
	d := newDiskNet(t)
	entries := d.exchange(t, 30)
	dir := t.TempDir()
	alpha, _ := d.file.Agreement.Party("alpha")
	forgedRoot := sha256.Sum256([]byte("another history"))
	col := &mediator.Collected{
		Cosigned: map[string][]byte{alpha.LogOrigin: d.checkpoint(t, "alpha", 30, forgedRoot[:], true)},
		Checkpoints: []mediator.SeenCheckpoint{{
			Party: "alpha", Checkpoint: d.checkpoint(t, "alpha", 12, forgedRoot[:], false),
			At: d.base, Note: "root hash differs from the mirrored entries at its size",
		}},
	}
	d.writeDir(t, dir, map[string][][]byte{"alpha": entries, "bravo": entries, "charlie": entries}, col)
	rep, err := mediator.AuditDir(dir, d.base.AddDate(0, 3, 0))
	if err != nil {
		t.Fatal(err)
	}
	rep = reportRoundTrip(t, rep)
	sizes := map[uint64]bool{}
	for _, e := range rep.Evidence {
		if e.Kind != mediator.KindFork || e.Party != "alpha" {
			t.Errorf("unexpected evidence %s %s against %s", e.ID, e.Kind, e.Party)
			continue
		}
		if err := mediator.VerifyEvidence(d.file.Agreement, e); err != nil {
			t.Errorf("evidence %s: %v", e.ID, err)
		}
		sizes[min(e.Checkpoints[0].Size, e.Checkpoints[1].Size)] = true
		if e.Checkpoints[0].Size != e.Checkpoints[1].Size && e.Proof == nil {
			t.Errorf("evidence %s of two sizes has no consistency proof", e.ID)
		}
	}
	if !sizes[30] || !sizes[12] {
		t.Errorf("got fork evidence at sizes %v, want 12 and 30", sizes)
	}
	if !rep.Misbehaviour {
		t.Error("got no misbehaviour")
	}
	// The notifications given 30 days ahead are late; the others are not.
	late := 0
	for _, it := range rep.Timeline {
		if it.Status == "late" {
			late++
		}
	}
	if late == 0 || late == len(rep.Timeline) {
		t.Errorf("got %d late of %d notified activities, want some", late, len(rep.Timeline))
	}
	if !slices.IsSortedFunc(rep.Timeline, func(a, b mediator.TimelineItem) int { return a.Start.Compare(b.Start) }) {
		t.Error("the timeline is not in order of start")
	}
	checkSummaries(t, rep)
}

// TestAuditMediatorDisagreement audits a data directory where another
// mediator cosigned a checkpoint of alpha's log that contradicts the one
// this mediator cosigned and the mirror holds: the report carries both
// cosigned checkpoints as verifiable evidence.
func TestAuditMediatorDisagreement(t *testing.T) {
	d := newDiskNetN(t, 2)
	entries := d.exchange(t, 30)
	dir := t.TempDir()
	alpha, _ := d.file.Agreement.Party("alpha")
	ml, err := mediator.OpenMirrorLog(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := ml.Append(entries); err != nil {
		t.Fatal(err)
	}
	root, err := ml.RootAt(30)
	if err != nil {
		t.Fatal(err)
	}
	ml.Close()
	other := sha256.Sum256([]byte("the view shown to mediator2"))
	col := &mediator.Collected{
		Cosigned: map[string][]byte{alpha.LogOrigin: d.checkpointBy(t, "alpha", 30, root, d.fx.Mediators[0].Cosigner)},
		Peers: []mediator.PeerCheckpoint{{Mediator: "mediator2", Origin: alpha.LogOrigin,
			Checkpoint: d.checkpointBy(t, "alpha", 30, other[:], d.fx.Mediators[1].Cosigner), At: d.base}},
	}
	d.writeDir(t, dir, map[string][][]byte{"alpha": entries, "bravo": entries, "charlie": entries}, col)
	rep, err := mediator.AuditDir(dir, d.base.AddDate(0, 3, 0))
	if err != nil {
		t.Fatal(err)
	}
	rep = reportRoundTrip(t, rep)
	found := false
	for _, e := range rep.Evidence {
		if e.Kind == mediator.KindDisagreement && e.Party == "alpha" {
			found = true
			if err := mediator.VerifyEvidence(d.file.Agreement, e); err != nil {
				t.Errorf("evidence %s: %v", e.ID, err)
			}
		}
	}
	if !found {
		t.Errorf("no mediator disagreement evidence; evidence: %v", evidenceNames(rep))
	}
}
