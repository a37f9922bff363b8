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
func benchLog(b *testing.B, n int) ([]Entry, time.Time) {
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
