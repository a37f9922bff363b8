package rules

import (
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
