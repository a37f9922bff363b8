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
	cur := a.current().it
	s.out.add(finding{
		rule:     RuleNear,
		severity: parleyv1.Severity_SEVERITY_ADVISORY,
		party:    a.sender(),
		entries:  []*item{a.notice(), cur},
		required: fmt.Sprintf("advisory: declared values not within %d%% below a threshold", s.e.vd.NearMarginPercent),
		seen:     strings.Join(seen, "; "),
		summary:  fmt.Sprintf("activity %s declared just below a threshold", a.describe()),
		at:       cur.given(),
	})
}

// listedEnds bounds the entries of a finding about many activities: of
// more than 2*listedEnds, it names the first and the last listedEnds and
// counts the others.
const listedEnds = 10

// checkSplits judges the second half of VD.near: activities of one sender
// that run at the same time at a place of the same name and together reach
// a notification or observation threshold that none of them reaches alone
// (a possible split).
//
// For each sender, level and place, the candidate parts are the sender's
// activities there (not withdrawn, with a non-empty period) that reach no
// threshold of the level alone: a lane. A split is a largest set of the
// lane running at one instant (a maximal clique of the lane's interval
// graph) whose sum reaches a threshold of the level.
//
// A sweep over the lane's starts and ends, ends first at equal times since
// periods are [start, end), keeps the running set with its size, its sum,
// and per place and level the number of its members that have that place
// or reach no threshold of that level; each event updates them in O(1) per
// place of the activity. Any set running at one instant is contained in
// the running set after the start of its member that starts last, so the
// maximal sets are among those. The running set after a start is maximal
// exactly when the next event is an end:
//
//   - If the next event is a start, the next running set is a strict
//     superset: not maximal.
//   - If it is an end, it removes a member, which no later running set
//     holds again; and no earlier running set holds the activity that just
//     started. So no other running set contains this one: maximal.
//
// Each maximal set G is thus seen once in its lane, after the start of its
// member a that starts last (by start, then seq), and is exactly the lane's
// members whose period overlaps I = [start of a, first end in G).
//
// G may also be a maximal set in the lane (q, l) of another place or
// level, or be strictly contained in one. Such a lane has all members of
// G: q is then a place of a whose count equals |G|, and the count for l
// equals |G|. Every member of G overlaps I, so that lane's members
// overlapping I, counted with two binary searches, are either exactly G (G
// is a maximal set there too, seen after the start of the same a) or more
// (G is strictly contained in a maximal set there). G is reported once,
// for the levels l at which it reaches a threshold and is not strictly
// contained in a set of level l, by the lane of the smallest place, then
// level, where it is a maximal set; not at all if it is strictly contained
// in a set of its own level. Every lane that sees G computes the same from
// the same a, so the result does not depend on which looks; a lane whose
// place is not the smallest that all of G shares leaves G to that one.
//
// Per sender, for n (activity, place) pairs and at most p place names per
// activity (64 in the schema): time O(n p log n), plus O(k log n) for each
// finding that lists k activities; memory O(n).
func (s *vdState) checkSplits() {
	for _, sender := range s.lg.senders {
		var acts []*activity
		id := make(map[string]int)
		for a := range each(s.bySender[sender]) {
			if !a.withdrawn && a.start().Before(a.end()) && !a.places().empty() {
				acts = append(acts, a)
				for p := range a.places().all() {
					if _, ok := id[p]; !ok {
						id[p] = len(id)
					}
				}
			}
		}
		if len(acts) < 2 {
			continue
		}
		slices.SortFunc(acts, func(a, b *activity) int {
			return cmp.Or(a.start().Compare(b.start()), cmp.Compare(a.notice().seq, b.notice().seq))
		})
		names := make([]string, 0, len(id))
		for p := range id {
			names = append(names, p)
		}
		slices.Sort(names)
		for i, p := range names {
			id[p] = i
		}
		sp := &splits{s: s, sender: sender, acts: acts, names: names,
			placeAt: make([]int32, 1, len(acts)+1), count: make([]int, len(names))}
		for level := range sp.lanes {
			sp.lanes[level] = make([]lane, len(names))
		}
		for i, a := range acts {
			for p := range a.places().all() {
				sp.placeIDs = append(sp.placeIDs, int32(id[p]))
			}
			sp.placeAt = append(sp.placeAt, int32(len(sp.placeIDs)))
			for level := range sp.lanes {
				if s.e.reaches(a.forces(), level) {
					continue
				}
				for _, p := range sp.placesOf(i) {
					l := &sp.lanes[level][p]
					l.byStart = append(l.byStart, int32(i))
				}
			}
		}
		for level := range sp.lanes {
			for p := range sp.lanes[level] {
				l := &sp.lanes[level][p]
				l.byEnd = make([]int32, len(l.byStart))
				for k := range l.byEnd {
					l.byEnd[k] = int32(k)
				}
				slices.SortStableFunc(l.byEnd, func(i, j int32) int { return acts[l.byStart[i]].end().Compare(acts[l.byStart[j]].end()) })
			}
		}
		for p := range names {
			for level := range sp.lanes {
				sp.sweep(p, level)
			}
		}
	}
}

// placesOf returns the places of acts[i], as indexes in names, ascending.
func (sp *splits) placesOf(i int) []int32 { return sp.placeIDs[sp.placeAt[i]:sp.placeAt[i+1]] }

// splits is the split check of one sender.
type splits struct {
	s      *vdState
	sender string
	acts   []*activity // by start, then seq
	names  []string    // the places, sorted
	// The places of acts[i] (indexes in names, ascending) are
	// placeIDs[placeAt[i]:placeAt[i+1]]: one array for all, not one per
	// activity.
	placeIDs []int32
	placeAt  []int32
	lanes    [2][]lane // per level and place

	// The running set of a sweep: its size, sum, the number of members
	// per place and the number of members below each level.
	size  int
	sum   forces
	count []int
	below [2]int
}

// lane holds the activities at one place that reach no threshold of one
// level alone, as indexes in acts.
type lane struct {
	byStart []int32 // by start, then seq
	byEnd   []int32 // indexes in byStart, by end, then start and seq
}

// overlapping counts the members whose period overlaps [from, to), from
// before to: those that start before to, less those that end by from
// (which all start before to).
func (sp *splits) overlapping(l *lane, from, to time.Time) int {
	n, _ := slices.BinarySearchFunc(l.byStart, to, func(i int32, t time.Time) int { return cmp.Or(sp.acts[i].start().Compare(t), 1) })
	m, _ := slices.BinarySearchFunc(l.byEnd, from, func(i int32, t time.Time) int {
		if sp.acts[l.byStart[i]].end().After(t) {
			return 1
		}
		return -1
	})
	return n - m
}

// members is the running set of a sweep by seq rank, as a segment tree
// counting the members under each node and holding the current version,
// given last, of any of them. The tree has 2n-1 nodes for n ranks, not
// twice the next power of two: node v covers ranks [lo, hi); if it has
// more than one, its left child v+1 covers [lo, mid) and its right child
// v+2(mid-lo) covers [mid, hi), with mid = (lo+hi)/2. The root is node 0.
type members struct {
	n     int
	count []int32
	last  []*item
}

func newMembers(n int) *members {
	return &members{n: n, count: make([]int32, 2*n-1), last: make([]*item, 2*n-1)}
}

// set puts it at rank r, or takes the member at r out if it is nil.
func (m *members) set(r int, it *item) {
	// The nodes from the root down to r's leaf, and the size of each one's
	// left child; at most 63 for ranks that fit an int.
	var path [64]struct{ node, left int }
	depth, v, lo, hi := 0, 0, 0, m.n
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		path[depth] = struct{ node, left int }{v, mid - lo}
		depth++
		if r < mid {
			v, hi = v+1, mid
		} else {
			v, lo = v+2*(mid-lo), mid
		}
	}
	m.last[v] = it
	m.count[v] = 0
	if it != nil {
		m.count[v] = 1
	}
	for depth > 0 {
		depth--
		p := path[depth]
		a, b := p.node+1, p.node+2*p.left
		l, r := m.last[a], m.last[b]
		if l == nil || r != nil && r.givenAt.after(l.givenAt) {
			l = r
		}
		m.count[p.node], m.last[p.node] = m.count[a]+m.count[b], l
	}
}

// latest returns the member given last; nil if there is none.
func (m *members) latest() *item { return m.last[0] }

// nth returns the rank of the member with n members before it.
func (m *members) nth(n int) int {
	v, lo, hi := 0, 0, m.n
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if left := v + 1; int(m.count[left]) > n {
			v, hi = left, mid
		} else {
			n -= int(m.count[left])
			v, lo = v+2*(mid-lo), mid
		}
	}
	return lo
}

// sweep reports the splits of the lane of place p and level.
func (sp *splits) sweep(p, level int) {
	l := &sp.lanes[level][p]
	n := len(l.byStart)
	if n < 2 {
		return
	}
	bySeq := make([]int32, n) // indexes in byStart, by seq
	for k := range bySeq {
		bySeq[k] = int32(k)
	}
	slices.SortFunc(bySeq, func(i, j int32) int {
		return cmp.Compare(sp.acts[l.byStart[i]].notice().seq, sp.acts[l.byStart[j]].notice().seq)
	})
	rank := make([]int32, n)
	for r, k := range bySeq {
		rank[k] = int32(r)
	}
	set := newMembers(n)
	byRank := func(r int) *activity { return sp.acts[l.byStart[bySeq[r]]] }

	// enter adds the member at index k of byStart to the running set, or
	// takes it out.
	enter := func(k int32, in bool) {
		i := l.byStart[k]
		a := sp.acts[i]
		af := a.forces()
		d := 1
		if in {
			set.set(int(rank[k]), a.current().it)
			for f := range sp.sum {
				sp.sum[f] += af[f]
			}
		} else {
			d = -1
			set.set(int(rank[k]), nil)
			for f := range sp.sum {
				sp.sum[f] -= af[f]
			}
		}
		sp.size += d
		for _, q := range sp.placesOf(int(i)) {
			sp.count[q] += d
		}
		for lv := range sp.below {
			if !sp.s.e.reaches(af, lv) {
				sp.below[lv] += d
			}
		}
	}
	// Event i is the start of byStart[i], event j the end of
	// byStart[byEnd[j]]; ends go first at equal times. The loop ends
	// with the running set empty again.
	startOf := func(i int) time.Time { return sp.acts[l.byStart[i]].start() }
	endOf := func(j int) time.Time { return sp.acts[l.byStart[l.byEnd[j]]].end() }
	for i, j := 0, 0; j < n; {
		if i == n || !endOf(j).After(startOf(i)) {
			enter(l.byEnd[j], false)
			j++
			continue
		}
		enter(int32(i), true)
		i++
		if i < n && endOf(j).After(startOf(i)) {
			continue // the next event is a start: not a maximal set
		}
		if sp.size >= 2 && sp.s.e.reaches(sp.sum, level) {
			sp.judge(p, level, int(l.byStart[i-1]), endOf(j), set, byRank)
		}
	}
}

// judge reports the maximal set G of the lane of place p and level seen
// after the start of acts[ai], the first member to end ending at to; see
// checkSplits.
func (sp *splits) judge(p, level, ai int, to time.Time, set *members, byRank func(int) *activity) {
	a := sp.acts[ai]
	for _, q := range sp.placesOf(ai) { // ascending
		if int(q) >= p {
			break
		}
		if sp.count[q] == sp.size {
			return // G is in the lane of q and level: judged there
		}
	}
	var contained [2]bool
	type lanePos struct{ place, level int }
	var same []lanePos
	for lv := range sp.lanes {
		if sp.below[lv] != sp.size {
			continue
		}
		for _, q := range sp.placesOf(ai) {
			if sp.count[q] != sp.size {
				continue
			}
			n := sp.size
			if int(q) != p || lv != level {
				n = sp.overlapping(&sp.lanes[lv][q], a.start(), to)
			}
			if n > sp.size {
				contained[lv] = true
			} else {
				same = append(same, lanePos{int(q), lv})
			}
		}
	}
	if contained[level] {
		return
	}
	var levels [2]bool
	for _, x := range same {
		if !contained[x.level] && sp.s.e.reaches(sp.sum, x.level) {
			if x.place < p || x.place == p && x.level < level {
				return // reported from that lane
			}
			levels[x.level] = true
		}
	}
	sp.report(p, levels, set, byRank)
}

// report reports the running set as a split at place p reaching the
// thresholds of levels; byRank returns the member of a seq rank.
func (sp *splits) report(p int, levels [2]bool, set *members, byRank func(int) *activity) {
	var reached []string
	for level, ok := range levels {
		if ok {
			reached = append(reached, "the "+levelNames[level]+" threshold ("+sp.s.e.reached(sp.sum, level)+")")
		}
	}
	var refs []*item
	var names []string
	for _, n := range listed(sp.size) {
		a := byRank(set.nth(n))
		refs = append(refs, a.notice())
		names = append(names, strconv.Quote(a.latest().designation))
	}
	seen := fmt.Sprintf("%d activities at %q at the same time together reach %s", sp.size, sp.names[p], strings.Join(reached, " and "))
	summary := fmt.Sprintf("possible split of one activity of %s: %s", sp.sender, strings.Join(names, ", "))
	if len(refs) < sp.size {
		seen += fmt.Sprintf("; listed are the %d with the lowest and the %d with the highest seq", listedEnds, listedEnds)
		summary += fmt.Sprintf(" and %s more", fmtCount(uint64(sp.size-len(refs))))
	}
	sp.s.out.add(finding{
		rule:     RuleNear,
		severity: parleyv1.Severity_SEVERITY_ADVISORY,
		party:    sp.sender,
		entries:  refs,
		required: "advisory: no simultaneous activities in one area that reach a threshold only together",
		seen:     seen,
		summary:  summary,
		at:       set.latest().given(),
	})
}

// listed returns the positions, among n in order, that a finding names:
// all of them, or the first and the last listedEnds.
func listed(n int) []int {
	out := make([]int, 0, min(n, 2*listedEnds))
	for i := 0; i < n; i++ {
		if i == listedEnds && n > 2*listedEnds {
			i = n - listedEnds // skip the middle
		}
		out = append(out, i)
	}
	return out
}
