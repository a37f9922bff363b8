package rules

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

func TestNear(t *testing.T) {
	after := start.Add(10 * day)
	// part has a give an activity from s for dur at the places.
	part := func(designation string, s time.Time, dur time.Duration, n uint32, where ...string) func(*testLog) {
		return func(l *testLog) {
			l.give("a", s.Add(-50*day), notice(act(designation, s, dur, troops(n), places(where...))))
		}
	}
	runRule(t, RuleNear, []ruleCase{
		{name: "troops 12,349", build: notified(troops(12349), 50*day), now: after},
		{name: "troops 12,350 (95% of 13,000)", build: notified(troops(12350), 50*day), now: after, want: []want{{"a", advisory}}},
		{name: "troops 12,700 (Zapad-2017)", build: notified(troops(12700), 50*day), now: after, want: []want{{"a", advisory}}},
		{name: "troops 12,999", build: notified(troops(12999), 50*day), now: after, want: []want{{"a", advisory}}},
		{name: "troops 13,000", build: notified(troops(13000), 50*day), now: after},
		{name: "troops 8,549", build: notified(troops(8549), 50*day), now: after},
		{name: "troops 8,550 (95% of 9,000)", build: notified(troops(8550), 50*day), now: after, want: []want{{"a", advisory}}},
		{name: "troops 8,999", build: notified(troops(8999), 50*day), now: after, want: []want{{"a", advisory}}},
		{name: "tanks 237", build: notified(&parleyv1.Forces{BattleTanks: 237}, 50*day), now: after},
		{name: "tanks 238", build: notified(&parleyv1.Forces{BattleTanks: 238}, 50*day), now: after, want: []want{{"a", advisory}}},
		{name: "troops 12,999 but tanks 300 reach observation", build: notified(&parleyv1.Forces{Troops: 12999, BattleTanks: 300}, 50*day), now: after},
		{name: "margin parameter", rules: agreement.Rules{VD2011: &agreement.VD2011{NearMarginPercent: 1}}, build: notified(troops(12700), 50*day), now: after},
		{
			name:  "split: two parts at one place at the same time",
			build: steps(part("North", start, 5*day, 5000, "Eastfield"), part("South", start.Add(day), 5*day, 5000, " eastfield")),
			now:   after,
			want:  []want{{"a", advisory}},
		},
		{
			name:  "no split: one after the other",
			build: steps(part("North", start, 5*day, 5000, "Eastfield"), part("South", start.Add(5*day), 5*day, 5000, "Eastfield")),
			now:   after,
		},
		{
			name:  "no split: different places",
			build: steps(part("North", start, 5*day, 5000, "Eastfield"), part("South", start, 5*day, 5000, "Westfield")),
			now:   after,
		},
		{
			name:  "no split: together below every threshold",
			build: steps(part("North", start, 5*day, 4000, "Eastfield"), part("South", start, 5*day, 4999, "Eastfield")),
			now:   after,
		},
		{
			name: "split: three parts reported once",
			build: steps(
				part("One", start, 5*day, 5000, "Eastfield"),
				part("Two", start.Add(day), 5*day, 5000, "Eastfield", "Hill"),
				part("Three", start.Add(2*day), 5*day, 5000, "Hill", "Eastfield"),
			),
			now:  after,
			want: []want{{"a", advisory}},
		},
		{
			name:  "no split: other senders",
			build: steps(part("North", start, 5*day, 5000, "Eastfield"), func(l *testLog) { l.give("b", start.Add(-50*day), notice(act("South", start, 5*day, troops(5000)))) }),
			now:   after,
		},
		{
			name: "no split: one part withdrawn",
			build: steps(part("North", start, 5*day, 5000, "Eastfield"), part("South", start, 5*day, 5000, "Eastfield"), func(l *testLog) {
				l.give("a", start.Add(-10*day), cancellation(2))
			}),
			now: after,
		},
		{
			name:  "split reaching observation only",
			build: steps(part("North", start, 5*day, 9000, "Eastfield"), part("South", start, 5*day, 9000, "Eastfield")),
			now:   after,
			want:  []want{{"a", advisory}},
		},
	})
}

func TestNearText(t *testing.T) {
	l := newLog(t)
	l.give("a", start.Add(-50*day), notice(act("Zapad", start, 5*day, troops(12700))))
	got := only(newEngine(t, agreement.Rules{}).Evaluate(l.entries, start), RuleNear, "")
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1", len(got))
	}
	if want := "troops 12,700, 300 below the observation threshold 13,000"; got[0].Seen != want {
		t.Errorf("got seen %q, want %q", got[0].Seen, want)
	}

	l = newLog(t)
	l.give("a", start.Add(-50*day), notice(act("One", start, 5*day, troops(5000))))
	l.give("a", start.Add(-50*day), notice(act("Two", start, 5*day, troops(9000))))
	got = only(newEngine(t, agreement.Rules{}).Evaluate(l.entries, start), RuleNear, "")
	if len(got) != 1 || len(got[0].Entries) != 2 || !strings.Contains(got[0].Seen, "the observation threshold (troops 14,000 >= 13,000)") {
		t.Errorf("got %s, want one split finding over 2 entries reaching the observation threshold", dump(got))
	}
}

func TestSplitGroups(t *testing.T) {
	// part gives an activity of a with n troops from s for dur at the places.
	part := func(l *testLog, designation string, s time.Time, dur time.Duration, n uint32, where ...string) {
		l.give("a", s.Add(-50*day), notice(act(designation, s, dur, troops(n), places(where...))))
	}
	type split struct {
		seqs []uint64
		seen string
	}
	tests := []struct {
		name  string
		build func(l *testLog)
		want  []split
	}{
		{
			name: "a split at each level",
			build: func(l *testLog) {
				part(l, "One", start, 5*day, 5000, "Eastfield")
				part(l, "Two", start, 5*day, 5000, "Eastfield")
				part(l, "Three", start, 5*day, 9500, "Eastfield")
			},
			want: []split{
				{[]uint64{1, 2}, `2 activities at "eastfield" at the same time together reach the notification threshold (troops 10,000 >= 9,000)`},
				{[]uint64{1, 2, 3}, `3 activities at "eastfield" at the same time together reach the observation threshold (troops 19,500 >= 13,000)`},
			},
		},
		{
			name: "one set at two places and both levels",
			build: func(l *testLog) {
				part(l, "One", start, 5*day, 7000, "Westfield", "Eastfield")
				part(l, "Two", start.Add(day), 5*day, 7000, "Eastfield", "Westfield")
			},
			want: []split{
				{[]uint64{1, 2}, `2 activities at "eastfield" at the same time together reach the notification threshold (troops 14,000 >= 9,000) and the observation threshold (troops 14,000 >= 13,000)`},
			},
		},
		{
			name: "contained in a larger set at another place",
			build: func(l *testLog) {
				part(l, "One", start, 5*day, 5000, "Eastfield", "Hill")
				part(l, "Two", start, 5*day, 5000, "Eastfield", "Hill")
				part(l, "Three", start.Add(day), 5*day, 5000, "Hill")
			},
			want: []split{
				{[]uint64{1, 2, 3}, `3 activities at "hill" at the same time together reach the notification threshold (troops 15,000 >= 9,000) and the observation threshold (troops 15,000 >= 13,000)`},
			},
		},
		{
			name: "two sets in a row",
			build: func(l *testLog) {
				part(l, "One", start, 2*day, 5000, "Eastfield")
				part(l, "Two", start.Add(day), 2*day, 5000, "Eastfield")
				part(l, "Three", start.Add(2*day), 2*day, 5000, "Eastfield")
			},
			want: []split{
				{[]uint64{1, 2}, `2 activities at "eastfield" at the same time together reach the notification threshold (troops 10,000 >= 9,000)`},
				{[]uint64{2, 3}, `2 activities at "eastfield" at the same time together reach the notification threshold (troops 10,000 >= 9,000)`},
			},
		},
		{
			name: "an activity that ends at its start runs at no time",
			build: func(l *testLog) {
				part(l, "One", start, 5*day, 5000, "Eastfield")
				part(l, "Two", start.Add(day), 0, 5000, "Eastfield")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLog(t)
			tc.build(l)
			var got []split
			for _, f := range only(newEngine(t, agreement.Rules{}).Evaluate(l.entries, start.Add(10*day)), RuleNear, "") {
				var seqs []uint64
				for _, r := range f.Entries {
					seqs = append(seqs, r.Seq)
				}
				got = append(got, split{seqs, f.Seen})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSplitMany checks the finding about the pathological log of
// BenchmarkEvaluateSplit: one split of every notification, naming the
// first and the last ten.
func TestSplitMany(t *testing.T) {
	if testing.Short() {
		t.Skip("large log")
	}
	entries, now := splitLog(t, 20000)
	var notices []uint64
	for _, en := range entries {
		if en.Statement.GetBody().GetNotification() != nil {
			notices = append(notices, en.Seq)
		}
	}
	n := len(notices)
	got := newEngine(t, agreement.Rules{}).Evaluate(entries, now)
	if len(got) != 1 || got[0].Rule != RuleNear {
		t.Fatalf("got %d findings, want one %s finding:\n%s", len(got), RuleNear, dump(got[:min(len(got), 3)]))
	}
	f := got[0]
	var seqs []uint64
	for _, r := range f.Entries {
		if r.Sender != "a" {
			t.Errorf("got an entry of %s, want only a", r.Sender)
		}
		seqs = append(seqs, r.Seq)
	}
	if want := append(slices.Clone(notices[:10]), notices[n-10:]...); !slices.Equal(seqs, want) {
		t.Errorf("got entries %v, want %v", seqs, want)
	}
	troops := fmtCount(uint64(9500 * n))
	wantSeen := fmt.Sprintf(`%d activities at "training area north" at the same time together reach the observation threshold (troops %s >= 13,000, battle tanks %s >= 300, ACVs %s >= 500, artillery pieces %s >= 250); listed are the 10 with the lowest and the 10 with the highest seq`,
		n, troops, fmtCount(uint64(120*n)), fmtCount(uint64(300*n)), fmtCount(uint64(90*n)))
	if f.Seen != wantSeen {
		t.Errorf("got seen %q, want %q", f.Seen, wantSeen)
	}
	if want := fmt.Sprintf(`"Exercise %d" and %s more`, n-1, fmtCount(uint64(n-20))); !strings.HasSuffix(f.Summary, want) {
		t.Errorf("got summary %q, want one ending in %q", f.Summary, want)
	}
	if want := utc(2027, 3, 1, 6, 0, 0).Add(-45 * day); !f.At.AsTime().Equal(want) {
		t.Errorf("got at %v, want %v", f.At.AsTime(), want)
	}
}

// TestSplitsDirect compares the possible splits found in random logs with
// a direct reading of the rule: for each level and place, every set of
// parts running at an instant, the largest of them, compared pairwise.
func TestSplitsDirect(t *testing.T) {
	e := newEngine(t, agreement.Rules{})
	type split struct {
		seqs string
		seen string
	}
	var splits, multi int
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 7))
		l := newLog(t)
		type part struct {
			from, to time.Time
			places   []string
			f        forces
		}
		var parts []part
		for i := range 2 + r.IntN(9) {
			s := start.Add(time.Duration(r.IntN(8)) * 12 * time.Hour)
			dur := time.Duration(r.IntN(5)) * 12 * time.Hour
			var where []string
			for _, p := range []string{"e", "h", "w"} {
				if r.IntN(2) == 0 {
					where = append(where, p)
				}
			}
			n := []uint32{3000, 5000, 7000, 9500, 14000}[r.IntN(5)]
			l.give("a", start.Add(-50*day), notice(act(fmt.Sprint(i), s, dur, troops(n), places(where...))))
			parts = append(parts, part{s, s.Add(dur), where, forces{fieldTroops: uint64(n)}})
		}

		// Maximal sets (bit masks of parts) per level and place.
		maximal := make(map[[2]int][]uint64)
		byLevel := [2][]uint64{}
		for level := range 2 {
			for p, name := range []string{"e", "h", "w"} {
				var sets []uint64
				for _, x := range parts {
					var set uint64
					for i, y := range parts {
						if slices.Contains(y.places, name) && y.from.Before(y.to) && !e.reaches(y.f, level) &&
							!y.from.After(x.from) && x.from.Before(y.to) {
							set |= 1 << i
						}
					}
					if set != 0 && !slices.Contains(sets, set) {
						sets = append(sets, set)
					}
				}
				for _, set := range sets {
					larger := false
					for _, other := range sets {
						larger = larger || other != set && other&set == set
					}
					if !larger {
						maximal[[2]int{level, p}] = append(maximal[[2]int{level, p}], set)
						byLevel[level] = append(byLevel[level], set)
					}
				}
			}
		}
		var want []split
		done := make(map[uint64]bool)
		for p, name := range []string{"e", "h", "w"} {
			for level := range 2 {
				for _, set := range maximal[[2]int{level, p}] {
					if done[set] {
						continue
					}
					var sum forces
					var seqs []string
					for i, x := range parts {
						if set&(1<<i) != 0 {
							sum[fieldTroops] += x.f[fieldTroops]
							seqs = append(seqs, fmt.Sprint(i+1))
						}
					}
					var reached []string
					for lv := range 2 {
						ok := e.reaches(sum, lv) && slices.Contains(byLevel[lv], set)
						for _, other := range byLevel[lv] {
							ok = ok && !(other != set && other&set == set)
						}
						if ok {
							reached = append(reached, "the "+levelNames[lv]+" threshold ("+e.reached(sum, lv)+")")
						}
					}
					if len(reached) == 0 || !slices.Contains(reached, "the "+levelNames[level]+" threshold ("+e.reached(sum, level)+")") {
						continue
					}
					done[set] = true
					want = append(want, split{strings.Join(seqs, ","), fmt.Sprintf("%d activities at %q at the same time together reach %s", len(seqs), name, strings.Join(reached, " and "))})
				}
			}
		}

		var got []split
		for _, f := range only(e.Evaluate(l.entries, start.Add(10*day)), RuleNear, "") {
			if !strings.Contains(f.Seen, "at the same time") {
				continue
			}
			var seqs []string
			for _, r := range f.Entries {
				seqs = append(seqs, fmt.Sprint(r.Seq))
			}
			got = append(got, split{strings.Join(seqs, ","), f.Seen})
		}
		cmpSplit := func(a, b split) int { return cmp.Or(strings.Compare(a.seqs, b.seqs), strings.Compare(a.seen, b.seen)) }
		slices.SortFunc(got, cmpSplit)
		slices.SortFunc(want, cmpSplit)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: got %v, want %v", seed, got, want)
		}
		splits += len(got)
		if len(got) > 1 {
			multi++
		}
	}
	if splits < 500 || multi < 100 {
		t.Errorf("got %d splits, %d logs with several: the generator exercises too little", splits, multi)
	}
}
