package rules

import (
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// notified returns a build step: sender a gives a 5-day activity with forces f
// starting at start, given at the given lead time before it.
func notified(f *parleyv1.Forces, before time.Duration, opts ...func(*parleyv1.ActivityNotification)) func(*testLog) {
	return func(l *testLog) {
		l.give("a", start.Add(-before), notice(act("Shield", start, 5*day, f, opts...)))
	}
}

func TestLead(t *testing.T) {
	late := lead - time.Hour // 41d23h
	amph := kind(parleyv1.ActivityType_ACTIVITY_TYPE_AMPHIBIOUS_LANDING)
	after := start.Add(10 * day)
	runRule(t, RuleLead, []ruleCase{
		{name: "troops 8,999 late", build: notified(troops(8999), late), now: after},
		{name: "troops 9,000 late", build: notified(troops(9000), late), now: after, want: []want{{"a", violation}}},
		{name: "troops 9,001 late", build: notified(troops(9001), late), now: after, want: []want{{"a", violation}}},
		{name: "tanks 249 late", build: notified(&parleyv1.Forces{BattleTanks: 249}, late), now: after},
		{name: "tanks 250 late", build: notified(&parleyv1.Forces{BattleTanks: 250}, late), now: after, want: []want{{"a", violation}}},
		{name: "tanks 251 late", build: notified(&parleyv1.Forces{BattleTanks: 251}, late), now: after, want: []want{{"a", violation}}},
		{name: "ACVs 499 late", build: notified(&parleyv1.Forces{Acvs: 499}, late), now: after},
		{name: "ACVs 500 late", build: notified(&parleyv1.Forces{Acvs: 500}, late), now: after, want: []want{{"a", violation}}},
		{name: "ACVs 501 late", build: notified(&parleyv1.Forces{Acvs: 501}, late), now: after, want: []want{{"a", violation}}},
		{name: "artillery 249 late", build: notified(&parleyv1.Forces{Artillery: 249}, late), now: after},
		{name: "artillery 250 late", build: notified(&parleyv1.Forces{Artillery: 250}, late), now: after, want: []want{{"a", violation}}},
		{name: "artillery 251 late", build: notified(&parleyv1.Forces{Artillery: 251}, late), now: after, want: []want{{"a", violation}}},
		{name: "sorties 199 late", build: notified(&parleyv1.Forces{FixedWingSorties: 199}, late), now: after},
		{name: "sorties 200 late", build: notified(&parleyv1.Forces{FixedWingSorties: 200}, late), now: after, want: []want{{"a", violation}}},
		{name: "sorties 201 late", build: notified(&parleyv1.Forces{FixedWingSorties: 201}, late), now: after, want: []want{{"a", violation}}},
		{name: "amphibious landing 2,999 late", build: notified(troops(2999), late, amph), now: after},
		{name: "amphibious landing 3,000 late", build: notified(troops(3000), late, amph), now: after, want: []want{{"a", violation}}},
		{name: "amphibious landing 3,001 late", build: notified(troops(3001), late, amph), now: after, want: []want{{"a", violation}}},
		{name: "airborne troops 3,000 in exercise late", build: notified(&parleyv1.Forces{Troops: 5000, AirborneTroops: 3000}, late), now: after, want: []want{{"a", violation}}},
		{name: "airborne 1,500 + amphibious 1,499 late", build: notified(&parleyv1.Forces{AirborneTroops: 1500, AmphibiousTroops: 1499}, late), now: after},
		{name: "41d23h59m59s", build: notified(troops(9000), lead-time.Second), now: after, want: []want{{"a", violation}}},
		{name: "42d exactly", build: notified(troops(9000), lead), now: after},
		{name: "42d1s", build: notified(troops(9000), lead+time.Second), now: after},
		{name: "given after start", build: notified(troops(9000), -time.Hour), now: after, want: []want{{"a", violation}}},
		{name: "alert activity is exempt", build: notified(troops(20000), -time.Minute, alert), now: after},
		{
			name: "issued_at within skew of receipt is trusted",
			build: func(l *testLog) {
				e := l.add("a", start.Add(-lead), notice(act("Shield", start, 5*day, troops(9000))))
				l.receipt("b", start.Add(-lead+5*time.Minute), start.Add(-lead+5*time.Minute), e)
			},
			now: after,
		},
		{
			name: "issued_at beyond skew of receipt is not trusted",
			build: func(l *testLog) {
				e := l.add("a", start.Add(-lead), notice(act("Shield", start, 5*day, troops(9000))))
				l.receipt("b", start.Add(-lead+5*time.Minute+time.Second), start.Add(-lead+5*time.Minute+time.Second), e)
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "backdated issued_at does not help",
			build: func(l *testLog) {
				e := l.add("a", start.Add(-50*day), notice(act("Shield", start, 5*day, troops(9000))))
				l.receipt("c", start.Add(-30*day), start.Add(-30*day), e)
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "earliest counterpart receipt counts, even before issued_at",
			build: func(l *testLog) {
				e := l.add("a", start.Add(-40*day), notice(act("Shield", start, 5*day, troops(9000))))
				l.receipt("b", start.Add(-40*day), start.Add(-40*day), e)
				l.receipt("c", start.Add(-40*day), start.Add(-43*day), e)
			},
			now: after,
		},
		{
			name: "sender's own receipt does not count",
			build: func(l *testLog) {
				e := l.add("a", start.Add(-50*day), notice(act("Shield", start, 5*day, troops(9000))))
				l.receipt("a", start.Add(-50*day), start.Add(-50*day), e)
				l.receipt("b", start.Add(-30*day), start.Add(-30*day), e)
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "receipt with another digest does not count",
			build: func(l *testLog) {
				e := l.add("a", start.Add(-50*day), notice(act("Shield", start, 5*day, troops(9000))))
				wrong := e
				wrong.Digest[0] ^= 1
				l.receipt("b", start.Add(-50*day), start.Add(-50*day), wrong)
				l.receipt("c", start.Add(-30*day), start.Add(-30*day), e)
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "amendment raising above threshold counts from the amendment",
			build: func(l *testLog) {
				l.give("a", start.Add(-50*day), notice(act("Shield", start, 5*day, troops(8000))))
				l.give("a", start.Add(-30*day), amendment(1, act("Shield", start, 5*day, troops(9500))))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "amendment raising an already notifiable activity keeps the original time",
			build: func(l *testLog) {
				l.give("a", start.Add(-50*day), notice(act("Shield", start, 5*day, troops(9500))))
				l.give("a", start.Add(-30*day), amendment(1, act("Shield", start, 5*day, troops(14000))))
			},
			now: after,
		},
		{
			name: "amendment lowering below threshold ends the obligation",
			build: func(l *testLog) {
				l.give("a", start.Add(-30*day), notice(act("Shield", start, 5*day, troops(9500))))
				l.give("a", start.Add(-29*day), amendment(1, act("Shield", start, 5*day, troops(8000))))
			},
			now: after,
		},
		{
			name: "below, above, below, above counts from the last rise",
			build: func(l *testLog) {
				l.give("a", start.Add(-60*day), notice(act("Shield", start, 5*day, troops(9500))))
				l.give("a", start.Add(-50*day), amendment(1, act("Shield", start, 5*day, troops(8000))))
				l.give("a", start.Add(-30*day), amendment(1, act("Shield", start, 5*day, troops(9500))))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "amendment moving the start earlier shortens the lead",
			build: func(l *testLog) {
				l.give("a", start.Add(-43*day), notice(act("Shield", start, 5*day, troops(9000))))
				l.give("a", start.Add(-42*day), amendment(1, act("Shield", start.Add(-2*day), 5*day, troops(9000))))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "withdrawn before the start",
			build: func(l *testLog) {
				l.give("a", start.Add(-30*day), notice(act("Shield", start, 5*day, troops(9000))))
				l.give("a", start.Add(-29*day), cancellation(1))
			},
			now: after,
		},
		{
			name: "calendared, never notified, deadline not passed",
			build: func(l *testLog) {
				l.give("a", start.Add(-200*day), calendar(2027, planned("Shield", start, troops(9000))))
			},
			now: start.Add(-lead),
		},
		{
			name: "calendared, never notified, deadline passed",
			build: func(l *testLog) {
				l.give("a", start.Add(-200*day), calendar(2027, planned("Shield", start, troops(9000))))
			},
			now:  start.Add(-lead + time.Second),
			want: []want{{"a", violation}},
		},
		{
			name: "calendared below threshold, never notified",
			build: func(l *testLog) {
				l.give("a", start.Add(-200*day), calendar(2027, planned("Shield", start, troops(8999))))
			},
			now: after,
		},
		{
			name: "calendared and notified under the same designation",
			build: func(l *testLog) {
				l.give("a", start.Add(-200*day), calendar(2027, planned("Shield", start, troops(9000))))
				l.give("a", start.Add(-lead), notice(act(" shield", start, 5*day, troops(9000))))
			},
			now: after,
		},
		{
			name: "dropped from a later calendar",
			build: func(l *testLog) {
				l.give("a", start.Add(-200*day), calendar(2027, planned("Shield", start, troops(9000))))
				l.give("a", start.Add(-100*day), calendar(2027, planned("Other", start.Add(100*day), troops(100))))
			},
			now: after,
		},
		{
			name: "seen only in an amendment",
			build: func(l *testLog) {
				l.give("a", start.Add(-50*day), amendment(7, act("Shield", start, 5*day, troops(9000))))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name:  "missile1988 does not judge VD rules",
			rules: agreement.Rules{Set: agreement.SetMissile1988},
			build: notified(troops(9000), late),
			now:   after,
		},
		{
			name:  "lead time parameter",
			rules: agreement.Rules{VD2011: &agreement.VD2011{LeadTimeDays: 30}},
			build: notified(troops(9000), 30*day),
			now:   after,
		},
		{
			name:  "troop threshold parameter",
			rules: agreement.Rules{VD2011: &agreement.VD2011{NotifyTroops: 9500}},
			build: notified(troops(9499), late),
			now:   after,
		},
	})
}

func TestLeadText(t *testing.T) {
	l := newLog(t)
	l.give("a", time.Date(2027, 1, 25, 10, 0, 0, 0, time.UTC), notice(act("Shield", start, 5*day, troops(9500))))
	got := only(newEngine(t, agreement.Rules{}).Evaluate(l.entries, start), RuleLead, "")
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1:\n%s", len(got), dump(got))
	}
	f := got[0]
	if want := "notice >= 42 days before start 2027-03-01T00:00Z (by 2027-01-18T00:00Z)"; f.Required != want {
		t.Errorf("got required %q, want %q", f.Required, want)
	}
	if want := "given 2027-01-25T10:00Z, 34d14h before start"; f.Seen != want {
		t.Errorf("got seen %q, want %q", f.Seen, want)
	}
	if want := time.Date(2027, 1, 25, 10, 0, 0, 0, time.UTC); !f.At.AsTime().Equal(want) {
		t.Errorf("got at %v, want %v", f.At.AsTime(), want)
	}
	if len(f.Entries) != 1 || f.Entries[0].Sender != "a" || f.Entries[0].Seq != 1 || len(f.Entries[0].Digest) != 32 {
		t.Errorf("got entries %v, want a/1 with its digest", f.Entries)
	}
}

func TestAlert(t *testing.T) {
	skew := 5 * time.Minute
	after := start.Add(10 * day)
	runRule(t, RuleAlert, []ruleCase{
		{name: "before the start", build: notified(troops(9000), time.Hour, alert), now: after},
		{name: "at start + skew", build: notified(troops(9000), -skew, alert), now: after},
		{name: "at start + skew + 1s", build: notified(troops(9000), -skew-time.Second, alert), now: after, want: []want{{"a", violation}}},
		{name: "a day late", build: notified(troops(9000), -day, alert), now: after, want: []want{{"a", violation}}},
		{name: "below threshold", build: notified(troops(8999), -day, alert), now: after},
		{name: "not alert", build: notified(troops(9000), -day), now: after},
		{
			name:  "skew parameter",
			rules: agreement.Rules{ClockSkewSeconds: 60},
			build: notified(troops(9000), -2*time.Minute, alert),
			now:   after,
			want:  []want{{"a", violation}},
		},
	})
}

func TestAmend(t *testing.T) {
	end := start.Add(5 * day)
	after := start.Add(10 * day)
	base := func(l *testLog) {
		l.give("a", start.Add(-50*day), notice(act("Shield", start, 5*day, troops(9000))))
	}
	runRule(t, RuleAmend, []ruleCase{
		{
			name: "amendment by the end",
			build: func(l *testLog) {
				base(l)
				l.give("a", end, amendment(1, act("Shield", start, 5*day, troops(9100))))
			},
			now: after,
		},
		{
			name: "amendment after the end",
			build: func(l *testLog) {
				base(l)
				l.give("a", end.Add(time.Second), amendment(1, act("Shield", start, 5*day, troops(9100))))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "amendment of a missing seq",
			build: func(l *testLog) {
				base(l)
				l.give("a", start.Add(-49*day), amendment(9, act("Shield", start, 5*day, troops(9100))))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "amendment of a calendar",
			build: func(l *testLog) {
				l.give("a", start.Add(-200*day), calendar(2027, planned("Shield", start, troops(9000))))
				l.give("a", start.Add(-49*day), amendment(1, act("Shield", start, 5*day, troops(9100))))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "amendment of a later seq",
			build: func(l *testLog) {
				l.give("a", start.Add(-49*day), amendment(2, act("Shield", start, 5*day, troops(9100))))
				l.give("a", start.Add(-48*day), notice(act("Shield", start, 5*day, troops(9000))))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "amendment of an amendment",
			build: func(l *testLog) {
				base(l)
				l.give("a", start.Add(-49*day), amendment(1, act("Shield", start, 5*day, troops(9100))))
				l.give("a", start.Add(-48*day), amendment(2, act("Shield", start, 5*day, troops(9200))))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "other sender's seq",
			build: func(l *testLog) {
				l.give("b", start.Add(-50*day), notice(act("Shield", start, 5*day, troops(9000))))
				l.give("a", start.Add(-49*day), cancellation(1))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "cancellation at the start",
			build: func(l *testLog) {
				base(l)
				l.give("a", start, cancellation(1))
			},
			now: after,
		},
		{
			name: "cancellation after the start",
			build: func(l *testLog) {
				base(l)
				l.give("a", start.Add(time.Second), cancellation(1))
			},
			now:  after,
			want: []want{{"a", low}},
		},
		{
			name: "cancellation at the end",
			build: func(l *testLog) {
				base(l)
				l.give("a", end, cancellation(1))
			},
			now:  after,
			want: []want{{"a", low}},
		},
		{
			name: "cancellation after the end",
			build: func(l *testLog) {
				base(l)
				l.give("a", end.Add(time.Second), cancellation(1))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "repeated cancellation",
			build: func(l *testLog) {
				base(l)
				l.give("a", start.Add(-10*day), cancellation(1))
				l.give("a", start.Add(-9*day), cancellation(1))
			},
			now:  after,
			want: []want{{"a", low}},
		},
		{
			name: "amendment after cancellation",
			build: func(l *testLog) {
				base(l)
				l.give("a", start.Add(-10*day), cancellation(1))
				l.give("a", start.Add(-9*day), amendment(1, act("Shield", start, 5*day, troops(9100))))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
	})
}

func TestAmendAfterEndNotApplied(t *testing.T) {
	l := newLog(t)
	l.give("a", start.Add(-50*day), notice(act("Shield", start, 5*day, troops(12000))))
	// Raising the activity to 20,000 after its end would create an
	// observation obligation if it were applied.
	l.give("a", start.Add(6*day), amendment(1, act("Shield", start, 5*day, troops(20000))))
	fs := newEngine(t, agreement.Rules{}).Evaluate(l.entries, start.Add(10*day))
	if got := only(fs, RuleInvite, ""); len(got) != 0 {
		t.Errorf("got %d invitation findings, want 0 (amendment after the end applied?):\n%s", len(got), dump(got))
	}
}

func TestHost(t *testing.T) {
	after := start.Add(10 * day)
	guest := func(f *parleyv1.Forces, opts ...func(*parleyv1.ActivityNotification)) func(*testLog) {
		return func(l *testLog) {
			l.give("a", start.Add(-50*day), notice(act("Shield", start, 5*day, f, opts...)))
		}
	}
	with := func(steps ...func(*testLog)) func(*testLog) {
		return func(l *testLog) {
			for _, s := range steps {
				s(l)
			}
		}
	}
	hostNotice := func(designation string, before time.Duration, opts ...func(*parleyv1.ActivityNotification)) func(*testLog) {
		return func(l *testLog) {
			l.give("b", start.Add(-before), notice(act(designation, start, 5*day, &parleyv1.Forces{}, opts...)))
		}
	}
	runRule(t, RuleHost, []ruleCase{
		{name: "host notified in time", build: with(guest(troops(9000), host("b")), hostNotice("Shield", lead)), now: after},
		{name: "host notified late", build: with(guest(troops(9000), host("b")), hostNotice("Shield", lead-time.Hour)), now: after, want: []want{{"b", violation}}},
		{name: "host silent, deadline not passed", build: guest(troops(9000), host("b")), now: start.Add(-lead)},
		{name: "host silent, deadline passed", build: guest(troops(9000), host("b")), now: start.Add(-lead + time.Second), want: []want{{"b", violation}}},
		{name: "below threshold", build: guest(troops(8999), host("b")), now: after},
		{name: "host is the sender", build: guest(troops(9000), host("a")), now: after},
		{name: "host is not a party", build: guest(troops(9000), host("zz")), now: after},
		{name: "territory by place name", build: guest(troops(9000), places("hostland ")), now: after, want: []want{{"b", violation}}},
		{
			name:  "host matched by time and place",
			build: with(guest(troops(9000), places("Hostland")), hostNotice("Host part", lead, places("Hostland"))),
			now:   after,
		},
		{
			name:  "host notification elsewhere does not match",
			build: with(guest(troops(9000), places("Hostland")), hostNotice("Host part", lead, places("Elsewhere"))),
			now:   after,
			want:  []want{{"b", violation}},
		},
		{
			name:  "alert: host by the start + skew",
			build: with(guest(troops(9000), host("b"), alert), hostNotice("Shield", -5*time.Minute)),
			now:   after,
		},
		{
			name:  "alert: host after the start + skew",
			build: with(guest(troops(9000), host("b"), alert), hostNotice("Shield", -5*time.Minute-time.Second)),
			now:   after,
			want:  []want{{"b", violation}},
		},
		{
			name: "withdrawn activity",
			build: with(guest(troops(9000), host("b")), func(l *testLog) {
				l.give("a", start.Add(-45*day), cancellation(1))
			}),
			now: after,
		},
	})
}
