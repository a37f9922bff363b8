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

	acts     []*activity                // every notified activity, by (sender, seq)
	bySender map[string][]*activity     // per sender, by seq
	actBySeq map[key]*activity          // notification or applied amendment -> activity
	invites  map[*activity][]*item      // observation invitations per activity
	cals     map[string]map[int][]*item // sender -> year -> calendars, by seq
}

// evaluateVD2011 runs every rule of the vd2011 set.
func (e *Engine) evaluateVD2011(lg *logIndex, now time.Time, out *collector) {
	s := &vdState{
		e: e, lg: lg, now: now, out: out,
		bySender: make(map[string][]*activity),
		actBySeq: make(map[key]*activity),
		invites:  make(map[*activity][]*item),
		cals:     make(map[string]map[int][]*item),
	}
	dangling := s.buildActivities()
	for _, it := range lg.all {
		switch b := it.body.GetKind().(type) {
		case *parleyv1.Body_Invitation:
			if a := s.actBySeq[key{it.sender, b.Invitation.GetNotificationSeq()}]; a != nil {
				s.invites[a] = append(s.invites[a], it)
			}
		case *parleyv1.Body_Calendar:
			y := int(b.Calendar.GetYear())
			if s.cals[it.sender] == nil {
				s.cals[it.sender] = make(map[int][]*item)
			}
			s.cals[it.sender][y] = append(s.cals[it.sender][y], it)
		}
	}

	for _, a := range s.acts {
		if a.withdrawn {
			continue
		}
		s.checkLead(a)
		s.checkAlert(a)
		s.checkHost(a)
		s.checkInvite(a)
		s.checkAlert72(a)
		s.checkInCalendar(a)
		s.checkLarge(a)
		s.checkNear(a)
	}
	s.checkNeverNotified(dangling)
	s.checkCalendars()
	s.checkThreeYears()
	s.checkSplits()
	s.checkConsultations()
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
	if cur.GetAlert() || since == nil {
		return
	}
	start := a.start()
	lead := start.Sub(since.it.given)
	if lead >= s.leadTime() {
		return
	}
	seen := fmt.Sprintf("given %s, %s", fmtTime(since.it.given), relative(lead, true, "start"))
	refs := []*item{a.notice}
	if since.it != a.notice {
		seen += fmt.Sprintf("; threshold first reached in amendment seq %d", since.it.seq)
		refs = append(refs, since.it)
	}
	s.out.add(finding{
		rule:     RuleLead,
		severity: parleyv1.Severity_SEVERITY_VIOLATION,
		party:    a.sender,
		entries:  refs,
		required: fmt.Sprintf("notice >= %d days before start %s (by %s)", s.e.vd.LeadTimeDays, fmtTime(start), fmtTime(start.Add(-s.leadTime()))),
		seen:     seen,
		summary:  fmt.Sprintf("late notification of %s (%s)", a.describe(), s.e.reached(a.forces(), levelNotify)),
		at:       since.it.given,
	})
}

// checkNeverNotified judges VD.V.lead for activities above a notification
// threshold seen only in an amendment that refers to nothing, or in the
// latest calendar of their year, with no notification of the same
// designation by the same sender.
func (s *vdState) checkNeverNotified(dangling []*item) {
	notified := func(sender, designation string) bool {
		d := normalize(designation)
		for _, a := range s.bySender[sender] {
			if a.hasDesignation(d) {
				return true
			}
		}
		return false
	}
	for _, it := range dangling {
		n := it.body.GetAmendment().GetActivity()
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
			at:       it.given,
		})
	}
	for _, sender := range s.lg.senders {
		years := s.cals[sender]
		for _, y := range sortedKeys(years) {
			cal := years[y][len(years[y])-1] // the latest calendar of the year
			for _, ce := range cal.body.GetCalendar().GetActivities() {
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
	if !a.latest().GetAlert() || since == nil {
		return
	}
	start := a.start()
	if !since.it.given.After(start.Add(s.e.skew)) {
		return
	}
	refs := []*item{a.notice}
	if since.it != a.notice {
		refs = append(refs, since.it)
	}
	s.out.add(finding{
		rule:     RuleAlert,
		severity: parleyv1.Severity_SEVERITY_VIOLATION,
		party:    a.sender,
		entries:  refs,
		required: fmt.Sprintf("alert activity notified by its start %s (clock skew %s)", fmtTime(start), fmtDur(s.e.skew, false)),
		seen:     fmt.Sprintf("given %s, %s after the start", fmtTime(since.it.given), fmtDur(since.it.given.Sub(start), false)),
		summary:  fmt.Sprintf("alert activity %s notified after its start", a.describe()),
		at:       since.it.given,
	})
}

// checkHost judges VD.V.host: an activity that reaches a notification
// threshold on the territory of another party is notified by that party
// too, by the same deadline.
func (s *vdState) checkHost(a *activity) {
	if a.notifiableSince() == nil {
		return
	}
	cur := a.latest()
	var hosts []string
	if h := cur.GetHostState(); h != "" && h != a.sender {
		if _, ok := s.e.party[h]; ok {
			hosts = append(hosts, h)
		}
	}
	for _, place := range cur.GetArea().GetPlaceNames() {
		for _, h := range s.e.hosts[normalize(place)] {
			if h != a.sender {
				hosts = append(hosts, h)
			}
		}
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)

	start := a.start()
	due := start.Add(-s.leadTime())
	if cur.GetAlert() {
		due = start.Add(s.e.skew)
	}
	for _, h := range hosts {
		var first *activity
		for _, b := range s.bySender[h] {
			if b.withdrawn || !sameActivity(a, b) {
				continue
			}
			if first == nil || b.notice.given.Before(first.notice.given) {
				first = b
			}
		}
		if first != nil && !first.notice.given.After(due) || first == nil && !s.now.After(due) {
			continue // in time, or not yet due
		}
		f := finding{
			rule:     RuleHost,
			severity: parleyv1.Severity_SEVERITY_VIOLATION,
			party:    h,
			entries:  []*item{a.notice},
			required: fmt.Sprintf("a notification by host %s >= %d days before start %s (by %s)", h, s.e.vd.LeadTimeDays, fmtTime(start), fmtTime(due)),
		}
		if cur.GetAlert() {
			f.required = fmt.Sprintf("a notification by host %s of the alert activity by its start %s (clock skew %s)", h, fmtTime(start), fmtDur(s.e.skew, false))
		}
		if first != nil {
			f.entries = append(f.entries, first.notice)
			f.seen = fmt.Sprintf("host notification seq %d given %s, %s", first.notice.seq, fmtTime(first.notice.given), relative(start.Sub(first.notice.given), true, "start"))
			f.summary = fmt.Sprintf("host %s notified activity %s late", h, a.describe())
			f.at = first.notice.given
		} else {
			f.seen = fmt.Sprintf("no notification by %s by %s", h, fmtTime(due))
			f.summary = fmt.Sprintf("host %s did not notify activity %s", h, a.describe())
			f.at = due
		}
		s.out.add(f)
	}
}

// sameActivity reports whether b (the host's notification) is about the
// activity a: same designation, or overlapping in time and sharing a place
// name.
func sameActivity(a, b *activity) bool {
	if b.hasDesignation(normalize(a.latest().GetDesignation())) {
		return true
	}
	return overlaps(a, b) && sharePlace(a.latest(), b.latest())
}

// overlaps reports whether the periods [start, end) of a and b intersect.
func overlaps(a, b *activity) bool {
	return a.start().Before(b.end()) && b.start().Before(a.end())
}

func sharePlace(a, b *parleyv1.ActivityNotification) bool {
	for _, p := range a.GetArea().GetPlaceNames() {
		for _, q := range b.GetArea().GetPlaceNames() {
			if normalize(p) == normalize(q) {
				return true
			}
		}
	}
	return false
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
