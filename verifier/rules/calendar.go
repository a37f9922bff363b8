package rules

import (
	"fmt"
	"slices"
	"time"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// deadlineEnd returns the first instant after the calendar deadline day
// (CalendarMonth/CalendarDay) of year y: something given by that day is
// given strictly before it.
func (s *vdState) deadlineEnd(y int) time.Time {
	return time.Date(y, time.Month(s.e.vd.CalendarMonth), s.e.vd.CalendarDay+1, 0, 0, 0, 0, time.UTC)
}

// deadlineName names the deadline day of year y, e.g. "the end of
// 2026-11-15 UTC".
func (s *vdState) deadlineName(y int) string {
	return "the end of " + s.deadlineEnd(y).Add(-time.Nanosecond).Format(time.DateOnly) + " UTC"
}

// planned returns the activities of sender that need to be in the calendar
// of year y: not withdrawn, not alert, reaching a notification threshold,
// starting in y; by seq.
func (s *vdState) planned(sender string, y int) []*activity {
	if s.plans == nil {
		s.plans = make(map[calKey][]*activity)
		for a := range each(s.acts) {
			if !a.withdrawn && !a.latest().alert && a.notifiableSince() != nil {
				k := calKey{sender: a.sender(), year: a.start().Year()}
				s.plans[k] = append(s.plans[k], a)
			}
		}
	}
	return s.plans[calKey{sender: sender, year: y}]
}

// checkCalendars judges VD.VII.calendar and VD.VII.nil for every party and
// every year Y whose calendar deadline (the end of 15 November of Y-1 by
// default) lies after the earliest entry of the log and is passed by now.
func (s *vdState) checkCalendars() {
	if s.lg.earliest.IsZero() {
		return
	}
	for y := s.lg.earliest.Year(); y <= s.now.Year()+1; y++ {
		due := s.deadlineEnd(y - 1)
		if !due.After(s.lg.earliest) || due.After(s.now) {
			continue
		}
		for _, p := range s.e.parties {
			s.checkCalendar(p, y, due)
		}
	}
}

func (s *vdState) checkCalendar(p string, y int, due time.Time) {
	var first *item
	for _, cal := range s.cals[p][y] {
		if first == nil || cal.given().Before(first.given()) {
			first = cal
		}
	}
	if first != nil && first.given().Before(due) {
		return
	}
	f := finding{
		rule:     RuleCalendar,
		severity: parleyv1.Severity_SEVERITY_VIOLATION,
		party:    p,
		required: fmt.Sprintf("annual calendar for %d (or an explicit nil calendar) by %s", y, s.deadlineName(y-1)),
	}
	if first != nil {
		what := "calendar"
		if first.body().GetCalendar().GetNilCalendar() {
			f.rule, what = RuleNil, "nil calendar"
		}
		f.entries = []*item{first}
		f.seen = fmt.Sprintf("first %s for %d (seq %d) given %s", what, y, first.seq, fmtTime(first.given()))
		f.summary = fmt.Sprintf("late %s of %s for %d", what, p, y)
		f.at = first.given()
		s.out.add(f)
		return
	}
	f.at = due
	planned := s.planned(p, y)
	if len(planned) == 0 {
		f.rule = RuleNil
		f.seen = fmt.Sprintf("silence: no calendar, nil calendar or notified activity for %d", y)
		f.summary = fmt.Sprintf("no calendar and no nil calendar of %s for %d", p, y)
		s.out.add(f)
		return
	}
	for _, i := range listed(len(planned)) {
		f.entries = append(f.entries, planned[i].notice())
	}
	f.seen = fmt.Sprintf("no calendar for %d, though it has %s", y, plural(len(planned), "notified activity", "notified activities"))
	if len(f.entries) < len(planned) {
		f.seen += fmt.Sprintf("; listed are the %d with the lowest and the %d with the highest seq", listedEnds, listedEnds)
	}
	f.summary = fmt.Sprintf("missing calendar of %s for %d", p, y)
	s.out.add(f)
}

// firstListed returns the calendar of the activity's sender for year y
// that lists it by one of its designations and was given first (the
// earliest seq among equal times), or nil.
func (s *vdState) firstListed(a *activity, y int) *item {
	var first *item
	for d := range a.designations() {
		if cal := s.calNamed[calKey{a.sender(), y, d}]; cal != nil && (first == nil || givenFirst(cal, first)) {
			first = cal
		}
	}
	return first
}

// checkInCalendar judges VD.VII.incal: a non-alert activity that reaches a
// notification threshold is listed (by designation) in a calendar of its
// sender for the year of its start. Judged once the calendar deadline for
// that year has passed, if it lies after the earliest entry of the log.
func (s *vdState) checkInCalendar(a *activity) {
	if a.latest().alert || a.notifiableSince() == nil {
		return
	}
	y := a.start().Year()
	at := s.deadlineEnd(y - 1)
	if s.firstListed(a, y) != nil || !at.After(s.lg.earliest) {
		return
	}
	if a.notice().given().After(at) {
		at = a.notice().given()
	}
	if s.now.Before(at) {
		return
	}
	s.out.add(finding{
		rule:     RuleInCalendar,
		severity: parleyv1.Severity_SEVERITY_LOW,
		party:    a.sender(),
		entries:  []*item{a.notice()},
		required: fmt.Sprintf("the activity listed in a calendar of %s for %d", a.sender(), y),
		seen:     fmt.Sprintf("%q in no calendar for %d (%s)", a.latest().designation, y, plural(len(s.cals[a.sender()][y]), "calendar", "calendars")),
		summary:  fmt.Sprintf("notified activity %s not in the calendar", a.describe()),
		at:       at,
	})
}

// checkLarge judges VD.VIII.large: a non-alert activity exceeding the
// constraining thresholds is listed in a calendar for its year given by
// the calendar deadline LargeAdvanceYears before. Judged once that deadline
// has passed, if it lies after the earliest entry of the log.
func (s *vdState) checkLarge(a *activity) {
	ok, desc := s.e.large(a.forces())
	if !ok || a.latest().alert {
		return
	}
	y := a.start().Year()
	due := s.deadlineEnd(y - s.e.vd.LargeAdvanceYears)
	if !due.After(s.lg.earliest) {
		return
	}
	first := s.firstListed(a, y)
	if first != nil && first.given().Before(due) {
		return
	}
	if s.now.Before(due) {
		return
	}
	at := due
	if a.notice().given().After(at) {
		at = a.notice().given()
	}
	f := finding{
		rule:     RuleLarge,
		severity: parleyv1.Severity_SEVERITY_VIOLATION,
		party:    a.sender(),
		entries:  []*item{a.notice()},
		required: fmt.Sprintf("activity with %s communicated in a calendar for %d by %s", desc, y, s.deadlineName(y-s.e.vd.LargeAdvanceYears)),
		seen:     fmt.Sprintf("in no calendar for %d", y),
		summary:  fmt.Sprintf("large activity %s not communicated %d years ahead", a.describe(), s.e.vd.LargeAdvanceYears),
		at:       at,
	}
	if first != nil {
		f.entries = append(f.entries, first)
		f.seen = fmt.Sprintf("first listed in calendar seq %d given %s", first.seq, fmtTime(first.given()))
	}
	s.out.add(f)
}

// checkThreeYears judges VD.VIII.three_years: per sender, at most
// LargeMaxCount activities exceeding the constraining thresholds start in
// any LargePerYears consecutive calendar years. Alert activities count.
// The window of each activity is a run of the activities in start order,
// followed with two indexes and a queue of the ones that may be the latest
// given: linear after sorting.
func (s *vdState) checkThreeYears() {
	per, most := s.e.vd.LargePerYears, s.e.vd.LargeMaxCount
	for _, sender := range s.lg.senders {
		var large []*activity
		for a := range each(s.bySender[sender]) {
			if ok, _ := s.e.large(a.forces()); ok && !a.withdrawn {
				large = append(large, a)
			}
		}
		slices.SortStableFunc(large, func(a, b *activity) int { return a.start().Compare(b.start()) })
		var latest []int // indexes in the window, given later than every one after them
		for i, j := 0, 0; i < len(large); i++ {
			a := large[i]
			y := a.start().Year()
			for large[j].start().Year() <= y-per {
				j++
			}
			for len(latest) > 0 && !large[latest[len(latest)-1]].notice().given().After(a.notice().given()) {
				latest = latest[:len(latest)-1]
			}
			latest = append(latest, i)
			for latest[0] < j {
				latest = latest[1:]
			}
			window := large[j : i+1]
			if len(window) <= most {
				continue
			}
			var refs []*item
			for _, k := range listed(len(window)) {
				refs = append(refs, window[k].notice())
			}
			at := large[latest[0]].notice().given()
			_, desc := s.e.large(a.forces())
			seen := fmt.Sprintf("%d in %d-%d, the last %s starting %s with %s", len(window), y-per+1, y, a.describe(), fmtTime(a.start()), desc)
			if len(refs) < len(window) {
				seen += fmt.Sprintf("; listed are the %d that start first and the %d that start last", listedEnds, listedEnds)
			}
			s.out.add(finding{
				rule:     RuleThreeYears,
				severity: parleyv1.Severity_SEVERITY_VIOLATION,
				party:    sender,
				entries:  refs,
				required: fmt.Sprintf("at most %s above %s troops or %s battle tanks in %d calendar years", plural(most, "activity", "activities"), fmtCount(uint64(s.e.vd.LargeTroops)), fmtCount(uint64(s.e.vd.LargeBattleTanks)), per),
				seen:     seen,
				summary:  fmt.Sprintf("too many large activities of %s up to %d", sender, y),
				at:       at,
			})
		}
	}
}
