package rules

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// compacted returns entries with every notification and receipt given as
// [Compact] gives it, instead of its statement.
func compacted(entries []Entry) []Entry {
	out := make([]Entry, len(entries))
	for i, en := range entries {
		out[i] = Compact(en)
	}
	return out
}

// checkCompactForm fails if the findings differ when the entries are
// compacted.
func checkCompactForm(tb testing.TB, e *Engine, entries []Entry, now time.Time) {
	tb.Helper()
	if got, want := dump(e.Evaluate(compacted(entries), now)), dump(e.Evaluate(entries, now)); got != want {
		tb.Errorf("findings over compacted entries:\n%s\nwant, as over their statements:\n%s", got, want)
	}
}

func TestCompactForm(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules agreement.Rules
		log   func(testing.TB, int) ([]Entry, time.Time)
	}{
		{name: "bench", log: benchLog},
		{name: "split", log: splitLog},
		{name: "random", log: func(tb testing.TB, n int) ([]Entry, time.Time) { return randomLog(tb, 11, n) }},
		{name: "random missile", rules: agreement.Rules{Set: agreement.SetMissile1988}, log: func(tb testing.TB, n int) ([]Entry, time.Time) { return randomLog(tb, 12, n) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, now := tc.log(t, 3000)
			checkCompactForm(t, newEngine(t, tc.rules), entries, now)
		})
	}
}

func TestCompact(t *testing.T) {
	l := newLog(t)
	n := l.add("a", start, notice(act("Exercise", start.Add(lead), day, nil)))
	r := l.receipt("b", start, start, n)
	c := l.add("a", start, cancellation(n.Seq))
	for _, tc := range []struct {
		name           string
		in             Entry
		notification   bool
		receipt        bool
		keepsStatement bool
	}{
		{name: "notification", in: n, notification: true},
		{name: "receipt", in: r, receipt: true},
		{name: "cancellation", in: c, keepsStatement: true},
		{name: "no statement", in: Entry{Sender: "a", Seq: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compact(tc.in)
			if got.Sender != tc.in.Sender || got.Seq != tc.in.Seq || got.Digest != tc.in.Digest {
				t.Errorf("Compact changed the entry's identity: %s/%d to %s/%d", tc.in.Sender, tc.in.Seq, got.Sender, got.Seq)
			}
			if (got.Notification != nil) != tc.notification || (got.Receipt != nil) != tc.receipt || (got.Statement != nil) != tc.keepsStatement {
				t.Errorf("Compact gave notification %v, receipt %v, statement %v; want %v, %v, %v",
					got.Notification != nil, got.Receipt != nil, got.Statement != nil, tc.notification, tc.receipt, tc.keepsStatement)
			}
		})
	}
}

// TestCompactHolds checks what a compacted notification holds against its
// statement: its times to the nanosecond (and their absence), and forces at
// the ends of their ranges, landing troops beyond 32 bits included.
func TestCompactHolds(t *testing.T) {
	at := start.Add(123456789 * time.Nanosecond)
	max32 := uint32(1<<32 - 1)
	big := &parleyv1.Forces{Troops: max32, BattleTanks: max32, Acvs: 1, Artillery: max32, FixedWingSorties: max32, AirborneTroops: max32, AmphibiousTroops: max32}
	l := newLog(t)
	l.add("a", at, notice(act("Landing", at.Add(lead), day, big, kind(parleyv1.ActivityType_ACTIVITY_TYPE_AMPHIBIOUS_LANDING))))
	l.add("a", time.Time{}, notice(&parleyv1.ActivityNotification{Designation: "No dates", Forces: troops(9500)}))
	for _, en := range l.entries {
		st := en.Statement
		n := Compact(en).Notification
		want := st.GetBody().GetNotification()
		if got := n.IssuedAt(); !got.Equal(st.GetHeader().GetIssuedAt().AsTime()) {
			t.Errorf("%s: IssuedAt %v, want %v", want.GetDesignation(), got, st.GetHeader().GetIssuedAt().AsTime())
		}
		for name, tc := range map[string]struct {
			got  time.Time
			want *timestamppb.Timestamp
		}{"Start": {n.Start(), want.GetStart()}, "End": {n.End(), want.GetEnd()}} {
			if tc.want == nil && !tc.got.IsZero() || tc.want != nil && !tc.got.Equal(tc.want.AsTime()) {
				t.Errorf("%s: %s %v, want %v", want.GetDesignation(), name, tc.got, tc.want)
			}
		}
		if got, want := n.c.forces(), forcesOf(want.GetForces(), want.GetType()); got != want {
			t.Errorf("%s: forces %v, want %v", n.Designation(), got, want)
		}
	}
	if f := Compact(l.entries[0]).Notification.c.forces(); f[fieldLanding] != 2*uint64(max32) {
		t.Errorf("landing troops %d, want %d", f[fieldLanding], 2*uint64(max32))
	}
}
