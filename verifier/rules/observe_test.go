package rules

import (
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

func TestInvite(t *testing.T) {
	after := start.Add(10 * day)
	// invited: a notifies in time (seq 1) and invites (seq 2) before start.
	invited := func(f *parleyv1.Forces, before time.Duration, opts ...func(*parleyv1.ActivityNotification)) func(*testLog) {
		return func(l *testLog) {
			l.give("a", start.Add(-50*day), notice(act("Shield", start, 5*day, f, opts...)))
			l.give("a", start.Add(-before), invitation(1))
		}
	}
	silent := func(f *parleyv1.Forces, opts ...func(*parleyv1.ActivityNotification)) func(*testLog) {
		return notified(f, 50*day, opts...)
	}
	late := lead - time.Hour
	landing := kind(parleyv1.ActivityType_ACTIVITY_TYPE_PARACHUTE_ASSAULT)
	runRule(t, RuleInvite, []ruleCase{
		{name: "troops 12,999 without invitation", build: silent(troops(12999)), now: after},
		{name: "troops 13,000 without invitation", build: silent(troops(13000)), now: after, want: []want{{"a", violation}}},
		{name: "troops 13,001 without invitation", build: silent(troops(13001)), now: after, want: []want{{"a", violation}}},
		{name: "tanks 299", build: silent(&parleyv1.Forces{BattleTanks: 299}), now: after},
		{name: "tanks 300", build: silent(&parleyv1.Forces{BattleTanks: 300}), now: after, want: []want{{"a", violation}}},
		{name: "tanks 301", build: silent(&parleyv1.Forces{BattleTanks: 301}), now: after, want: []want{{"a", violation}}},
		{name: "ACVs 499", build: silent(&parleyv1.Forces{Acvs: 499}), now: after},
		{name: "ACVs 500", build: silent(&parleyv1.Forces{Acvs: 500}), now: after, want: []want{{"a", violation}}},
		{name: "artillery 249", build: silent(&parleyv1.Forces{Artillery: 249}), now: after},
		{name: "artillery 250", build: silent(&parleyv1.Forces{Artillery: 250}), now: after, want: []want{{"a", violation}}},
		{name: "sorties 5,000 need no invitation", build: silent(&parleyv1.Forces{FixedWingSorties: 5000}), now: after},
		{name: "parachute assault 3,499", build: silent(troops(3499), landing), now: after},
		{name: "parachute assault 3,500", build: silent(troops(3500), landing), now: after, want: []want{{"a", violation}}},
		{name: "parachute assault 3,501", build: silent(troops(3501), landing), now: after, want: []want{{"a", violation}}},
		{name: "invitation 42d before start", build: invited(troops(13000), lead), now: after},
		{name: "invitation 41d23h before start", build: invited(troops(13000), late), now: after, want: []want{{"a", violation}}},
		{name: "missing, deadline not passed", build: silent(troops(13000)), now: start.Add(-lead)},
		{name: "missing, deadline passed by 1s", build: silent(troops(13000)), now: start.Add(-lead + time.Second), want: []want{{"a", violation}}},
		{name: "alert activity is judged by VD.VI.alert72", build: silent(troops(13000), alert), now: after},
		{
			name: "invitation referring to the amendment",
			build: func(l *testLog) {
				l.give("a", start.Add(-60*day), notice(act("Shield", start, 5*day, troops(9000))))
				l.give("a", start.Add(-55*day), amendment(1, act("Shield", start, 5*day, troops(13000))))
				l.give("a", start.Add(-50*day), invitation(2))
			},
			now: after,
		},
		{
			name: "amendment raising above observation threshold late",
			build: func(l *testLog) {
				l.give("a", start.Add(-60*day), notice(act("Shield", start, 5*day, troops(9000))))
				l.give("a", start.Add(-30*day), amendment(1, act("Shield", start, 5*day, troops(13000))))
				l.give("a", start.Add(-30*day), invitation(2))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name: "invitation by another sender does not count",
			build: func(l *testLog) {
				l.give("a", start.Add(-50*day), notice(act("Shield", start, 5*day, troops(13000))))
				l.give("b", start.Add(-50*day), invitation(1))
			},
			now:  after,
			want: []want{{"a", violation}},
		},
		{
			name:  "observation threshold parameter",
			rules: agreement.Rules{VD2011: &agreement.VD2011{ObserveTroops: 14000}},
			build: silent(troops(13999)),
			now:   after,
		},
	})
}

func TestAlert72(t *testing.T) {
	long := 72*time.Hour + time.Second
	alertFor := func(f *parleyv1.Forces, dur time.Duration, inviteAt time.Duration) func(*testLog) {
		return func(l *testLog) {
			l.give("a", start, notice(act("Snap", start, dur, f, alert)))
			if inviteAt >= 0 {
				l.give("a", start.Add(inviteAt), invitation(1))
			}
		}
	}
	after := start.Add(10 * day)
	runRule(t, RuleAlert72, []ruleCase{
		{name: "lasting 72h", build: alertFor(troops(13000), 72*time.Hour, -1), now: after},
		{name: "lasting 72h1s", build: alertFor(troops(13000), long, -1), now: after, want: []want{{"a", violation}}},
		{name: "troops 12,999", build: alertFor(troops(12999), 10*day, -1), now: after},
		{name: "tanks 300", build: alertFor(&parleyv1.Forces{BattleTanks: 300}, 10*day, -1), now: after, want: []want{{"a", violation}}},
		{name: "invitation at start + 72h", build: alertFor(troops(13000), 10*day, 72*time.Hour), now: after},
		{name: "invitation at start + 72h1s", build: alertFor(troops(13000), 10*day, 72*time.Hour+time.Second), now: after, want: []want{{"a", violation}}},
		{name: "missing at start + 72h", build: alertFor(troops(13000), 10*day, -1), now: start.Add(72 * time.Hour)},
		{name: "missing at start + 72h1s", build: alertFor(troops(13000), 10*day, -1), now: start.Add(72*time.Hour + time.Second), want: []want{{"a", violation}}},
		{name: "not alert", build: notified(troops(13000), 50*day), now: after},
		{
			name:  "hours parameter",
			rules: agreement.Rules{VD2011: &agreement.VD2011{AlertObserveHours: 96}},
			build: alertFor(troops(13000), 96*time.Hour, -1),
			now:   after,
		},
	})
}
