package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// benchLog returns about n entries of parties a, b and c: activity
// notifications, each receipted by both counterparts, some of them late,
// near a threshold or overlapping others of the same sender.
func benchLog(b testing.TB, n int) ([]Entry, time.Time) {
	l := newLog(b)
	base := utc(2027, 1, 1, 0, 0, 0)
	for i := 0; len(l.entries) < n; i++ {
		p := parties[i%3]
		s := base.Add(time.Duration(i) * 2 * time.Hour)
		given := s.Add(-45 * day)
		if i%7 == 0 {
			given = s.Add(-40 * day)
		}
		f := &parleyv1.Forces{Troops: uint32(5000 + (i*997)%10000), BattleTanks: uint32((i * 31) % 320)}
		a := act(fmt.Sprintf("Exercise %d", i), s, 5*day, f, places(fmt.Sprintf("Area %d", (i/3)%20)))
		e := l.add(p, given, notice(a))
		for _, q := range parties {
			if q != p {
				d := time.Duration(i%90) * time.Minute
				l.receipt(q, given.Add(d), given.Add(d), e)
			}
		}
	}
	return l.entries, base.Add(400 * day)
}

func BenchmarkEvaluate(b *testing.B) {
	entries, now := benchLog(b, 10000)
	e := newEngine(b, agreement.Rules{})
	b.ReportAllocs()
	var findings int
	for b.Loop() {
		findings = len(e.Evaluate(entries, now))
	}
	b.ReportMetric(float64(len(entries)), "entries")
	b.ReportMetric(float64(findings), "findings")
}

// splitLog returns about n entries in which every notification of party a
// is a land exercise at "Training area North" starting at the same hour,
// lasting 10 days, with 9,500 troops, 120 battle tanks, 300 ACVs and 90
// artillery pieces: each reaches the notification threshold alone, and
// any two together reach the observation threshold that none reaches
// alone. Parties b and c receipt them in time, 100 to a receipt.
func splitLog(tb testing.TB, n int) ([]Entry, time.Time) {
	l := newLog(tb)
	s := utc(2027, 3, 1, 6, 0, 0)
	given := s.Add(-45 * day)
	f := &parleyv1.Forces{Troops: 9500, BattleTanks: 120, Acvs: 300, Artillery: 90}
	var batch []Entry
	flush := func() {
		for _, q := range []string{"b", "c"} {
			l.receipt(q, given.Add(time.Minute), given, batch...)
		}
		batch = batch[:0]
	}
	for i := 0; len(l.entries) < n; i++ {
		batch = append(batch, l.add("a", given, notice(act(fmt.Sprintf("Exercise %d", i), s, 10*day, f, places("Training area North")))))
		if len(batch) == 100 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return l.entries, s.Add(20 * day)
}

func BenchmarkEvaluateSplit(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			entries, now := splitLog(b, n)
			e := newEngine(b, agreement.Rules{})
			b.ReportAllocs()
			var findings int
			for b.Loop() {
				findings = len(e.Evaluate(entries, now))
			}
			b.ReportMetric(float64(len(entries)), "entries")
			b.ReportMetric(float64(findings), "findings")
		})
	}
}

// adversarialLogs returns logs of about n entries that defeat a quadratic
// evaluation in other ways than splits: one activity amended n times,
// under a new designation each time; amendments that refer to nothing,
// notifications and calendars of 100 activities, a third of each; and
// activities of a and b at "Hostland" (b's territory), each overlapping
// thousands of the other's. Receipts are left out: they only add findings.
func adversarialLogs(tb testing.TB, n int) map[string][]Entry {
	s := utc(2027, 3, 1, 6, 0, 0)
	f := &parleyv1.Forces{Troops: 9500}
	logs := make(map[string][]Entry)

	l := newLog(tb)
	l.add("a", s.Add(-45*day), notice(act("Exercise", s, 10*day, f)))
	for i := 1; i < n; i++ {
		l.add("a", s.Add(-45*day), amendment(1, act(fmt.Sprintf("Exercise %d", i), s, 10*day, f)))
	}
	logs["amendments"] = l.entries

	l = newLog(tb)
	var plan []*parleyv1.CalendarEntry
	for i := range 100 {
		plan = append(plan, planned(fmt.Sprintf("Exercise %d", i), s, f))
	}
	for i := 0; len(l.entries) < n; i++ {
		switch i % 3 {
		case 0:
			l.add("a", s.Add(-45*day), amendment(uint64(n+i), act(fmt.Sprintf("Exercise %d", i), s, 10*day, f)))
		case 1:
			l.add("a", s.Add(-45*day), notice(act(fmt.Sprintf("Exercise %d", i), s, 10*day, f)))
		default:
			l.add("a", s.Add(-45*day), calendar(2027, plan...))
		}
	}
	logs["calendars"] = l.entries

	l = newLog(tb)
	for i := 0; len(l.entries) < n; i++ {
		p := []string{"a", "b"}[i%2]
		l.add(p, s.Add(-45*day), notice(act(fmt.Sprintf("Exercise %d", i), s.Add(time.Duration(i)*time.Minute), 10*day, f, places("Hostland", "Eastfield"))))
	}
	logs["hosts"] = l.entries
	return logs
}

func BenchmarkEvaluateAdversarial(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		logs := adversarialLogs(b, n)
		for _, name := range []string{"amendments", "calendars", "hosts"} {
			b.Run(fmt.Sprintf("%s/entries=%d", name, n), func(b *testing.B) {
				entries := logs[name]
				e := newEngine(b, agreement.Rules{})
				now := utc(2027, 4, 1, 0, 0, 0)
				b.ReportAllocs()
				var findings int
				for b.Loop() {
					findings = len(e.Evaluate(entries, now))
				}
				b.ReportMetric(float64(len(entries)), "entries")
				b.ReportMetric(float64(findings), "findings")
			})
		}
	}
}
