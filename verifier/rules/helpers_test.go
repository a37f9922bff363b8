package rules

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// start is the start of most test activities; 42 days before it is
// 2027-01-18T00:00Z.
var start = time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)

const (
	day  = 24 * time.Hour
	lead = 42 * day
)

var parties = []string{"a", "b", "c"}

// newEngine returns an engine for parties a, b and c, where "Hostland" is on
// b's territory.
func newEngine(tb testing.TB, r agreement.Rules) *Engine {
	tb.Helper()
	e, err := New(Config{Rules: r, Parties: parties, Territory: map[string][]string{"b": {"Hostland"}}})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return e
}

// testLog builds the entries of a log, numbering each feed from 1.
type testLog struct {
	tb      testing.TB
	next    map[string]uint64
	entries []Entry
}

func newLog(tb testing.TB) *testLog {
	return &testLog{tb: tb, next: make(map[string]uint64)}
}

// add appends an entry of sender issued at issued, without receipts.
func (l *testLog) add(sender string, issued time.Time, body *parleyv1.Body) Entry {
	l.next[sender]++
	seq := l.next[sender]
	e := Entry{
		Sender: sender,
		Seq:    seq,
		Digest: sha256.Sum256(fmt.Appendf(nil, "%s/%d", sender, seq)),
		Statement: &parleyv1.Statement{
			Header: &parleyv1.Header{AgreementId: "test", Sender: sender, Seq: seq, IssuedAt: timestamppb.New(issued)},
			Body:   body,
		},
	}
	l.entries = append(l.entries, e)
	return e
}

// give appends an entry issued at t and receipted by every counterpart at
// t, so that it counts as given at t and its receipts are in time.
func (l *testLog) give(sender string, t time.Time, body *parleyv1.Body) Entry {
	e := l.add(sender, t, body)
	for _, p := range parties {
		if p != sender {
			l.receipt(p, t, t, e)
		}
	}
	return e
}

// receipt appends a receipt by 'by', issued at issued, acknowledging each
// entry as received at received.
func (l *testLog) receipt(by string, issued, received time.Time, es ...Entry) Entry {
	var acks []*parleyv1.Acknowledgement
	for _, e := range es {
		acks = append(acks, &parleyv1.Acknowledgement{Sender: e.Sender, Seq: e.Seq, Digest: e.Digest[:], ReceivedAt: timestamppb.New(received)})
	}
	return l.add(by, issued, &parleyv1.Body{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{Acks: acks}}})
}

// act returns activity content from start s lasting dur.
func act(designation string, s time.Time, dur time.Duration, f *parleyv1.Forces, opts ...func(*parleyv1.ActivityNotification)) *parleyv1.ActivityNotification {
	a := &parleyv1.ActivityNotification{
		Designation: designation,
		Type:        parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
		Start:       timestamppb.New(s),
		End:         timestamppb.New(s.Add(dur)),
		Area:        &parleyv1.Area{PlaceNames: []string{"Eastfield"}},
		Forces:      f,
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

func alert(a *parleyv1.ActivityNotification) { a.Alert = true }

func places(names ...string) func(*parleyv1.ActivityNotification) {
	return func(a *parleyv1.ActivityNotification) { a.Area = &parleyv1.Area{PlaceNames: names} }
}

func host(h string) func(*parleyv1.ActivityNotification) {
	return func(a *parleyv1.ActivityNotification) { a.HostState = h }
}

func kind(t parleyv1.ActivityType) func(*parleyv1.ActivityNotification) {
	return func(a *parleyv1.ActivityNotification) { a.Type = t }
}

func troops(n uint32) *parleyv1.Forces { return &parleyv1.Forces{Troops: n} }

func notice(a *parleyv1.ActivityNotification) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: a}}
}

func amendment(target uint64, a *parleyv1.ActivityNotification) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_Amendment{Amendment: &parleyv1.Amendment{TargetSeq: target, Activity: a}}}
}

func cancellation(target uint64) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_Cancellation{Cancellation: &parleyv1.Cancellation{TargetSeq: target}}}
}

func invitation(seq uint64) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_Invitation{Invitation: &parleyv1.ObservationInvitation{NotificationSeq: seq}}}
}

// planned returns a calendar entry.
func planned(designation string, s time.Time, f *parleyv1.Forces) *parleyv1.CalendarEntry {
	return &parleyv1.CalendarEntry{
		Designation: designation,
		Type:        parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
		Start:       timestamppb.New(s),
		End:         timestamppb.New(s.Add(5 * day)),
		Forces:      f,
	}
}

func calendar(year uint32, entries ...*parleyv1.CalendarEntry) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_Calendar{Calendar: &parleyv1.AnnualCalendar{Year: year, Activities: entries, NilCalendar: len(entries) == 0}}}
}

func request(addressee string, k parleyv1.ConsultationKind) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_ConsultationRequest{ConsultationRequest: &parleyv1.ConsultationRequest{Addressee: addressee, Kind: k, Concern: "why"}}}
}

func response(requester string, seq uint64) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_ConsultationResponse{ConsultationResponse: &parleyv1.ConsultationResponse{Requester: requester, RequestSeq: seq, Explanation: "because"}}}
}

func launch(from time.Time, window time.Duration) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_Launch{Launch: &parleyv1.LaunchNotification{
		Designation:  "test launch",
		MissileClass: parleyv1.MissileClass_MISSILE_CLASS_ICBM,
		WindowStart:  timestamppb.New(from),
		WindowEnd:    timestamppb.New(from.Add(window)),
		LaunchArea:   &parleyv1.Area{PlaceNames: []string{"Site 1"}},
		ImpactArea:   &parleyv1.Area{PlaceNames: []string{"Range 2"}},
	}}}
}

// want is an expected finding: its party and severity.
type want struct {
	party    string
	severity parleyv1.Severity
}

var (
	violation = parleyv1.Severity_SEVERITY_VIOLATION
	low       = parleyv1.Severity_SEVERITY_LOW
	advisory  = parleyv1.Severity_SEVERITY_ADVISORY
)

// ruleCase is one case of a per-rule table test.
type ruleCase struct {
	name  string
	rules agreement.Rules
	build func(l *testLog)
	now   time.Time
	want  []want
	// party, if set, keeps only findings about that party.
	party string
}

// runRule runs table cases for one rule, comparing the findings of that
// rule (in their sorted order) with want.
func runRule(t *testing.T, rule string, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLog(t)
			tc.build(l)
			got := only(newEngine(t, tc.rules).Evaluate(l.entries, tc.now), rule, tc.party)
			checkCompactForm(t, newEngine(t, tc.rules), l.entries, tc.now)
			ok := len(got) == len(tc.want)
			for i := 0; ok && i < len(got); i++ {
				ok = got[i].Party == tc.want[i].party && got[i].Severity == tc.want[i].severity
			}
			if !ok {
				t.Errorf("got %d %s findings, want %v:\n%s", len(got), rule, tc.want, dump(got))
			}
		})
	}
}

// only returns the findings of rule (about party, if not empty).
func only(fs []*parleyv1.Finding, rule, party string) []*parleyv1.Finding {
	var out []*parleyv1.Finding
	for _, f := range fs {
		if f.Rule == rule && (party == "" || f.Party == party) {
			out = append(out, f)
		}
	}
	return out
}

func dump(fs []*parleyv1.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + prototext.MarshalOptions{}.Format(f) + "\n")
	}
	return b.String()
}
