package rules

import (
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

func TestConsult(t *testing.T) {
	t0 := utc(2027, 5, 1, 12, 0, 0)
	explain := parleyv1.ConsultationKind_CONSULTATION_KIND_EXPLANATION
	// asked: a asks b (seq 1, given and received by b at t0); b answers
	// after reply, unless reply < 0.
	asked := func(k parleyv1.ConsultationKind, reply time.Duration) func(*testLog) {
		return func(l *testLog) {
			l.give("a", t0, request("b", k))
			if reply >= 0 {
				l.give("b", t0.Add(reply), response("a", 1))
			}
		}
	}
	runRule(t, RuleConsult, []ruleCase{
		{name: "answered after 47h59m", build: asked(explain, 47*time.Hour+59*time.Minute), now: t0.Add(10 * day)},
		{name: "answered after 48h", build: asked(explain, 48*time.Hour), now: t0.Add(10 * day)},
		{name: "answered after 48h01m", build: asked(explain, 48*time.Hour+time.Minute), now: t0.Add(10 * day), want: []want{{"b", violation}}},
		{name: "unanswered at 48h", build: asked(explain, -1), now: t0.Add(48 * time.Hour)},
		{name: "unanswered at 48h1s", build: asked(explain, -1), now: t0.Add(48*time.Hour + time.Second), want: []want{{"b", violation}}},
		{name: "meeting request answered after 48h01m", build: asked(parleyv1.ConsultationKind_CONSULTATION_KIND_MEETING, 48*time.Hour+time.Minute), now: t0.Add(10 * day), want: []want{{"b", violation}}},
		{name: "hazardous incident has no deadline", build: asked(parleyv1.ConsultationKind_CONSULTATION_KIND_HAZARDOUS_INCIDENT, -1), now: t0.Add(10 * day)},
		{
			name: "counted from the addressee's receipt",
			build: func(l *testLog) {
				e := l.add("a", t0, request("b", explain))
				l.receipt("c", t0, t0, e)
				l.receipt("b", t0.Add(10*time.Hour), t0.Add(10*time.Hour), e)
				l.give("b", t0.Add(57*time.Hour), response("a", 1))
			},
			now: t0.Add(10 * day),
		},
		{
			name: "counted from t_given without the addressee's receipt",
			build: func(l *testLog) {
				e := l.add("a", t0, request("b", explain))
				l.receipt("c", t0, t0, e)
				l.give("b", t0.Add(49*time.Hour), response("a", 1))
			},
			now:  t0.Add(10 * day),
			want: []want{{"b", violation}},
		},
		{
			name: "an answer by another party does not count",
			build: func(l *testLog) {
				l.give("a", t0, request("b", explain))
				l.give("c", t0.Add(time.Hour), response("a", 1))
			},
			now:  t0.Add(10 * day),
			want: []want{{"b", violation}},
		},
		{
			name: "an answer to another request does not count",
			build: func(l *testLog) {
				l.give("a", t0, request("b", explain))
				l.give("b", t0.Add(time.Hour), response("a", 2))
			},
			now:  t0.Add(10 * day),
			want: []want{{"b", violation}},
		},
		{
			name:  "addressee not a party",
			build: func(l *testLog) { l.give("a", t0, request("zz", explain)) },
			now:   t0.Add(10 * day),
		},
		{
			name:  "reply hours parameter",
			rules: agreement.Rules{VD2011: &agreement.VD2011{ConsultReplyHours: 24}},
			build: asked(explain, 24*time.Hour+time.Second),
			now:   t0.Add(10 * day),
			want:  []want{{"b", violation}},
		},
	})
}

func TestReceipt(t *testing.T) {
	t0 := utc(2027, 5, 1, 12, 0, 0)
	window := time.Hour
	body := request("b", parleyv1.ConsultationKind_CONSULTATION_KIND_HAZARDOUS_INCIDENT)
	// sent: a sends at t0; c receipts at t0; b receipts after bAfter
	// unless bAfter < 0.
	sent := func(bAfter time.Duration) func(*testLog) {
		return func(l *testLog) {
			e := l.add("a", t0, body)
			l.receipt("c", t0, t0, e)
			if bAfter >= 0 {
				l.receipt("b", t0.Add(bAfter), t0.Add(bAfter), e)
			}
		}
	}
	runRule(t, RuleReceipt, []ruleCase{
		{name: "receipt at window - 1s", build: sent(window - time.Second), now: t0.Add(day)},
		{name: "receipt at window", build: sent(window), now: t0.Add(day)},
		{name: "receipt at window + 1s", build: sent(window + time.Second), now: t0.Add(day), want: []want{{"b", violation}}},
		{name: "missing at window", build: sent(-1), now: t0.Add(window)},
		{name: "missing at window + 1s", build: sent(-1), now: t0.Add(window + time.Second), want: []want{{"b", violation}}},
		{
			name:  "no receipt at all",
			build: func(l *testLog) { l.add("a", t0, body) },
			now:   t0.Add(window + time.Second),
			want:  []want{{"b", violation}, {"c", violation}},
		},
		{
			name: "receipt with another digest",
			build: func(l *testLog) {
				e := l.add("a", t0, body)
				l.receipt("c", t0, t0, e)
				e.Digest[31] ^= 1
				l.receipt("b", t0, t0, e)
			},
			now:  t0.Add(day),
			want: []want{{"b", violation}},
		},
		{
			name: "receipt published late with an early received_at",
			build: func(l *testLog) {
				e := l.add("a", t0, body)
				l.receipt("c", t0, t0, e)
				l.receipt("b", t0.Add(2*window), t0, e)
			},
			now:  t0.Add(day),
			want: []want{{"b", violation}},
		},
		{
			name: "the earliest of several receipts counts",
			build: func(l *testLog) {
				e := l.add("a", t0, body)
				l.receipt("c", t0, t0, e)
				l.receipt("b", t0.Add(2*window), t0.Add(2*window), e)
				l.receipt("b", t0.Add(time.Minute), t0.Add(time.Minute), e)
			},
			now: t0.Add(day),
		},
		{
			name:  "receipts are not receipted",
			build: func(l *testLog) { l.receipt("a", t0, t0, Entry{Sender: "b", Seq: 9}) },
			now:   t0.Add(day),
		},
		{
			name:  "every rule set",
			rules: agreement.Rules{Set: agreement.SetMissile1988},
			build: sent(window + time.Second),
			now:   t0.Add(day),
			want:  []want{{"b", violation}},
		},
		{
			name:  "window parameter",
			rules: agreement.Rules{ReceiptWindowSeconds: 7200},
			build: sent(window + time.Second),
			now:   t0.Add(day),
		},
	})
}

func TestMissileLead(t *testing.T) {
	from := utc(2027, 5, 1, 12, 0, 0)
	missile := agreement.Rules{Set: agreement.SetMissile1988}
	at := func(before, window time.Duration) func(*testLog) {
		return func(l *testLog) { l.give("a", from.Add(-before), launch(from, window)) }
	}
	now := from.Add(10 * day)
	runRule(t, RuleMissileLead, []ruleCase{
		{name: "23h59m ahead", rules: missile, build: at(23*time.Hour+59*time.Minute, day), now: now, want: []want{{"a", violation}}},
		{name: "24h ahead", rules: missile, build: at(24*time.Hour, day), now: now},
		{name: "25h ahead", rules: missile, build: at(25*time.Hour, day), now: now},
		{name: "window 96h", rules: missile, build: at(2*day, 96*time.Hour), now: now},
		{name: "window 96h1s", rules: missile, build: at(2*day, 96*time.Hour+time.Second), now: now, want: []want{{"a", violation}}},
		{name: "late and too long", rules: missile, build: at(time.Hour, 5*day), now: now, want: []want{{"a", violation}, {"a", violation}}},
		{name: "not judged under vd2011", build: at(time.Hour, 5*day), now: now},
		{
			name:  "parameters",
			rules: agreement.Rules{Set: agreement.SetMissile1988, Missile1988: &agreement.Missile1988{LeadTimeHours: 72, MaxWindowHours: 120}},
			build: at(71*time.Hour, 120*time.Hour+time.Second),
			now:   now,
			want:  []want{{"a", violation}, {"a", violation}},
		},
	})
}
