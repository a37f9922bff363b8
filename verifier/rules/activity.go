package rules

import (
	"encoding/binary"
	"fmt"
	"iter"
	"slices"
	"time"
	"unique"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// Field indexes of [forces].
const (
	fieldTroops = iota
	fieldTanks
	fieldACVs
	fieldArtillery
	fieldSorties
	fieldLanding
	numFields
)

var fieldNames = [numFields]string{"troops", "battle tanks", "ACVs", "artillery pieces", "fixed-wing sorties", "landing troops"}

// Threshold levels.
const (
	levelNotify = iota
	levelObserve
)

var levelNames = [2]string{"notification", "observation"}

// forces are the declared numbers the thresholds apply to.
type forces [numFields]uint64

// forcesOf extracts the threshold-relevant numbers. Landing troops are the
// airborne plus amphibious troops; for an activity whose type is a landing,
// at least its total troops.
func forcesOf(f *parleyv1.Forces, t parleyv1.ActivityType) forces {
	var out forces
	out[fieldTroops] = uint64(f.GetTroops())
	out[fieldTanks] = uint64(f.GetBattleTanks())
	out[fieldACVs] = uint64(f.GetAcvs())
	out[fieldArtillery] = uint64(f.GetArtillery())
	out[fieldSorties] = uint64(f.GetFixedWingSorties())
	out[fieldLanding] = uint64(f.GetAirborneTroops()) + uint64(f.GetAmphibiousTroops())
	switch t {
	case parleyv1.ActivityType_ACTIVITY_TYPE_AMPHIBIOUS_LANDING,
		parleyv1.ActivityType_ACTIVITY_TYPE_HELIBORNE_LANDING,
		parleyv1.ActivityType_ACTIVITY_TYPE_PARACHUTE_ASSAULT:
		out[fieldLanding] = max(out[fieldLanding], out[fieldTroops])
	}
	return out
}

// reaches reports whether f reaches (>=) any threshold of the level.
func (e *Engine) reaches(f forces, level int) bool {
	for i, limit := range e.limits[level] {
		if limit > 0 && f[i] >= limit {
			return true
		}
	}
	return false
}

// reached describes the thresholds of the level that f reaches, e.g.
// "troops 9,500 >= 9,000".
func (e *Engine) reached(f forces, level int) string {
	var s string
	for i, limit := range e.limits[level] {
		if limit > 0 && f[i] >= limit {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%s %s >= %s", fieldNames[i], fmtCount(f[i]), fmtCount(limit))
		}
	}
	return s
}

// large reports whether f exceeds (>) a constraining-provision threshold,
// and describes it.
func (e *Engine) large(f forces) (bool, string) {
	var s string
	if f[fieldTroops] > uint64(e.vd.LargeTroops) {
		s = fmt.Sprintf("troops %s > %s", fmtCount(f[fieldTroops]), fmtCount(uint64(e.vd.LargeTroops)))
	}
	if f[fieldTanks] > uint64(e.vd.LargeBattleTanks) {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("battle tanks %s > %s", fmtCount(f[fieldTanks]), fmtCount(uint64(e.vd.LargeBattleTanks)))
	}
	return s != "", s
}

// content is what the rules read of an activity's content, a
// notification's or an amendment's: derived once from the proto, so that
// neither the engine nor a caller holding a large log need keep the
// statements of its notifications (see [Compact]).
type content struct {
	designation string                // as given
	places      placeList             // normalised
	host        unique.Handle[string] // the host state; zero if not stated
	// The start and end, and the forces, are held field by field, so that
	// no padding is left between them: 96 bytes in all, where a stamp and
	// a struct of forces each would take 112.
	landing          uint64               // the landing troops, a sum of two 32-bit numbers
	fromSec, toSec   int64                // start and end: Unix seconds
	upToSorties      [fieldLanding]uint32 // the other forces, in field order
	fromNsec, toNsec int32                // start and end: nanoseconds
	hasFrom, hasTo   bool                 // whether start and end were given
	alert            bool
}

// from returns the start; unset if none was given.
func (c *content) from() stamp { return stamp{sec: c.fromSec, nsec: c.fromNsec, set: c.hasFrom} }

// to returns the end; unset if none was given.
func (c *content) to() stamp { return stamp{sec: c.toSec, nsec: c.toNsec, set: c.hasTo} }

// forces returns the forces.
func (c *content) forces() forces {
	var f forces
	for i, v := range c.upToSorties {
		f[i] = uint64(v)
	}
	f[fieldLanding] = c.landing
	return f
}

// setForces sets the forces: every field but the landing troops must fit
// in 32 bits, as those of a [parleyv1.Forces] do.
func (c *content) setForces(f forces) {
	for i := range c.upToSorties {
		c.upToSorties[i] = uint32(f[i])
	}
	c.landing = f[fieldLanding]
}

// contentOf derives the content of n, which may be nil. It returns it by
// value: a compacted notification holds it in place (see Compact).
func contentOf(n *parleyv1.ActivityNotification) content {
	c := content{designation: n.GetDesignation(), alert: n.GetAlert()}
	c.setForces(forcesOf(n.GetForces(), n.GetType()))
	from, to := stampOf(n.GetStart()), stampOf(n.GetEnd())
	c.fromSec, c.fromNsec, c.hasFrom = from.sec, from.nsec, from.set
	c.toSec, c.toNsec, c.hasTo = to.sec, to.nsec, to.set
	if h := n.GetHostState(); h != "" {
		// A handle, not a string: most activities state none, and those
		// that do name one of a few parties.
		c.host = unique.Make(h)
	}
	if names := n.GetArea().GetPlaceNames(); len(names) > 0 {
		norm := make([]string, 0, len(names))
		for _, p := range names {
			norm = append(norm, normalize(p))
		}
		slices.Sort(norm)
		c.places = makePlaceList(slices.Compact(norm))
	}
	return c
}

// placeList is the normalised place names of an activity, sorted and
// unique, as one string: each name as its length (uvarint) and its bytes.
// The lists are interned, so that the activities of a log at the same
// places share one copy; a content holds a string header instead of a
// slice of names.
type placeList string

// makePlaceList returns the list of names, which must be normalised,
// sorted and unique.
func makePlaceList(names []string) placeList {
	var b []byte
	for _, n := range names {
		b = binary.AppendUvarint(b, uint64(len(n)))
		b = append(b, n...)
	}
	return placeList(unique.Make(string(b)).Value())
}

// empty reports whether the list has no name.
func (l placeList) empty() bool { return l == "" }

// all yields the names in order: parts of the list, not copies.
func (l placeList) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		for rest := string(l); rest != ""; {
			// The conversion of at most ten bytes, which Uvarint does not
			// keep, does not allocate.
			n, k := binary.Uvarint([]byte(rest[:min(len(rest), binary.MaxVarintLen64)]))
			name := rest[k : k+int(n)]
			rest = rest[k+int(n):]
			if !yield(name) {
				return
			}
		}
	}
}

// hostState returns the host state stated; empty if none.
func (c *content) hostState() string {
	if c.host == (unique.Handle[string]{}) {
		return ""
	}
	return c.host.Value()
}

// norm returns the designation normalised. It is not kept: a normalised
// copy of every activity's designation would cost about 40 bytes per
// activity for the whole evaluation.
func (c *content) norm() string { return normalize(c.designation) }

// valid reports whether the content has what the rules need: a start and
// an end not before it.
func (c *content) valid() bool {
	return c.hasFrom && c.hasTo && !c.to().time().Before(c.from().time())
}

// version is one state of a notified activity: the original notification
// or an amendment that took effect.
type version struct {
	it  *item
	act *content
}

// activity is a notified activity with its amendments and cancellation.
type activity struct {
	first version // the original notification's version
	// amended holds the versions of the amendments that took effect, in
	// seq order; nil if none did (most activities: a pointer costs less
	// than a slice header in every one). The last version is in effect.
	amended *[]version
	cancel  *item // the cancellation that took effect, if any
	// since is the index of a version (see version), or -1: see
	// notifiableSince. Set by refresh.
	since int32
	// withdrawn is set when the cancellation was given by the start: the
	// activity then did not take place and no other rule applies to it.
	withdrawn bool
}

// notice returns the original notification.
func (a *activity) notice() *item { return a.first.it }

// sender returns the activity's sender.
func (a *activity) sender() string { return a.notice().sender }

// each yields a pointer to every activity of acts, in order.
func each(acts []activity) iter.Seq[*activity] {
	return func(yield func(*activity) bool) {
		for i := range acts {
			if !yield(&acts[i]) {
				return
			}
		}
	}
}

// versions returns how many versions the activity has: the original
// notification and the amendments that took effect.
func (a *activity) versions() int {
	if a.amended == nil {
		return 1
	}
	return 1 + len(*a.amended)
}

// version returns version i, in seq order: 0 is the original notification.
func (a *activity) version(i int) *version {
	if i == 0 {
		return &a.first
	}
	return &(*a.amended)[i-1]
}

// current returns the version in effect: the last.
func (a *activity) current() *version { return a.version(a.versions() - 1) }

// refresh updates since after a version was appended.
func (a *activity) refresh(e *Engine) {
	switch {
	case !e.reaches(a.forces(), levelNotify):
		a.since = -1
	case a.versions() == 1 || a.since < 0:
		a.since = int32(a.versions() - 1)
	}
}

// latest returns the content in effect.
func (a *activity) latest() *content { return a.current().act }

// start returns the start in effect.
func (a *activity) start() time.Time { return a.latest().from().time() }

// end returns the end in effect.
func (a *activity) end() time.Time { return a.latest().to().time() }

// forces returns the forces in effect.
func (a *activity) forces() forces { return a.latest().forces() }

// places returns the normalised place names in effect, sorted, unique.
func (a *activity) places() placeList { return a.latest().places }

// designations yields the normalised designation of every version, in seq
// order (with repetitions).
func (a *activity) designations() iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range a.versions() {
			if !yield(a.version(i).act.norm()) {
				return
			}
		}
	}
}

// notifiableSince returns the version from which the activity reached a
// notification threshold without interruption up to the version in
// effect, or nil if the version in effect reaches none. Lead times count
// from it.
func (a *activity) notifiableSince() *version {
	if a.since < 0 {
		return nil
	}
	return a.version(int(a.since))
}

// describe names the activity for summaries.
func (a *activity) describe() string {
	return fmt.Sprintf("%q (%s seq %d)", a.latest().designation, a.sender(), a.notice().seq)
}

// buildActivities collects the notified activities of every sender, applies
// amendments and cancellations in seq order, and reports VD.V.amend.
// Amendments that refer to nothing are returned for VD.V.lead.
func (s *vdState) buildActivities() (dangling []*item) {
	// The activities live in one array, their first versions in them,
	// and each sender's are a part of it: the array is not grown, since
	// items point into it.
	n := 0
	for _, it := range s.lg.all {
		if it.isNotification() {
			n++
		}
	}
	s.acts = make([]activity, 0, n)
	for _, sender := range s.lg.senders {
		from := len(s.acts)
		for _, it := range s.lg.feeds[sender] {
			if c := it.notification(); c != nil {
				if !c.valid() {
					continue
				}
				s.acts = append(s.acts, activity{first: version{it, c}})
				a := &s.acts[len(s.acts)-1]
				a.refresh(s.e)
				it.actAt = int32(len(s.acts))
				continue
			}
			switch b := it.body().GetKind().(type) {
			case *parleyv1.Body_Amendment:
				a := s.target(it, b.Amendment.GetTargetSeq(), "amendment")
				c := contentOf(b.Amendment.GetActivity())
				if a == nil {
					if c.valid() {
						dangling = append(dangling, it)
					}
					continue
				}
				s.amend(a, it, &c)
			case *parleyv1.Body_Cancellation:
				if a := s.target(it, b.Cancellation.GetTargetSeq(), "cancellation"); a != nil {
					s.cancel(a, it)
				}
			}
		}
		if len(s.acts) > from {
			s.bySender[sender] = s.acts[from:len(s.acts):len(s.acts)]
		}
	}
	return dangling
}

// target resolves the notification an amendment or cancellation refers to,
// reporting VD.V.amend if it is not an earlier notification of the same
// sender.
func (s *vdState) target(it *item, seq uint64, what string) *activity {
	if seq < it.seq {
		if t := s.lg.item(it.sender, seq); t != nil {
			if a := s.activityOf(t); a != nil && a.notice() == t {
				return a
			}
		}
	}
	var seen string
	switch t := s.lg.item(it.sender, seq); {
	case seq >= it.seq:
		seen = fmt.Sprintf("target seq %d is not earlier than the %s (seq %d)", seq, what, it.seq)
	case t == nil:
		seen = fmt.Sprintf("target seq %d is not in %s's feed", seq, it.sender)
	default:
		seen = fmt.Sprintf("target seq %d is %s, not a notification", seq, t.kindName())
	}
	refs := []*item{it}
	if t := s.lg.item(it.sender, seq); t != nil {
		refs = append(refs, t)
	}
	s.out.add(finding{
		rule:     RuleAmend,
		severity: parleyv1.Severity_SEVERITY_VIOLATION,
		party:    it.sender,
		entries:  refs,
		required: fmt.Sprintf("the %s refers to an earlier notification of %s", what, it.sender),
		seen:     seen,
		summary:  fmt.Sprintf("%s seq %d of %s refers to no notification", what, it.seq, it.sender),
		at:       it.given(),
	})
	return nil
}

// amend applies an amendment, unless the activity is cancelled or over.
func (s *vdState) amend(a *activity, it *item, n *content) {
	refs := []*item{a.notice(), it}
	switch {
	case a.cancel != nil:
		s.out.add(finding{
			rule:     RuleAmend,
			severity: parleyv1.Severity_SEVERITY_VIOLATION,
			party:    a.sender(),
			entries:  append(refs, a.cancel),
			required: "amendments only of activities not cancelled",
			seen:     fmt.Sprintf("amendment seq %d after cancellation seq %d", it.seq, a.cancel.seq),
			summary:  fmt.Sprintf("amendment of cancelled activity %s", a.describe()),
			at:       it.given(),
		})
	case it.given().After(a.end()):
		s.out.add(finding{
			rule:     RuleAmend,
			severity: parleyv1.Severity_SEVERITY_VIOLATION,
			party:    a.sender(),
			entries:  refs,
			required: fmt.Sprintf("amendment given by the end of the activity %s", fmtTime(a.end())),
			seen:     fmt.Sprintf("given %s, %s after the end; not applied", fmtTime(it.given()), fmtDur(it.given().Sub(a.end()), true)),
			summary:  fmt.Sprintf("amendment of %s after its end", a.describe()),
			at:       it.given(),
		})
	case !n.valid():
		// Without content there is nothing to apply; the schema validator
		// rejects such an amendment before it reaches the log.
	default:
		if a.amended == nil {
			a.amended = new([]version)
		}
		*a.amended = append(*a.amended, version{it, n})
		a.refresh(s.e)
		it.actAt = a.notice().actAt
	}
}

// cancel applies a cancellation and reports late ones.
func (s *vdState) cancel(a *activity, it *item) {
	refs := []*item{a.notice(), it}
	f := finding{rule: RuleAmend, party: a.sender(), entries: refs, at: it.given()}
	switch {
	case a.cancel != nil:
		f.severity = parleyv1.Severity_SEVERITY_LOW
		f.entries = append(refs, a.cancel)
		f.required = "one cancellation per activity"
		f.seen = fmt.Sprintf("cancellation seq %d repeats cancellation seq %d", it.seq, a.cancel.seq)
		f.summary = fmt.Sprintf("repeated cancellation of %s", a.describe())
	case it.given().After(a.end()):
		f.severity = parleyv1.Severity_SEVERITY_VIOLATION
		f.required = fmt.Sprintf("cancellation given by the end of the activity %s", fmtTime(a.end()))
		f.seen = fmt.Sprintf("given %s, %s after the end; not applied", fmtTime(it.given()), fmtDur(it.given().Sub(a.end()), true))
		f.summary = fmt.Sprintf("cancellation of %s after its end", a.describe())
	case it.given().After(a.start()):
		a.cancel = it
		f.severity = parleyv1.Severity_SEVERITY_LOW
		f.required = fmt.Sprintf("cancellation given by the start of the activity %s", fmtTime(a.start()))
		f.seen = fmt.Sprintf("given %s, %s after the start; the activity is still judged", fmtTime(it.given()), fmtDur(it.given().Sub(a.start()), true))
		f.summary = fmt.Sprintf("cancellation of %s after its start", a.describe())
	default:
		a.cancel = it
		a.withdrawn = true
		return
	}
	s.out.add(f)
}

// kindName names the body kind of an entry for findings.
func kindName(b *parleyv1.Body) string {
	switch b.GetKind().(type) {
	case *parleyv1.Body_Notification:
		return "a notification"
	case *parleyv1.Body_Amendment:
		return "an amendment"
	case *parleyv1.Body_Cancellation:
		return "a cancellation"
	case *parleyv1.Body_Calendar:
		return "a calendar"
	case *parleyv1.Body_Invitation:
		return "an observation invitation"
	case *parleyv1.Body_ConsultationRequest:
		return "a consultation request"
	case *parleyv1.Body_ConsultationResponse:
		return "a consultation response"
	case *parleyv1.Body_Receipt:
		return "a receipt"
	case *parleyv1.Body_Launch:
		return "a launch notification"
	}
	return "an unknown body"
}
