package rules

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// TestReceiptsOfALargeLog judges the receipts of 2,600 notifications, more
// than one chunk of acknowledgements holds (ackChunk), against what the log
// was built to have: b receipts every entry in time but each seventh, which
// it never receipts; c receipts each fifth late (in time if b did not
// receipt it: the entry then counts as given when c receipted it) and the
// rest in time. Each
// receipt acknowledges one entry, and b's and c's receipts alternate with
// the notifications, so that acknowledgement runs of different entries
// interleave.
func TestReceiptsOfALargeLog(t *testing.T) {
	const n = 2600
	window := agreement.Rules{}.ReceiptWindow()
	l := newLog(t)
	base := utc(2027, 1, 1, 0, 0, 0)
	wantMissing, wantLate := map[uint64]bool{}, map[uint64]bool{}
	for i := range n {
		given := base.Add(time.Duration(i) * time.Minute)
		e := l.add("a", given, notice(act(fmt.Sprintf("Exercise %d", i), given.Add(60*day), day, troops(100))))
		if i%7 != 0 {
			l.receipt("b", given.Add(time.Minute), given.Add(time.Minute), e)
		} else {
			wantMissing[e.Seq] = true
		}
		late := given.Add(window + time.Hour)
		if i%5 == 0 {
			l.receipt("c", late, late, e)
			// Unless b receipted the entry, c's receipt is the first: the
			// entry counts as given only then, and c is in time.
			if i%7 != 0 {
				wantLate[e.Seq] = true
			}
		} else {
			l.receipt("c", given, given, e)
		}
	}
	now := base.Add(time.Duration(n)*time.Minute + window + 2*time.Hour)
	gotMissing, gotLate := map[uint64]bool{}, map[uint64]bool{}
	for _, f := range newEngine(t, agreement.Rules{}).Evaluate(l.entries, now) {
		if f.GetRule() != RuleReceipt {
			continue
		}
		ref := f.GetEntries()[0]
		if ref.GetSender() != "a" {
			t.Fatalf("finding about an entry of %s, want only a's: %v", ref.GetSender(), f)
		}
		switch f.GetParty() {
		case "b":
			if len(f.GetEntries()) != 1 {
				t.Errorf("b's finding names a receipt, want none: %v", f)
			}
			gotMissing[ref.GetSeq()] = true
		case "c":
			if len(f.GetEntries()) != 2 || f.GetEntries()[1].GetSender() != "c" {
				t.Errorf("c's finding does not name c's receipt: %v", f)
			}
			gotLate[ref.GetSeq()] = true
		default:
			t.Errorf("finding about party %s: %v", f.GetParty(), f)
		}
	}
	if !maps.Equal(gotMissing, wantMissing) || !maps.Equal(gotLate, wantLate) {
		t.Errorf("got %d missing and %d late receipts, want %d and %d", len(gotMissing), len(gotLate), len(wantMissing), len(wantLate))
	}
}

// TestLog checks that a Log built entry by entry gives the findings of
// Evaluate over the same entries, and that it is evaluated once.
func TestLog(t *testing.T) {
	entries, now := benchLog(t, 3000)
	e := newEngine(t, agreement.Rules{})
	want := e.Evaluate(entries, now)
	lg := e.NewLog(10) // a hint too small: the Log grows
	for _, en := range entries {
		lg.Add(Compact(en))
	}
	lg.Add(Entry{Sender: "a", Seq: 1 << 40, Statement: &parleyv1.Statement{}}) // no body: ignored
	if lg.Len() != len(entries) {
		t.Errorf("Len() = %d, want %d", lg.Len(), len(entries))
	}
	got := lg.Evaluate(now)
	if len(want) == 0 || !slices.EqualFunc(got, want, func(a, b *parleyv1.Finding) bool { return CompareFindings(a, b) == 0 }) {
		t.Errorf("a Log gave %d findings, Evaluate %d (or they differ)", len(got), len(want))
	}
	for name, f := range map[string]func(){
		"Add":      func() { lg.Add(entries[0]) },
		"Evaluate": func() { lg.Evaluate(now) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s after Evaluate did not panic", name)
				}
			}()
			f()
		}()
	}
}

// TestPlaceList checks that a place list gives back the names it was made
// of, whatever bytes they hold and however long they are.
func TestPlaceList(t *testing.T) {
	long := strings.Repeat("x", 300) // a length of two bytes
	for _, names := range [][]string{
		nil,
		{""},
		{"", "a"},
		{"eastfield"},
		{"a\x00b", "a\x80", long},
		{long, long + "y"},
	} {
		l := makePlaceList(names)
		if got := slices.Collect(l.all()); !slices.Equal(got, names) && len(got)+len(names) > 0 {
			t.Errorf("makePlaceList(%q) gives back %q", names, got)
		}
		if l.empty() != (len(names) == 0) {
			t.Errorf("makePlaceList(%q).empty() = %v", names, l.empty())
		}
	}
	// Reading a list allocates nothing: the split sweep and the host
	// rule read every activity's.
	l := makePlaceList([]string{"eastfield", long, "training area north"})
	if allocs := testing.AllocsPerRun(100, func() {
		for range l.all() {
		}
	}); allocs != 0 {
		t.Errorf("reading a place list allocated %v times, want 0", allocs)
	}
	if makePlaceList([]string{"a", "b"}) == makePlaceList([]string{"ab"}) {
		t.Error("the lists of a, b and of ab are the same")
	}
}

// TestEvaluateEach checks that EvaluateEach hands over the findings of
// Evaluate, each once, for both rule sets (receipts of c left out so that
// both have findings).
func TestEvaluateEach(t *testing.T) {
	entries, now := benchLog(t, 3000)
	entries = slices.DeleteFunc(entries, func(en Entry) bool { return en.Sender == "c" && en.Seq%7 == 0 })
	for _, set := range []string{agreement.SetVD2011, agreement.SetMissile1988} {
		e := newEngine(t, agreement.Rules{Set: set})
		want := e.Evaluate(entries, now)
		lg := e.NewLog(len(entries))
		for _, en := range entries {
			lg.Add(en)
		}
		var got []*parleyv1.Finding
		lg.EvaluateEach(now, func(f *parleyv1.Finding) { got = append(got, f) })
		slices.SortFunc(got, CompareFindings)
		if len(want) == 0 || !slices.EqualFunc(got, want, func(a, b *parleyv1.Finding) bool { return CompareFindings(a, b) == 0 }) {
			t.Errorf("%s: EvaluateEach gave %d findings, Evaluate %d (or they differ)", set, len(got), len(want))
		}
	}
}

// TestStampAfter checks that stamps compare as their times do.
func TestStampAfter(t *testing.T) {
	times := []stamp{
		{},
		stampAt(time.Time{}, true),
		stampAt(time.Unix(-1, 5).UTC(), true),
		stampAt(time.Unix(0, 0).UTC(), true),
		stampAt(time.Unix(0, 1).UTC(), true),
		stampAt(time.Unix(1, 0).UTC(), true),
		stampAt(utc(2027, 3, 1, 0, 0, 0), true),
	}
	for _, a := range times {
		for _, b := range times {
			if got, want := a.after(b), a.time().After(b.time()); got != want {
				t.Errorf("%v after %v: got %v, want %v", a.time(), b.time(), got, want)
			}
		}
	}
}
