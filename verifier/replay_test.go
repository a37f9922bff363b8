package verifier_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/parley-dev/parley/verifier"
)

// TestReplay replays feeds with every outcome, out of order and repeated,
// and checks that Replay decides each entry as Check would on the feed
// built so far, whatever the number of workers.
func TestReplay(t *testing.T) {
	s := newScenario(t)
	alpha := s.feed(t, "alpha", 5)
	bravo := s.feed(t, "bravo", 3)
	// alpha's entry 3 restated: an equivocation, read after the original.
	other := s.sign(t, "alpha", -1, s.statement("alpha", 3, digest(alpha[1]), nilCalendar(1999)))
	// bravo's entry 2 with a broken signature: bravo's entry 3 is then left
	// unverified, not a gap.
	broken := append([]byte(nil), bravo[1]...)
	broken[len(broken)-1] ^= 1
	in := []verifier.ReplayInput{}
	add := func(src string, raw []byte) { in = append(in, verifier.ReplayInput{Raw: raw, Source: src}) }
	for i := len(alpha) - 1; i >= 0; i-- {
		if i != 3 { // alpha's entry 4 is missing: entry 5 is a gap
			add(fmt.Sprintf("alpha %d", i+1), alpha[i])
		}
	}
	add("alpha 2 again", alpha[1])
	add("alpha 3 other", other)
	add("bravo 1", bravo[0])
	add("bravo 2 broken", broken)
	add("bravo 3", bravo[2])
	add("garbage", []byte("not an envelope"))

	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			rep := s.v.Replay(in, verifier.ReplayOptions{Workers: workers})
			if len(rep.Unreadable) != 1 || rep.Unreadable[0].Source != "garbage" {
				t.Errorf("got unreadable %+v, want the garbage", rep.Unreadable)
			}
			if len(rep.Feeds) != 2 {
				t.Fatalf("got %d feeds, want 2", len(rep.Feeds))
			}
			a, b := rep.Feeds[0], rep.Feeds[1]
			if a.Sender != "alpha" || a.Accepted != 3 || a.Head.Seq != 3 || len(a.Duplicates) != 1 || len(a.Equivocations) != 1 || len(a.Gaps) != 1 {
				t.Errorf("alpha: got %+v, want 3 accepted, 1 duplicate, 1 equivocation, 1 gap", a)
			}
			if len(a.Equivocations) == 1 {
				e := a.Equivocations[0]
				if e.Seq != 3 || string(e.First) != string(alpha[2]) || string(e.Second) != string(other) || !errors.Is(e.EquivocationError, verifier.ErrEquivocation) {
					t.Errorf("equivocation: got seq %d from %s, want seq 3 holding both envelopes", e.Seq, e.Source)
				}
			}
			if len(a.Gaps) == 1 && (a.Gaps[0].Expected != 4 || a.Gaps[0].Got != 5) {
				t.Errorf("gap: got %+v, want expected 4, got 5", a.Gaps[0])
			}
			if b.Sender != "bravo" || b.Accepted != 1 || len(b.BadSignatures) != 1 || len(b.Refused) != 1 || len(b.Gaps) != 0 {
				t.Errorf("bravo: got %+v, want 1 accepted, 1 bad signature, 1 unverified", b)
			}
			if got := rep.Refused(); got != 1+2+1+1 {
				t.Errorf("got %d refused, want 5", got)
			}
			if len(rep.Accepted) != 4 {
				t.Errorf("got %d accepted entries, want 4", len(rep.Accepted))
			}
		})
	}
}
