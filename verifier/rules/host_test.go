package rules

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
)

// TestHostChecksDirect compares the host notification found for each
// activity on another party's territory with a direct reading of the
// rule: of the host's activities not withdrawn that have the same
// designation, or overlap in time and share a place name, the one given
// first (the smaller seq among equal times).
func TestHostChecksDirect(t *testing.T) {
	e := newEngine(t, agreement.Rules{})
	var checks, found, byOverlap int
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 11))
		l := newLog(t)
		names := []string{"Hostland", "Eastfield", "Westfield"}
		for range 30 {
			p := []string{"a", "b"}[r.IntN(2)]
			s := start.Add(time.Duration(r.IntN(10)) * 12 * time.Hour)
			var where []string
			for _, n := range names {
				if r.IntN(3) == 0 {
					where = append(where, n)
				}
			}
			a := act(fmt.Sprintf("Exercise %d", r.IntN(40)), s, time.Duration(r.IntN(4))*12*time.Hour, troops(uint32(8000+r.IntN(3)*1000)), places(where...))
			if r.IntN(3) == 0 {
				a.HostState = "b"
			}
			given := start.Add(-time.Duration(40+r.IntN(4)) * day)
			switch k := r.IntN(10); {
			case k < 7:
				l.give(p, given, notice(a))
			case k < 9 && l.next[p] > 0:
				l.give(p, given, amendment(1+uint64(r.IntN(int(l.next[p]))), a))
			case l.next[p] > 0:
				l.give(p, given, cancellation(1+uint64(r.IntN(int(l.next[p])))))
			}
		}
		lg := e.index(l.entries)
		s, _ := e.newVDState(lg, start, &collector{})
		for _, c := range s.hostChecks() {
			a := c.a
			var want *activity
			for b := range each(s.bySender[c.host]) {
				same := slices.Contains(slices.Collect(b.designations()), a.latest().norm()) ||
					a.start().Before(b.end()) && b.start().Before(a.end()) && slices.ContainsFunc(slices.Collect(a.places().all()), func(p string) bool { return slices.Contains(slices.Collect(b.places().all()), p) })
				if !b.withdrawn && same && (want == nil || b.notice().given().Before(want.notice().given())) {
					want = b
				}
			}
			if c.first != want {
				t.Fatalf("seed %d: activity %s, host %s: got %v, want %v", seed, a.describe(), c.host, c.first, want)
			}
			checks++
			if want != nil {
				found++
				if !slices.Contains(slices.Collect(want.designations()), a.latest().norm()) {
					byOverlap++
				}
			}
		}
	}
	if checks < 500 || found < 200 || byOverlap < 100 {
		t.Errorf("got %d checks, %d found, %d by overlap: the generator exercises too little", checks, found, byOverlap)
	}
}
