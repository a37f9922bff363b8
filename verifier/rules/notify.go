package rules

import (
	"fmt"
	"slices"
	"time"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// vdState is one evaluation of the vd2011 rule set.
type vdState struct {
	e   *Engine
	lg  *logIndex
	now time.Time
	out *collector

	acts     []activity                 // every notified activity, by (sender, seq)
	bySender map[string][]activity      // per sender, by seq: parts of acts
	invites  map[*activity][]*item      // observation invitations per activity
	cals     map[string]map[int][]*item // sender -> year -> calendars, by seq

	// names holds, once computed, what named returns.
	names map[nameKey]*activity
	// calNamed holds, per sender, year and normalised designation, the
	// calendar listing it that was given first, the earliest seq among
	// equal times.
	calNamed map[calKey]*item
	// plans holds what planned returns, once computed.
	plans map[calKey][]*activity
}

// nameKey is a normalised designation of a sender's activity.
type nameKey struct {
	sender, name string
}

// calKey is a normalised designation in a sender's calendars for a year;
// name is empty for the year itself.
type calKey struct {
	sender string
	year   int
	name   string
}

// activityOf returns the activity of a notification or of an amendment
// applied to it; nil if it has none (or it is nil).
func (s *vdState) activityOf(it *item) *activity {
	if it == nil || it.actAt == 0 {
		return nil
	}
	return &s.acts[it.actAt-1]
}

// givenFirst reports whether a was given before b, or at the same time
// with a smaller seq.
func givenFirst(a, b *item) bool {
	return a.given().Before(b.given()) || a.given().Equal(b.given()) && a.seq < b.seq
}

// named returns, for a sender and a normalised designation, the activity
// of that designation (in any version) that is not withdrawn and whose
// notification was given first, the earliest seq among equal times;
// failing that, a withdrawn one; nil if no activity of the sender had that
// designation.
func (s *vdState) named(sender, designation string) *activity {
	if s.names == nil {
		s.names = make(map[nameKey]*activity)
		for a := range each(s.acts) {
			for d := range a.designations() {
				k := nameKey{a.sender(), d}
				b := s.names[k]
				if b == nil || b.withdrawn && !a.withdrawn || b.withdrawn == a.withdrawn && givenFirst(a.notice(), b.notice()) {
					s.names[k] = a
				}
			}
		}
	}
	return s.names[nameKey{sender, designation}]
}

// evaluateVD2011 runs every rule of the vd2011 set.
func (e *Engine) evaluateVD2011(lg *logIndex, now time.Time, out *collector) {
	s, dangling := e.newVDState(lg, now, out)
	for a := range each(s.acts) {
		if a.withdrawn {
			continue
		}
		s.checkLead(a)
		s.checkAlert(a)
		s.checkInvite(a)
		s.checkAlert72(a)
		s.checkInCalendar(a)
		s.checkLarge(a)
		s.checkNear(a)
	}
	s.checkNeverNotified(dangling)
	s.checkCalendars()
	s.checkHosts()
	s.checkThreeYears()
	s.checkSplits()
	s.checkConsultations()
}

// newVDState collects the activities, invitations and calendars of the
// log, reporting VD.V.amend, and returns the amendments that refer to
// nothing.
func (e *Engine) newVDState(lg *logIndex, now time.Time, out *collector) (*vdState, []*item) {
	s := &vdState{
		e: e, lg: lg, now: now, out: out,
		bySender: make(map[string][]activity),
		invites:  make(map[*activity][]*item),
		cals:     make(map[string]map[int][]*item),
		calNamed: make(map[calKey]*item),
	}
	dangling := s.buildActivities()
	for _, it := range lg.all {
		switch b := it.body().GetKind().(type) {
		case *parleyv1.Body_Invitation:
			if a := s.activityOf(lg.item(it.sender, b.Invitation.GetNotificationSeq())); a != nil {
				s.invites[a] = append(s.invites[a], it)
			}
		case *parleyv1.Body_Calendar:
			y := int(b.Calendar.GetYear())
			if s.cals[it.sender] == nil {
				s.cals[it.sender] = make(map[int][]*item)
			}
			s.cals[it.sender][y] = append(s.cals[it.sender][y], it)
			for _, ce := range b.Calendar.GetActivities() {
				k := calKey{it.sender, y, normalize(ce.GetDesignation())}
				if first := s.calNamed[k]; first == nil || givenFirst(it, first) {
					s.calNamed[k] = it
				}
			}
		}
	}
	return s, dangling
}

// leadTime is the VD.V.lead minimum, in 24-hour UTC days.
func (s *vdState) leadTime() time.Duration {
	return time.Duration(s.e.vd.LeadTimeDays) * 24 * time.Hour
}

// checkLead judges VD.V.lead for a non-alert activity that reaches a
// notification threshold.
func (s *vdState) checkLead(a *activity) {
	cur := a.latest()
	since := a.notifiableSince()
	if cur.alert || since == nil {
		return
	}
	start := a.start()
	lead := start.Sub(since.it.given())
	if lead >= s.leadTime() {
		return
	}
	seen := fmt.Sprintf("given %s, %s", fmtTime(since.it.given()), relative(lead, true, "start"))
	refs := []*item{a.notice()}
	if since.it != a.notice() {
		seen += fmt.Sprintf("; threshold first reached in amendment seq %d", since.it.seq)
		refs = append(refs, since.it)
	}
	s.out.add(finding{
		rule:     RuleLead,
		severity: parleyv1.Severity_SEVERITY_VIOLATION,
		party:    a.sender(),
		entries:  refs,
		required: fmt.Sprintf("notice >= %d days before start %s (by %s)", s.e.vd.LeadTimeDays, fmtTime(start), fmtTime(start.Add(-s.leadTime()))),
		seen:     seen,
		summary:  fmt.Sprintf("late notification of %s (%s)", a.describe(), s.e.reached(a.forces(), levelNotify)),
		at:       since.it.given(),
	})
}

// checkNeverNotified judges VD.V.lead for activities above a notification
// threshold seen only in an amendment that refers to nothing, or in the
// latest calendar of their year, with no notification of the same
// designation by the same sender.
func (s *vdState) checkNeverNotified(dangling []*item) {
	notified := func(sender, designation string) bool {
		return s.named(sender, normalize(designation)) != nil
	}
	for _, it := range dangling {
		n := it.body().GetAmendment().GetActivity()
		f := forcesOf(n.GetForces(), n.GetType())
		if n.GetAlert() || !s.e.reaches(f, levelNotify) || notified(it.sender, n.GetDesignation()) {
			continue
		}
		start, _ := timeOf(n.GetStart())
		s.out.add(finding{
			rule:     RuleLead,
			severity: parleyv1.Severity_SEVERITY_VIOLATION,
			party:    it.sender,
			entries:  []*item{it},
			required: fmt.Sprintf("notice >= %d days before start %s (by %s)", s.e.vd.LeadTimeDays, fmtTime(start), fmtTime(start.Add(-s.leadTime()))),
			seen:     fmt.Sprintf("never notified; seen only in amendment seq %d (%s)", it.seq, s.e.reached(f, levelNotify)),
			summary:  fmt.Sprintf("activity %q of %s seen only in an amendment", n.GetDesignation(), it.sender),
			at:       it.given(),
		})
	}
	for _, sender := range s.lg.senders {
		years := s.cals[sender]
		for _, y := range sortedKeys(years) {
			cal := years[y][len(years[y])-1] // the latest calendar of the year
			for _, ce := range cal.body().GetCalendar().GetActivities() {
				f := forcesOf(ce.GetForces(), ce.GetType())
				start, ok := timeOf(ce.GetStart())
				if !ok || !s.e.reaches(f, levelNotify) || notified(sender, ce.GetDesignation()) {
					continue
				}
				due := start.Add(-s.leadTime())
				if !s.now.After(due) {
					continue
				}
				s.out.add(finding{
					rule:     RuleLead,
					severity: parleyv1.Severity_SEVERITY_VIOLATION,
					party:    sender,
					entries:  []*item{cal},
					required: fmt.Sprintf("notice >= %d days before start %s (by %s)", s.e.vd.LeadTimeDays, fmtTime(start), fmtTime(due)),
					seen:     fmt.Sprintf("no notification by %s; planned in calendar %d (seq %d) with %s", fmtTime(due), y, cal.seq, s.e.reached(f, levelNotify)),
					summary:  fmt.Sprintf("calendared activity %q of %s never notified", ce.GetDesignation(), sender),
					at:       due,
				})
			}
		}
	}
}

// checkAlert judges VD.V.alert: an alert activity that reaches a
// notification threshold is notified no later than its start plus skew.
func (s *vdState) checkAlert(a *activity) {
	since := a.notifiableSince()
	if !a.latest().alert || since == nil {
		return
	}
	start := a.start()
	if !since.it.given().After(start.Add(s.e.skew)) {
		return
	}
	refs := []*item{a.notice()}
	if since.it != a.notice() {
		refs = append(refs, since.it)
	}
	s.out.add(finding{
		rule:     RuleAlert,
		severity: parleyv1.Severity_SEVERITY_VIOLATION,
		party:    a.sender(),
		entries:  refs,
		required: fmt.Sprintf("alert activity notified by its start %s (clock skew %s)", fmtTime(start), fmtDur(s.e.skew, false)),
		seen:     fmt.Sprintf("given %s, %s after the start", fmtTime(since.it.given()), fmtDur(since.it.given().Sub(start), false)),
		summary:  fmt.Sprintf("alert activity %s notified after its start", a.describe()),
		at:       since.it.given(),
	})
}

// relative describes a lead time: "34d14h before start" or "2h after
// start".
func relative(lead time.Duration, days bool, what string) string {
	if lead < 0 {
		return fmt.Sprintf("%s after %s", fmtDur(-lead, days), what)
	}
	return fmt.Sprintf("%s before %s", fmtDur(lead, days), what)
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
