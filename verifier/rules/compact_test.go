package rules

import (
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
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
