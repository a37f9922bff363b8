package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
)

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown rule set", Config{Rules: agreement.Rules{Set: "vd1999"}, Parties: parties}, `unknown rule set "vd1999"`},
		{"no parties", Config{}, "no parties"},
		{"empty party", Config{Parties: []string{"a", ""}}, "empty party id"},
		{"duplicate party", Config{Parties: []string{"b", "a", "b"}}, `duplicate party "b"`},
		{"territory of unknown party", Config{Parties: parties, Territory: map[string][]string{"zz": {"X"}}}, `territory of unknown party "zz"`},
		{"empty place name", Config{Parties: parties, Territory: map[string][]string{"a": {" "}}}, "empty place name"},
		{"negative lead time", Config{Rules: agreement.Rules{VD2011: &agreement.VD2011{LeadTimeDays: -1}}, Parties: parties}, "LeadTimeDays -1 is not positive"},
		{"negative threshold", Config{Rules: agreement.Rules{VD2011: &agreement.VD2011{NotifyTroops: -9000}}, Parties: parties}, "NotifyTroops -9000 is not positive"},
		{"month 13", Config{Rules: agreement.Rules{VD2011: &agreement.VD2011{CalendarMonth: 13}}, Parties: parties}, "CalendarMonth 13 is not a month"},
		{"30 February", Config{Rules: agreement.Rules{VD2011: &agreement.VD2011{CalendarMonth: 2, CalendarDay: 30}}, Parties: parties}, "CalendarDay 30 does not exist in month 2"},
		{"margin above 100", Config{Rules: agreement.Rules{VD2011: &agreement.VD2011{NearMarginPercent: 101}}, Parties: parties}, "NearMarginPercent 101 is above 100"},
		{"negative skew", Config{Rules: agreement.Rules{ClockSkewSeconds: -1}, Parties: parties}, "invalid clock skew"},
		{"negative receipt window", Config{Rules: agreement.Rules{ReceiptWindowSeconds: -1}, Parties: parties}, "invalid receipt window"},
		{"negative missile lead", Config{Rules: agreement.Rules{Set: agreement.SetMissile1988, Missile1988: &agreement.Missile1988{LeadTimeHours: -1}}, Parties: parties}, "LeadTimeHours -1 is negative"},
		{"negative missile window", Config{Rules: agreement.Rules{Set: agreement.SetMissile1988, Missile1988: &agreement.Missile1988{MaxWindowHours: -1}}, Parties: parties}, "MaxWindowHours -1 is not positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, set := range []string{"", agreement.SetVD2011, agreement.SetMissile1988} {
		if _, err := New(Config{Rules: agreement.Rules{Set: set}, Parties: []string{"b", "a"}}); err != nil {
			t.Errorf("set %q: got error %v, want none", set, err)
		}
	}
}

func TestEmptyLog(t *testing.T) {
	e := newEngine(t, agreement.Rules{})
	if got := e.Evaluate(nil, start); len(got) != 0 {
		t.Errorf("got %d findings for an empty log, want 0", len(got))
	}
	// Entries without a statement or body are ignored.
	if got := e.Evaluate([]Entry{{Sender: "a", Seq: 1}}, start); len(got) != 0 {
		t.Errorf("got %d findings for an entry without a statement, want 0", len(got))
	}
}

func TestEquivocationPicksSmallerDigest(t *testing.T) {
	l := newLog(t)
	first := l.add("a", start.Add(-50*day), notice(act("Shield", start, 5*day, troops(9000))))
	other := first
	other.Digest = [32]byte{} // smaller than any sha256 here
	other.Statement = l.add("a", start.Add(-10*day), notice(act("Shield", start, 5*day, troops(9000)))).Statement
	l.entries = l.entries[:1]
	e := newEngine(t, agreement.Rules{})
	got := only(e.Evaluate([]Entry{first, other}, start), RuleLead, "")
	if len(got) != 1 || got[0].Entries[0].Digest[0] != 0 {
		t.Errorf("got %s, want one late notification with the zero digest", dump(got))
	}
}

func TestFormat(t *testing.T) {
	durs := []struct {
		d    time.Duration
		days bool
		want string
	}{
		{0, true, "0s"},
		{42 * day, true, "42d"},
		{41*day + 23*time.Hour, true, "41d23h"},
		{34*day + 14*time.Hour, true, "34d14h"},
		{48*time.Hour + time.Minute, false, "48h1m"},
		{48*time.Hour + time.Second, false, "48h0m1s"},
		{2*day + time.Second, true, "2d0h0m1s"},
		{time.Second + 5*time.Millisecond, false, "1.005s"},
		{-time.Hour, false, "-1h"},
	}
	for _, tc := range durs {
		if got := fmtDur(tc.d, tc.days); got != tc.want {
			t.Errorf("fmtDur(%v, %v): got %q, want %q", tc.d, tc.days, got, tc.want)
		}
	}
	counts := []struct {
		n    uint64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {12700, "12,700"}, {1234567, "1,234,567"}}
	for _, tc := range counts {
		if got := fmtCount(tc.n); got != tc.want {
			t.Errorf("fmtCount(%d): got %q, want %q", tc.n, got, tc.want)
		}
	}
	times := []struct {
		t    time.Time
		want string
	}{
		{start, "2027-03-01T00:00Z"},
		{utc(2026, 11, 15, 23, 59, 59), "2026-11-15T23:59:59Z"},
		{start.Add(1500 * time.Millisecond), "2027-03-01T00:00:01.5Z"},
	}
	for _, tc := range times {
		if got := fmtTime(tc.t); got != tc.want {
			t.Errorf("fmtTime(%v): got %q, want %q", tc.t, got, tc.want)
		}
	}
}
