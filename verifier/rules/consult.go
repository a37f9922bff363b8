package rules

import (
	"fmt"
	"time"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// checkConsultations judges VD.III.consult: a request for an explanation
// (or a meeting) addressed to another party is answered by that party
// within ConsultReplyHours (MeetingWithinHours) of the addressee's receipt
// of the request.
func (s *vdState) checkConsultations() {
	responses := make(map[key][]*item)
	for _, it := range s.lg.all {
		if r := it.body().GetConsultationResponse(); r != nil {
			k := key{r.GetRequester(), r.GetRequestSeq()}
			responses[k] = append(responses[k], it)
		}
	}
	for _, req := range s.lg.all {
		r := req.body().GetConsultationRequest()
		if r == nil {
			continue
		}
		addressee := r.GetAddressee()
		if _, ok := s.e.party[addressee]; !ok || addressee == req.sender {
			continue
		}
		var hours int
		switch r.GetKind() {
		case parleyv1.ConsultationKind_CONSULTATION_KIND_EXPLANATION:
			hours = s.e.vd.ConsultReplyHours
		case parleyv1.ConsultationKind_CONSULTATION_KIND_MEETING:
			hours = s.e.vd.MeetingWithinHours
		default:
			continue // no agreed deadline for hazardous incident reports
		}
		base, from := req.given(), "given"
		if a := s.lg.ackBy(s.e, req, addressee); a.ok() {
			base, from = a.received(), "received by "+addressee
		}
		due := base.Add(time.Duration(hours) * time.Hour)

		var first *item
		for _, resp := range responses[key{req.sender, req.seq}] {
			if resp.sender == addressee && (first == nil || resp.given().Before(first.given())) {
				first = resp
			}
		}
		if first != nil && !first.given().After(due) || first == nil && !s.now.After(due) {
			continue // in time, or not yet due
		}
		f := finding{
			rule:     RuleConsult,
			severity: parleyv1.Severity_SEVERITY_VIOLATION,
			party:    addressee,
			entries:  []*item{req},
			required: fmt.Sprintf("a response from %s within %dh of the request (%s %s), by %s", addressee, hours, from, fmtTime(base), fmtTime(due)),
		}
		if first != nil {
			f.entries = append(f.entries, first)
			f.seen = fmt.Sprintf("response seq %d given %s, %s after the request", first.seq, fmtTime(first.given()), fmtDur(first.given().Sub(base), false))
			f.summary = fmt.Sprintf("late response of %s to consultation request %s seq %d", addressee, req.sender, req.seq)
			f.at = first.given()
		} else {
			f.seen = fmt.Sprintf("no response by %s", fmtTime(due))
			f.summary = fmt.Sprintf("%s did not answer consultation request %s seq %d", addressee, req.sender, req.seq)
			f.at = due
		}
		s.out.add(f)
	}
}
