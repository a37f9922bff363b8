package rules

import (
	"fmt"
	"time"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// checkLaunches judges BM.lead for every launch notification: the launch
// window starts at least LeadTimeHours after the notification is given,
// and lasts at most MaxWindowHours.
func (e *Engine) checkLaunches(lg *logIndex, out *collector) {
	lead := time.Duration(e.bm.LeadTimeHours) * time.Hour
	longest := time.Duration(e.bm.MaxWindowHours) * time.Hour
	for _, it := range lg.all {
		l := it.body().GetLaunch()
		if l == nil {
			continue
		}
		from, ok1 := timeOf(l.GetWindowStart())
		to, ok2 := timeOf(l.GetWindowEnd())
		if !ok1 || !ok2 {
			continue
		}
		if got := from.Sub(it.given()); got < lead {
			out.add(finding{
				rule:     RuleMissileLead,
				severity: parleyv1.Severity_SEVERITY_VIOLATION,
				party:    it.sender,
				entries:  []*item{it},
				required: fmt.Sprintf("notice >= %dh before the launch window starts %s (by %s)", e.bm.LeadTimeHours, fmtTime(from), fmtTime(from.Add(-lead))),
				seen:     fmt.Sprintf("given %s, %s", fmtTime(it.given()), relative(got, false, "the window start")),
				summary:  fmt.Sprintf("late launch notification %q of %s", l.GetDesignation(), it.sender),
				at:       it.given(),
			})
		}
		if got := to.Sub(from); got > longest {
			out.add(finding{
				rule:     RuleMissileLead,
				severity: parleyv1.Severity_SEVERITY_VIOLATION,
				party:    it.sender,
				entries:  []*item{it},
				required: fmt.Sprintf("launch window <= %dh", e.bm.MaxWindowHours),
				seen:     fmt.Sprintf("window %s to %s, %s", fmtTime(from), fmtTime(to), fmtDur(got, false)),
				summary:  fmt.Sprintf("launch window of %q of %s too long", l.GetDesignation(), it.sender),
				at:       it.given(),
			})
		}
	}
}
