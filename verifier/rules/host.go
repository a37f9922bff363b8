package rules

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// hostCheck is one activity and one of its host parties, for VD.V.host.
type hostCheck struct {
	a    *activity
	host string
	// first is the host's matching activity given first, if any.
	first *activity
}

// checkHosts judges VD.V.host: an activity that reaches a notification
// threshold on the territory of another party is notified by that party
// too, by the same deadline.
//
// The host's notification matches when it has the same designation, or
// overlaps in time and shares a place name. Of the matching ones, the one
// given first counts. Designations are looked up with s.named; overlaps
// are found for all activities at once, per host and place, in
// O(n log n): see firstOverlapping.
func (s *vdState) checkHosts() {
	for _, c := range s.hostChecks() {
		s.judgeHost(c)
	}
}

// hostChecks returns a check per activity that reaches a notification
// threshold and host party of it, with the host's matching activity given
// first.
func (s *vdState) hostChecks() []hostCheck {
	var checks []hostCheck
	for a := range each(s.acts) {
		if a.withdrawn || a.notifiableSince() == nil {
			continue
		}
		var hosts []string
		if h := a.latest().hostState(); h != "" && h != a.sender() {
			if _, ok := s.e.party[h]; ok {
				hosts = append(hosts, h)
			}
		}
		for place := range a.places().all() {
			for _, h := range s.e.hosts[place] {
				if h != a.sender() {
					hosts = append(hosts, h)
				}
			}
		}
		slices.Sort(hosts)
		for _, h := range slices.Compact(hosts) {
			d := a.latest().norm()
			c := hostCheck{a: a, host: h}
			if b := s.named(h, d); b != nil && !b.withdrawn {
				c.first = b
			}
			checks = append(checks, c)
		}
	}
	s.firstOverlapping(checks)
	return checks
}

// firstOverlapping sets c.first for every check to the host's activity
// that overlaps c.a in time, shares a place name with it and was given
// first, if that one was given before c.first.
//
// Per host and place, the host's activities there are ordered by start.
// The checks are visited by decreasing start of c.a while the host's
// activities whose end is after that start are added, by decreasing end,
// to a prefix-minimum Fenwick tree indexed by their rank in start order.
// The ones among them starting before the end of c.a are a prefix of that
// order.
func (s *vdState) firstOverlapping(checks []hostCheck) {
	byHost := make(map[nameKey][]int) // host and place -> checks
	for i, c := range checks {
		for p := range c.a.places().all() {
			k := nameKey{c.host, p}
			byHost[k] = append(byHost[k], i)
		}
	}
	if len(byHost) == 0 {
		return
	}
	atPlace := make(map[nameKey][]*activity)
	for _, h := range s.lg.senders {
		for b := range each(s.bySender[h]) {
			if b.withdrawn {
				continue
			}
			for p := range b.places().all() {
				if k := (nameKey{h, p}); byHost[k] != nil {
					atPlace[k] = append(atPlace[k], b)
				}
			}
		}
	}
	for k, qs := range byHost {
		bs := atPlace[k]
		if len(bs) == 0 {
			continue
		}
		byStart := slices.Clone(bs)
		slices.SortFunc(byStart, func(x, y *activity) int {
			return cmp.Or(x.start().Compare(y.start()), cmp.Compare(x.notice().seq, y.notice().seq))
		})
		rank := make(map[*activity]int, len(byStart))
		for i, b := range byStart {
			rank[b] = i
		}
		byEnd := slices.Clone(bs)
		slices.SortFunc(byEnd, func(x, y *activity) int { return y.end().Compare(x.end()) })
		slices.SortFunc(qs, func(i, j int) int { return checks[j].a.start().Compare(checks[i].a.start()) })
		tree := make([]*activity, len(byStart)+1) // Fenwick, 1-based
		next := 0
		for _, i := range qs {
			a := checks[i].a
			for ; next < len(byEnd) && byEnd[next].end().After(a.start()); next++ {
				b := byEnd[next]
				for j := rank[b] + 1; j < len(tree); j += j & -j {
					if tree[j] == nil || givenFirst(b.notice(), tree[j].notice()) {
						tree[j] = b
					}
				}
			}
			n, _ := slices.BinarySearchFunc(byStart, a.end(), func(b *activity, t time.Time) int {
				return cmp.Or(b.start().Compare(t), 1) // the first that starts at or after t
			})
			for j := n; j > 0; j -= j & -j {
				if b := tree[j]; b != nil && (checks[i].first == nil || givenFirst(b.notice(), checks[i].first.notice())) {
					checks[i].first = b
				}
			}
		}
	}
}

// judgeHost reports c.host's notification of c.a if it is missing or late.
func (s *vdState) judgeHost(c hostCheck) {
	a, h, first := c.a, c.host, c.first
	cur := a.latest()
	start := a.start()
	due := start.Add(-s.leadTime())
	if cur.alert {
		due = start.Add(s.e.skew)
	}
	if first != nil && !first.notice().given().After(due) || first == nil && !s.now.After(due) {
		return // in time, or not yet due
	}
	f := finding{
		rule:     RuleHost,
		severity: parleyv1.Severity_SEVERITY_VIOLATION,
		party:    h,
		entries:  []*item{a.notice()},
		required: fmt.Sprintf("a notification by host %s >= %d days before start %s (by %s)", h, s.e.vd.LeadTimeDays, fmtTime(start), fmtTime(due)),
	}
	if cur.alert {
		f.required = fmt.Sprintf("a notification by host %s of the alert activity by its start %s (clock skew %s)", h, fmtTime(start), fmtDur(s.e.skew, false))
	}
	if first != nil {
		f.entries = append(f.entries, first.notice())
		f.seen = fmt.Sprintf("host notification seq %d given %s, %s", first.notice().seq, fmtTime(first.notice().given()), relative(start.Sub(first.notice().given()), true, "start"))
		f.summary = fmt.Sprintf("host %s notified activity %s late", h, a.describe())
		f.at = first.notice().given()
	} else {
		f.seen = fmt.Sprintf("no notification by %s by %s", h, fmtTime(due))
		f.summary = fmt.Sprintf("host %s did not notify activity %s", h, a.describe())
		f.at = due
	}
	s.out.add(f)
}
