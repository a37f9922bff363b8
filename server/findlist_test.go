package server

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier/rules"
)

// randomFindings returns n findings drawn from a small space, so that the
// order decides on every field in turn and some findings are equal.
func randomFindings(rng *rand.Rand, n int) []*parleyv1.Finding {
	rulesOf := []string{rules.RuleLead, rules.RuleNear, rules.RuleReceipt}
	parties := []string{"alpha", "bravo", "charlie"}
	base := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	out := make([]*parleyv1.Finding, n)
	for i := range out {
		f := &parleyv1.Finding{
			Rule:     rulesOf[rng.IntN(len(rulesOf))],
			Severity: parleyv1.Severity(1 + rng.IntN(3)),
			Party:    parties[rng.IntN(len(parties))],
			Required: fmt.Sprintf("required %d", rng.IntN(3)),
			Seen:     fmt.Sprintf("seen %d", rng.IntN(3)),
			Summary:  strings.Repeat("s", rng.IntN(3)),
			At:       timestamppb.New(base.Add(time.Duration(rng.IntN(4)) * time.Second)),
		}
		for range rng.IntN(3) {
			d := make([]byte, 32)
			d[0] = byte(rng.IntN(2))
			f.Entries = append(f.Entries, &parleyv1.EntryRef{Sender: parties[rng.IntN(len(parties))], Seq: uint64(rng.IntN(5)), Digest: d})
		}
		out[i] = f
	}
	return out
}

// TestListBuilder builds lists of findings, short ones in memory and long
// ones spilled in sorted runs and merged, and reads them from every kind of
// position: each is the findings sorted by rules.CompareFindings, and no
// file is left in the directory.
func TestListBuilder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		n, run int
		spill  bool
	}{
		{n: 0, run: 4},
		{n: 3, run: 4},
		{n: 4, run: 4, spill: true}, // one full run
		{n: 5, run: 4, spill: true},
		{n: 1000, run: 1, spill: true}, // a run per finding
		{n: 1000, run: 7, spill: true},
		{n: 3*listMark + 1, run: 100, spill: true},
		{n: 1000, run: 1000, spill: true},
		{n: 3000, run: 1000, spill: true}, // runs longer than their read buffer
		{n: 999, run: 1000},
	} {
		t.Run(fmt.Sprintf("n=%d,run=%d", tc.n, tc.run), func(t *testing.T) {
			dir := t.TempDir()
			in := randomFindings(rng, tc.n)
			want := make([]*parleyv1.Finding, len(in))
			for i, f := range in {
				want[i] = proto.Clone(f).(*parleyv1.Finding)
			}
			slices.SortStableFunc(want, rules.CompareFindings)

			b := newListBuilder(dir, tc.run)
			b.punch = 4096 // the runs' blocks freed as soon as a page of them is read
			for _, f := range in {
				b.add(f)
			}
			l, err := b.finish()
			if err != nil {
				t.Fatal(err)
			}
			if l.spilled() != tc.spill || l.Len() != tc.n {
				t.Fatalf("spilled %v with %d findings, want %v with %d", l.spilled(), l.Len(), tc.spill, tc.n)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("%d files left in the directory, want none (unlinked)", len(left))
			}
			got, err := l.all()
			if err != nil {
				t.Fatal(err)
			}
			same(t, got, want, 0)
			for _, from := range []int{1, listMark - 1, listMark, listMark + 1, 2*listMark + 5, tc.n - 1, tc.n, tc.n + 1} {
				if from < 0 {
					continue
				}
				var part []*parleyv1.Finding
				stopAt := 3
				if err := l.each(from, func(i int, f *parleyv1.Finding) bool {
					if i != from+len(part) {
						t.Fatalf("from %d: finding at position %d, want %d", from, i, from+len(part))
					}
					part = append(part, f)
					return len(part) < stopAt
				}); err != nil {
					t.Fatal(err)
				}
				same(t, part, want[min(from, tc.n):min(from+stopAt, tc.n)], from)
			}
		})
	}
}

// same fails unless got and want hold equal findings in the same order;
// from is where they start in the list, for the message.
func same(t *testing.T, got, want []*parleyv1.Finding, from int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("from %d: %d findings, want %d", from, len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("from %d, finding %d:\n got %v\nwant %v", from, from+i, got[i], want[i])
		}
	}
}

// TestSpilledListDamaged reads a spilled list whose file was damaged: the
// reader reports which finding it could not read, instead of a short or
// wrong list.
func TestSpilledListDamaged(t *testing.T) {
	b := newListBuilder(t.TempDir(), 10)
	for _, f := range randomFindings(rand.New(rand.NewPCG(3, 4)), 50) {
		b.add(f)
	}
	l, err := b.finish()
	if err != nil {
		t.Fatal(err)
	}
	// A length prefix beyond any finding, at finding 0.
	if _, err := l.file.WriteAt([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 0); err != nil {
		t.Fatal(err)
	}
	err = l.each(0, func(int, *parleyv1.Finding) bool { return true })
	if err == nil || !strings.Contains(err.Error(), "finding 0 of 50") {
		t.Fatalf("got %v, want an error naming finding 0 of 50", err)
	}
}

// TestListBuilderFails: a directory that cannot hold the runs fails the
// list with the reason, once the findings no longer fit in memory.
func TestListBuilderFails(t *testing.T) {
	b := newListBuilder(t.TempDir()+"/absent", 2)
	for _, f := range randomFindings(rand.New(rand.NewPCG(5, 6)), 5) {
		b.add(f)
	}
	if _, err := b.finish(); err == nil || !strings.Contains(err.Error(), "couldn't create a file for a long list of findings") {
		t.Fatalf("got %v, want the run's file refused", err)
	}
}

// BenchmarkSpilledList builds and reads a spilled list of 200,000
// findings, for the bytes held and the time per finding.
func BenchmarkSpilledList(b *testing.B) {
	in := randomFindings(rand.New(rand.NewPCG(7, 8)), 200_000)
	dir := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		lb := newListBuilder(dir, spillRun)
		for _, f := range in {
			lb.add(f)
		}
		l, err := lb.finish()
		if err != nil {
			b.Fatal(err)
		}
		if err := l.each(0, func(int, *parleyv1.Finding) bool { return true }); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEachNew sends the findings of a list that the list before did not
// hold, each once, for lists held in memory and spilled in either order:
// what it sends is the set difference, computed here over the findings'
// bytes.
func TestEachNew(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	build := func(t *testing.T, fs []*parleyv1.Finding, run int) *findingsList {
		t.Helper()
		b := newListBuilder(t.TempDir(), run)
		for _, f := range fs {
			b.add(f)
		}
		l, err := b.finish()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, tc := range []struct {
		name             string
		prev, cur        int // findings drawn for each
		shared           int // of prev's, also in cur
		prevRun, curRun  int
		prevNil, curDups bool
	}{
		{name: "first list", prevNil: true, cur: 300, curRun: 1000},
		{name: "first list, spilled", prevNil: true, cur: 300, curRun: 7},
		{name: "grown", prev: 200, shared: 200, cur: 100, prevRun: 1000, curRun: 1000},
		{name: "grown, both spilled", prev: 200, shared: 200, cur: 100, prevRun: 9, curRun: 13},
		{name: "some gone, spilled then not", prev: 300, shared: 150, cur: 100, prevRun: 5, curRun: 1000},
		{name: "some gone, not then spilled", prev: 300, shared: 150, cur: 100, prevRun: 1000, curRun: 5},
		{name: "the same", prev: 250, shared: 250, prevRun: 1000, curRun: 3},
		{name: "duplicates", prev: 50, shared: 25, cur: 50, prevRun: 1000, curRun: 1000, curDups: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prevFs := randomFindings(rng, tc.prev)
			curFs := append(slices.Clone(prevFs[:tc.shared]), randomFindings(rng, tc.cur)...)
			if tc.curDups {
				curFs = append(curFs, curFs...)
			}
			rng.Shuffle(len(curFs), func(i, j int) { curFs[i], curFs[j] = curFs[j], curFs[i] })
			want := map[string]int{}
			held := map[string]bool{}
			if !tc.prevNil {
				for _, f := range prevFs {
					held[string(mustMarshal(f))] = true
				}
			}
			for _, f := range curFs {
				if k := string(mustMarshal(f)); !held[k] {
					want[k] = 1
				}
			}
			var prev *findingsList
			if !tc.prevNil {
				prev = build(t, prevFs, tc.prevRun)
			}
			cur := build(t, curFs, tc.curRun)
			got := map[string]int{}
			var sent []*parleyv1.Finding
			if err := eachNew(prev, cur, func(f *parleyv1.Finding) error {
				got[string(mustMarshal(f))]++
				sent = append(sent, f)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Fatalf("sent %d distinct findings (%d in all), want %d, each once", len(got), len(sent), len(want))
			}
			if !slices.IsSortedFunc(sent, rules.CompareFindings) {
				t.Fatal("sent out of the list's order")
			}
		})
	}
}
