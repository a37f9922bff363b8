package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// near reports whether v lies within the margin below limit:
// limit*(100-margin)/100 <= v < limit.
func (e *Engine) near(v, limit uint64) bool {
	return limit > 0 && v < limit && v*100 >= limit*uint64(100-e.vd.NearMarginPercent)
}

// checkNear judges the first half of VD.near: a value of the content in
// effect lies within NearMarginPercent below a notification or
// observation threshold, and no threshold of that level is reached.
func (s *vdState) checkNear(a *activity) {
	f := a.forces()
	type note struct {
		field  int
		limit  uint64
		levels []string
	}
	var notes []note
	for level := range levelNames {
		if s.e.reaches(f, level) {
			continue
		}
		for i, limit := range s.e.limits[level] {
			if !s.e.near(f[i], limit) {
				continue
			}
			j := slices.IndexFunc(notes, func(n note) bool { return n.field == i && n.limit == limit })
			if j < 0 {
				notes = append(notes, note{field: i, limit: limit})
				j = len(notes) - 1
			}
			notes[j].levels = append(notes[j].levels, levelNames[level])
		}
	}
	if len(notes) == 0 {
		return
	}
	var seen []string
	for _, n := range notes {
		seen = append(seen, fmt.Sprintf("%s %s, %s below the %s threshold %s", fieldNames[n.field], fmtCount(f[n.field]),
			fmtCount(n.limit-f[n.field]), strings.Join(n.levels, " and "), fmtCount(n.limit)))
	}
	cur := a.versions[len(a.versions)-1].it
	s.out.add(finding{
		rule:     RuleNear,
		severity: parleyv1.Severity_SEVERITY_ADVISORY,
		party:    a.sender,
		entries:  []*item{a.notice, cur},
		required: fmt.Sprintf("advisory: declared values not within %d%% below a threshold", s.e.vd.NearMarginPercent),
		seen:     strings.Join(seen, "; "),
		summary:  fmt.Sprintf("activity %s declared just below a threshold", a.describe()),
		at:       cur.given,
	})
}

// checkSplits judges the second half of VD.near: activities of one sender
// that run at the same time in a place of the same name and together reach
// a notification or observation threshold that none of them reaches alone
// (a possible split). For each place, the activities running at each
// activity's start form a group; groups contained in a larger reported
// group are dropped.
func (s *vdState) checkSplits() {
	for _, sender := range s.lg.senders {
		byPlace := make(map[string][]*activity)
		for _, a := range s.bySender[sender] {
			if a.withdrawn {
				continue
			}
			var places []string
			for _, p := range a.latest().GetArea().GetPlaceNames() {
				places = append(places, normalize(p))
			}
			slices.Sort(places)
			for _, p := range slices.Compact(places) {
				byPlace[p] = append(byPlace[p], a)
			}
		}
		type group struct {
			members []*activity // by seq
			levels  []string
			place   string
			sum     forces
		}
		var groups []group
		seen := make(map[string]bool)
		places := make([]string, 0, len(byPlace))
		for p := range byPlace {
			places = append(places, p)
		}
		slices.Sort(places)
		for _, place := range places {
			list := byPlace[place]
			slices.SortStableFunc(list, func(a, b *activity) int { return a.start().Compare(b.start()) })
			var active []*activity
			for _, a := range list {
				t := a.start()
				active = slices.DeleteFunc(active, func(b *activity) bool { return !b.end().After(t) })
				active = append(active, a)
				if len(active) < 2 {
					continue
				}
				var sum forces
				for _, b := range active {
					for i := range sum {
						sum[i] += b.forces()[i]
					}
				}
				var levels []string
				for level := range levelNames {
					if !s.e.reaches(sum, level) {
						continue
					}
					alone := false
					for _, b := range active {
						alone = alone || s.e.reaches(b.forces(), level)
					}
					if !alone {
						levels = append(levels, levelNames[level])
					}
				}
				if len(levels) == 0 {
					continue
				}
				members := slices.Clone(active)
				slices.SortFunc(members, func(a, b *activity) int { return cmp.Compare(a.notice.seq, b.notice.seq) })
				k := groupKey(members)
				if seen[k] {
					continue
				}
				seen[k] = true
				groups = append(groups, group{members: members, levels: levels, place: place, sum: sum})
			}
		}
		for i, g := range groups {
			covered := false
			for j, h := range groups {
				if i != j && len(h.members) > len(g.members) && subset(g.members, h.members) {
					covered = true
					break
				}
			}
			if covered {
				continue
			}
			var refs []*item
			var at time.Time
			var names []string
			for _, a := range g.members {
				refs = append(refs, a.notice)
				cur := a.versions[len(a.versions)-1].it
				if cur.given.After(at) {
					at = cur.given
				}
				names = append(names, strconv.Quote(a.latest().GetDesignation()))
			}
			var reached []string
			for level := range levelNames {
				if slices.Contains(g.levels, levelNames[level]) {
					reached = append(reached, "the "+levelNames[level]+" threshold ("+s.e.reached(g.sum, level)+")")
				}
			}
			s.out.add(finding{
				rule:     RuleNear,
				severity: parleyv1.Severity_SEVERITY_ADVISORY,
				party:    sender,
				entries:  refs,
				required: "advisory: no simultaneous activities in one area that reach a threshold only together",
				seen: fmt.Sprintf("%d activities at %q at the same time together reach %s",
					len(g.members), g.place, strings.Join(reached, " and ")),
				summary: fmt.Sprintf("possible split of one activity of %s: %s", sender, strings.Join(names, ", ")),
				at:      at,
			})
		}
	}
}

func groupKey(members []*activity) string {
	var b strings.Builder
	for _, a := range members {
		b.WriteString(strconv.FormatUint(a.notice.seq, 10))
		b.WriteByte(',')
	}
	return b.String()
}

// subset reports whether every member of a (sorted by seq) is in b (sorted
// by seq).
func subset(a, b []*activity) bool {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j].notice.seq < x.notice.seq {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
	}
	return true
}
