package rules

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// randomLog returns n entries of parties a, b and c of every kind, with
// times, numbers and references drawn around the thresholds and deadlines,
// and a time to judge them at.
func randomLog(tb testing.TB, seed uint64, n int) ([]Entry, time.Time) {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	l := newLog(tb)
	base := utc(2026, 6, 1, 0, 0, 0)
	at := func() time.Time { return base.Add(time.Duration(r.Int64N(int64(500 * day)))) }
	count := func(limits ...uint32) uint32 {
		c := limits[r.IntN(len(limits))]
		return uint32(int64(c) + r.Int64N(int64(c/10)+1) - int64(c/20))
	}
	forces := func() *parleyv1.Forces {
		return &parleyv1.Forces{
			Troops:         count(3000, 9000, 13000, 40000),
			BattleTanks:    count(100, 250, 300, 900),
			AirborneTroops: count(1000, 3000),
		}
	}
	names := []string{"Eastfield", "Hostland", "Westfield"}
	activity := func(t time.Time) *parleyv1.ActivityNotification {
		s := t.Add(time.Duration(r.Int64N(int64(60 * day))))
		a := act([]string{"Shield", "Bastion", "Arrow", "Zapad"}[r.IntN(4)], s, time.Duration(1+r.IntN(6))*day, forces(), places(names[r.IntN(len(names))]))
		a.Alert = r.IntN(6) == 0
		if r.IntN(4) == 0 {
			a.HostState = parties[r.IntN(len(parties))]
		}
		return a
	}
	// An early first entry, so that the deadlines of the constraining
	// provisions fall inside the log.
	l.give("c", base.Add(-2*365*day), calendar(uint32(base.Year()-1)))
	for len(l.entries) < n {
		p := parties[r.IntN(len(parties))]
		t := at()
		own := l.next[p]
		ref := func() uint64 { return uint64(r.IntN(int(own)+2)) + 1 }
		var body *parleyv1.Body
		switch k := r.IntN(20); {
		case k < 6:
			body = notice(activity(t))
		case k < 8:
			body = amendment(ref(), activity(t))
		case k < 9:
			body = cancellation(ref())
		case k < 11:
			var entries []*parleyv1.CalendarEntry
			for range r.IntN(3) {
				entries = append(entries, planned("Shield", at(), forces()))
			}
			body = calendar(uint32(t.Year()+r.IntN(3)-1), entries...)
		case k < 13:
			body = invitation(ref())
		case k < 15:
			body = request(parties[r.IntN(len(parties))], parleyv1.ConsultationKind(1+r.IntN(3)))
		case k < 16:
			q := parties[r.IntN(len(parties))]
			body = response(q, uint64(r.IntN(int(l.next[q])+1))+1)
		case k < 17:
			body = launch(t.Add(time.Duration(r.Int64N(int64(3*day)))), time.Duration(r.Int64N(int64(5*day))))
		default:
			if len(l.entries) == 0 {
				continue
			}
			var es []Entry
			for range 1 + r.IntN(3) {
				e := l.entries[r.IntN(len(l.entries))]
				if r.IntN(10) == 0 {
					e.Digest[0] ^= 1
				}
				es = append(es, e)
			}
			received := es[0].Statement.GetHeader().GetIssuedAt().AsTime().Add(time.Duration(r.Int64N(int64(3*time.Hour))) - 10*time.Minute)
			l.receipt(p, received.Add(time.Duration(r.Int64N(int64(time.Hour)))), received, es...)
			continue
		}
		e := l.add(p, t, body)
		for _, q := range parties {
			if q != p && r.IntN(4) != 0 {
				d := time.Duration(r.Int64N(int64(2*time.Hour))) - 10*time.Minute
				l.receipt(q, t.Add(d), t.Add(d), e)
			}
		}
	}
	return l.entries, base.Add(time.Duration(r.Int64N(int64(600 * day))))
}

// shuffled returns a permutation of entries, with dups entries repeated.
func shuffled(entries []Entry, seed uint64, dups int) []Entry {
	r := rand.New(rand.NewPCG(seed, 1))
	out := slices.Clone(entries)
	for range dups {
		if len(entries) > 0 {
			out = append(out, entries[r.IntN(len(entries))])
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// sameFindings fails unless got and want are element-wise proto.Equal.
func sameFindings(t *testing.T, got, want []*parleyv1.Finding) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d findings, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("finding %d differs:\ngot  %s\nwant %s", i, dump(got[i:i+1]), dump(want[i:i+1]))
		}
	}
}

func TestOrderIndependence(t *testing.T) {
	for _, set := range []string{agreement.SetVD2011, agreement.SetMissile1988} {
		e := newEngine(t, agreement.Rules{Set: set})
		for logSeed := range uint64(8) {
			entries, now := randomLog(t, logSeed, 300)
			want := e.Evaluate(entries, now)
			if len(want) == 0 {
				t.Fatalf("log %d: no findings; the generator exercises nothing", logSeed)
			}
			rev := slices.Clone(entries)
			slices.Reverse(rev)
			sameFindings(t, e.Evaluate(rev, now), want)
			for perm := range uint64(10) {
				sameFindings(t, e.Evaluate(shuffled(entries, perm, int(perm)), now), want)
			}
		}
	}
}

// TestRandomLogCoversRules checks that the generated logs exercise every
// rule, so that order independence is tested for all of them.
func TestRandomLogCoversRules(t *testing.T) {
	seen := make(map[string]bool)
	for _, set := range []string{agreement.SetVD2011, agreement.SetMissile1988} {
		e := newEngine(t, agreement.Rules{Set: set})
		for logSeed := range uint64(8) {
			entries, now := randomLog(t, logSeed, 300)
			for _, f := range e.Evaluate(entries, now) {
				seen[f.Rule] = true
			}
		}
	}
	for _, rule := range []string{RuleLead, RuleAlert, RuleAmend, RuleHost, RuleInvite, RuleAlert72, RuleCalendar, RuleInCalendar, RuleNil, RuleLarge, RuleThreeYears, RuleConsult, RuleNear, RuleReceipt, RuleMissileLead} {
		if !seen[rule] {
			t.Errorf("no %s finding in the random logs", rule)
		}
	}
}

func FuzzOrderIndependence(f *testing.F) {
	f.Add(uint64(0), uint64(0), uint8(0), false)
	f.Add(uint64(1), uint64(7), uint8(3), false)
	f.Add(uint64(2), uint64(42), uint8(10), true)
	e := newEngine(f, agreement.Rules{})
	m := newEngine(f, agreement.Rules{Set: agreement.SetMissile1988})
	f.Fuzz(func(t *testing.T, logSeed, permSeed uint64, dups uint8, missile bool) {
		eng := e
		if missile {
			eng = m
		}
		entries, now := randomLog(t, logSeed, 150)
		want := eng.Evaluate(entries, now)
		sameFindings(t, eng.Evaluate(shuffled(entries, permSeed, int(dups)), now), want)
		sameFindings(t, eng.Evaluate(compacted(shuffled(entries, permSeed, int(dups))), now), want)
	})
}

func TestSorted(t *testing.T) {
	e := newEngine(t, agreement.Rules{})
	entries, now := randomLog(t, 3, 300)
	fs := e.Evaluate(entries, now)
	if !slices.IsSortedFunc(fs, CompareFindings) {
		t.Errorf("findings not sorted")
	}
	for _, f := range fs {
		if !slices.IsSortedFunc(f.Entries, compareRefs) {
			t.Errorf("entries of %s not sorted", dump([]*parleyv1.Finding{f}))
		}
		if f.Rule == "" || f.Party == "" || f.Required == "" || f.Seen == "" || f.Summary == "" || f.At == nil || f.Severity == parleyv1.Severity_SEVERITY_UNSPECIFIED {
			t.Errorf("incomplete finding %s", dump([]*parleyv1.Finding{f}))
		}
	}
}
