package rules

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// utc returns a UTC time.
func utc(y int, m time.Month, d, h, min, s int) time.Time {
	return time.Date(y, m, d, h, min, s, 0, time.UTC)
}

// steps chains build steps.
func steps(ss ...func(*testLog)) func(*testLog) {
	return func(l *testLog) {
		for _, s := range ss {
			s(l)
		}
	}
}

// logFrom starts the log at t with an entry of party c.
func logFrom(t time.Time) func(*testLog) {
	return func(l *testLog) { l.give("c", t, calendar(uint32(t.Year()))) }
}

// calendarAt has a give a calendar for year with the entries at t.
func calendarAt(t time.Time, year uint32, entries ...*parleyv1.CalendarEntry) func(*testLog) {
	return func(l *testLog) { l.give("a", t, calendar(year, entries...)) }
}

func TestCalendar(t *testing.T) {
	oct := logFrom(utc(2026, 10, 1, 0, 0, 0))
	last := utc(2026, 11, 15, 23, 59, 0)
	deadline := utc(2026, 11, 16, 0, 0, 0)
	shield := planned("Shield", start, troops(9000))
	jan := utc(2027, 1, 1, 0, 0, 0)
	cases := []ruleCase{
		{name: "calendar on 15 Nov 23:59", build: steps(oct, calendarAt(last, 2027, shield)), now: jan},
		{name: "calendar on 16 Nov 00:00", build: steps(oct, calendarAt(deadline, 2027, shield)), now: jan, want: []want{{"a", violation}}},
		{name: "silence with notified activities", build: steps(oct, notified(troops(9000), 100*day)), now: jan, want: []want{{"a", violation}}},
		{name: "calendar for another year does not count", build: steps(oct, calendarAt(last, 2028, shield), notified(troops(9000), 100*day)), now: jan, want: []want{{"a", violation}}},
		{name: "missing at 15 Nov 23:59:59", build: steps(oct, notified(troops(9000), 100*day)), now: deadline.Add(-time.Second)},
		{name: "missing at 16 Nov 00:00", build: steps(oct, notified(troops(9000), 200*day)), now: deadline, want: []want{{"a", violation}}},
		{name: "log starts after the deadline", build: steps(logFrom(utc(2026, 11, 20, 0, 0, 0)), notified(troops(9000), 100*day)), now: jan},
		{
			name: "late by receipt although issued in time",
			build: steps(oct, func(l *testLog) {
				e := l.add("a", utc(2026, 11, 15, 23, 0, 0), calendar(2027, shield))
				l.receipt("b", deadline.Add(30*time.Minute), deadline.Add(30*time.Minute), e)
			}),
			now:  jan,
			want: []want{{"a", violation}},
		},
		{
			name:  "deadline parameters",
			rules: agreement.Rules{VD2011: &agreement.VD2011{CalendarMonth: 12, CalendarDay: 1}},
			build: steps(oct, calendarAt(utc(2026, 12, 1, 23, 59, 59), 2027, shield)),
			now:   jan,
		},
	}
	for i := range cases {
		cases[i].party = "a"
	}
	runRule(t, RuleCalendar, cases)
}

func TestNilCalendar(t *testing.T) {
	oct := logFrom(utc(2026, 10, 1, 0, 0, 0))
	last := utc(2026, 11, 15, 23, 59, 0)
	deadline := utc(2026, 11, 16, 0, 0, 0)
	jan := utc(2027, 1, 1, 0, 0, 0)
	cases := []ruleCase{
		{name: "nil calendar on 15 Nov 23:59", build: steps(oct, calendarAt(last, 2027)), now: jan},
		{name: "nil calendar on 16 Nov 00:00", build: steps(oct, calendarAt(deadline, 2027)), now: jan, want: []want{{"a", violation}}},
		{name: "silence at 15 Nov 23:59:59", build: oct, now: deadline.Add(-time.Second)},
		{name: "silence at 16 Nov 00:00", build: oct, now: deadline, want: []want{{"a", violation}}},
		{name: "silence with only an alert activity", build: steps(oct, notified(troops(9000), 0, alert)), now: jan, want: []want{{"a", violation}}},
		{name: "silence with notified activities is VD.VII.calendar", build: steps(oct, notified(troops(9000), 100*day)), now: jan},
		{
			name:  "every year up to now",
			build: steps(oct, calendarAt(last, 2027)),
			now:   utc(2028, 1, 1, 0, 0, 0),
			want:  []want{{"a", violation}}, // 2028
		},
		{name: "every party", build: oct, now: jan, want: []want{{"a", violation}, {"b", violation}, {"c", violation}}},
	}
	for i := range cases[:len(cases)-1] {
		cases[i].party = "a"
	}
	runRule(t, RuleNil, cases)
}

func TestInCalendar(t *testing.T) {
	oct := utc(2026, 10, 1, 0, 0, 0)
	deadline := utc(2026, 11, 16, 0, 0, 0)
	after := start.Add(10 * day)
	early := func(f *parleyv1.Forces, opts ...func(*parleyv1.ActivityNotification)) func(*testLog) {
		return notified(f, start.Sub(oct), opts...)
	}
	runRule(t, RuleInCalendar, []ruleCase{
		{name: "listed", build: steps(calendarAt(oct, 2027, planned("Shield", start, troops(9000))), early(troops(9000))), now: after},
		{name: "listed, other case and spaces", build: steps(calendarAt(oct, 2027, planned(" SHIELD ", start, troops(9000))), early(troops(9000))), now: after},
		{name: "not listed", build: steps(calendarAt(oct, 2027, planned("Other", start, troops(9000))), early(troops(9000))), now: after, want: []want{{"a", low}}},
		{name: "listed for another year", build: steps(calendarAt(oct, 2028, planned("Shield", start, troops(9000))), early(troops(9000))), now: after, want: []want{{"a", low}}},
		{name: "no calendar before the deadline", build: early(troops(9000)), now: deadline.Add(-time.Second)},
		{name: "no calendar at the deadline", build: early(troops(9000)), now: deadline, want: []want{{"a", low}}},
		{name: "log starts after the deadline", build: steps(logFrom(deadline), notified(troops(9000), 50*day)), now: after},
		{name: "below threshold", build: early(troops(8999)), now: after},
		{name: "alert", build: notified(troops(9000), 0, alert), now: after},
		{
			name: "listed under the original designation",
			build: steps(calendarAt(oct, 2027, planned("Shield", start, troops(9000))), early(troops(9000)), func(l *testLog) {
				l.give("a", oct.Add(day), amendment(2, act("Shield II", start, 5*day, troops(9000))))
			}),
			now: after,
		},
		{
			name: "withdrawn",
			build: steps(early(troops(9000)), func(l *testLog) {
				l.give("a", oct.Add(day), cancellation(1))
			}),
			now: after,
		},
	})
}

func TestLarge(t *testing.T) {
	after := start.Add(10 * day)
	last := utc(2025, 11, 15, 23, 59, 0)
	deadline := utc(2025, 11, 16, 0, 0, 0)
	listedAt := func(at time.Time, f *parleyv1.Forces) func(*testLog) {
		return steps(logFrom(utc(2025, 1, 1, 0, 0, 0)), calendarAt(at, 2027, planned("Shield", start, f)), notified(f, 50*day))
	}
	from2025 := logFrom(utc(2025, 1, 1, 0, 0, 0))
	runRule(t, RuleLarge, []ruleCase{
		{name: "troops 40,000 not listed", build: steps(from2025, notified(troops(40000), 50*day)), now: after},
		{name: "troops 40,001 not listed", build: steps(from2025, notified(troops(40001), 50*day)), now: after, want: []want{{"a", violation}}},
		{name: "tanks 900 not listed", build: steps(from2025, notified(&parleyv1.Forces{BattleTanks: 900}, 50*day)), now: after},
		{name: "tanks 901 not listed", build: steps(from2025, notified(&parleyv1.Forces{BattleTanks: 901}, 50*day)), now: after, want: []want{{"a", violation}}},
		{name: "log starts after the deadline", build: steps(logFrom(deadline), notified(troops(40001), 50*day)), now: after},
		{name: "listed on 15 Nov of Y-2 23:59", build: listedAt(last, troops(40001)), now: after},
		{name: "listed on 16 Nov of Y-2 00:00", build: listedAt(deadline, troops(40001)), now: after, want: []want{{"a", violation}}},
		{name: "listed a year ahead only", build: listedAt(utc(2026, 11, 1, 0, 0, 0), troops(40001)), now: after, want: []want{{"a", violation}}},
		{name: "alert", build: steps(from2025, notified(troops(50000), 0, alert)), now: after},
		{
			name: "notified early, before the deadline",
			build: func(l *testLog) {
				l.give("a", utc(2025, 6, 1, 0, 0, 0), notice(act("Shield", start, 5*day, troops(40001))))
			},
			now: deadline.Add(-time.Second),
		},
		{
			name: "notified early, at the deadline",
			build: func(l *testLog) {
				l.give("a", utc(2025, 6, 1, 0, 0, 0), notice(act("Shield", start, 5*day, troops(40001))))
			},
			now:  deadline,
			want: []want{{"a", violation}},
		},
		{
			name:  "troop parameter",
			rules: agreement.Rules{VD2011: &agreement.VD2011{LargeTroops: 50000}},
			build: steps(from2025, notified(troops(45000), 50*day)),
			now:   after,
		},
		{
			name:  "advance parameter",
			rules: agreement.Rules{VD2011: &agreement.VD2011{LargeAdvanceYears: 1}},
			build: listedAt(utc(2026, 11, 15, 0, 0, 0), troops(40001)),
			now:   after,
		},
	})
}

func TestThreeYears(t *testing.T) {
	large := func(year int, f uint32, opts ...func(*parleyv1.ActivityNotification)) func(*testLog) {
		return func(l *testLog) {
			s := utc(year, 3, 1, 0, 0, 0)
			l.give("a", s.Add(-50*day), notice(act("Big", s, 5*day, troops(f), opts...)))
		}
	}
	now := utc(2031, 1, 1, 0, 0, 0)
	runRule(t, RuleThreeYears, []ruleCase{
		{name: "2027 and 2029", build: steps(large(2027, 40001), large(2029, 40001)), now: now, want: []want{{"a", violation}}},
		{name: "2027 and 2030", build: steps(large(2027, 40001), large(2030, 40001)), now: now},
		{name: "twice in 2027", build: steps(large(2027, 40001), large(2027, 40001)), now: now, want: []want{{"a", violation}}},
		{name: "2027, 2028, 2029", build: steps(large(2027, 40001), large(2028, 40001), large(2029, 40001)), now: now, want: []want{{"a", violation}, {"a", violation}}},
		{name: "40,000 and 40,001", build: steps(large(2027, 40000), large(2028, 40001)), now: now},
		{name: "alert activities count", build: steps(large(2027, 40001, alert), large(2028, 40001)), now: now, want: []want{{"a", violation}}},
		{
			name: "withdrawn activity does not count",
			build: steps(large(2027, 40001), large(2028, 40001), func(l *testLog) {
				l.give("a", utc(2028, 1, 1, 0, 0, 0), cancellation(2))
			}),
			now: now,
		},
		{
			name:  "count parameter",
			rules: agreement.Rules{VD2011: &agreement.VD2011{LargeMaxCount: 2}},
			build: steps(large(2027, 40001), large(2028, 40001), large(2029, 40001)),
			now:   now,
			want:  []want{{"a", violation}},
		},
		{
			name:  "years parameter",
			rules: agreement.Rules{VD2011: &agreement.VD2011{LargePerYears: 2}},
			build: steps(large(2027, 40001), large(2029, 40001)),
			now:   now,
		},
	})
}

// TestManyListed checks that findings about many activities name the
// first and the last ten of them.
func TestManyListed(t *testing.T) {
	l := newLog(t)
	l.give("c", utc(2026, 10, 1, 0, 0, 0), calendar(2026))
	for i := range 25 {
		s := utc(2027, 3, 1, i, 0, 0)
		l.give("a", s.Add(-50*day), notice(act(fmt.Sprintf("Big %d", i), s, 5*day, troops(40001))))
	}
	fs := newEngine(t, agreement.Rules{}).Evaluate(l.entries, utc(2027, 6, 1, 0, 0, 0))
	seqs := func(f *parleyv1.Finding) []uint64 {
		var out []uint64
		for _, r := range f.Entries {
			out = append(out, r.Seq)
		}
		return out
	}
	// a's seq 1 is its receipt of c's calendar.
	first, last := []uint64{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, []uint64{17, 18, 19, 20, 21, 22, 23, 24, 25, 26}

	three := only(fs, RuleThreeYears, "a")
	if len(three) != 24 {
		t.Fatalf("got %d %s findings, want 24", len(three), RuleThreeYears)
	}
	f := three[len(three)-1]
	if got, want := seqs(f), append(slices.Clone(first), last...); !slices.Equal(got, want) {
		t.Errorf("got %s entries %v, want %v", RuleThreeYears, got, want)
	}
	if !strings.HasPrefix(f.Seen, "25 in 2025-2027") || !strings.HasSuffix(f.Seen, "; listed are the 10 that start first and the 10 that start last") {
		t.Errorf("got %s seen %q", RuleThreeYears, f.Seen)
	}
	if got := seqs(three[18]); len(got) != 20 || got[19] != 21 {
		t.Errorf("got entries %v for the 20th activity, want all 20", got)
	}

	cal := only(fs, RuleCalendar, "a")
	if len(cal) != 1 {
		t.Fatalf("got %d %s findings, want 1", len(cal), RuleCalendar)
	}
	if got, want := seqs(cal[0]), append(slices.Clone(first), last...); !slices.Equal(got, want) {
		t.Errorf("got %s entries %v, want %v", RuleCalendar, got, want)
	}
	if want := "no calendar for 2027, though it has 25 notified activities; listed are the 10 with the lowest and the 10 with the highest seq"; cal[0].Seen != want {
		t.Errorf("got %s seen %q, want %q", RuleCalendar, cal[0].Seen, want)
	}
}
