package rules

import (
	"fmt"
	"time"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// firstInvite returns the earliest given observation invitation of a, or
// nil.
func (s *vdState) firstInvite(a *activity) *item {
	var first *item
	for _, it := range s.invites[a] {
		if first == nil || it.given().Before(first.given()) {
			first = it
		}
	}
	return first
}

// checkInvite judges VD.VI.invite: a non-alert activity that reaches an
// observation threshold has an invitation given at least the lead time
// before its start.
func (s *vdState) checkInvite(a *activity) {
	f := a.forces()
	if a.latest().alert || !s.e.reaches(f, levelObserve) {
		return
	}
	start := a.start()
	due := start.Add(-s.leadTime())
	s.judgeInvite(a, RuleInvite, due, func() string {
		return fmt.Sprintf("an observation invitation >= %d days before start %s (by %s) for an activity reaching %s", s.e.vd.LeadTimeDays, fmtTime(start), fmtTime(due), s.e.reached(f, levelObserve))
	})
}

// checkAlert72 judges VD.VI.alert72: an alert activity that reaches an
// observation threshold and lasts more than AlertObserveHours has an
// invitation by start + AlertObserveHours.
func (s *vdState) checkAlert72(a *activity) {
	f := a.forces()
	hours := time.Duration(s.e.vd.AlertObserveHours) * time.Hour
	start, end := a.start(), a.end()
	if !a.latest().alert || !s.e.reaches(f, levelObserve) || end.Sub(start) <= hours {
		return
	}
	due := start.Add(hours)
	s.judgeInvite(a, RuleAlert72, due, func() string {
		return fmt.Sprintf("an observation invitation by %s (%dh after start) for an alert activity lasting %s > %dh and reaching %s",
			fmtTime(due), s.e.vd.AlertObserveHours, fmtDur(end.Sub(start), false), s.e.vd.AlertObserveHours, s.e.reached(f, levelObserve))
	})
}

// judgeInvite reports a missing or late invitation against due (last
// instant on time).
func (s *vdState) judgeInvite(a *activity, rule string, due time.Time, required func() string) {
	inv := s.firstInvite(a)
	if inv != nil && !inv.given().After(due) || inv == nil && !s.now.After(due) {
		return // in time, or not yet due
	}
	f := finding{
		rule:     rule,
		severity: parleyv1.Severity_SEVERITY_VIOLATION,
		party:    a.sender(),
		entries:  []*item{a.notice()},
		required: required(),
	}
	if inv != nil {
		f.entries = append(f.entries, inv)
		f.seen = fmt.Sprintf("invitation seq %d given %s, %s late", inv.seq, fmtTime(inv.given()), fmtDur(inv.given().Sub(due), true))
		f.summary = fmt.Sprintf("late observation invitation for %s", a.describe())
		f.at = inv.given()
	} else {
		f.seen = fmt.Sprintf("no invitation by %s", fmtTime(due))
		f.summary = fmt.Sprintf("no observation invitation for %s", a.describe())
		f.at = due
	}
	s.out.add(f)
}
