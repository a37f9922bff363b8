package rules

import (
	"fmt"
	"time"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// checkReceipts judges RX.receipt: every substantive (non-receipt) entry is
// acknowledged by every other party, with the entry's digest, within the
// receipt window of its t_given. A party's acknowledgement counts at the
// later of the received_at it states and the issued_at of its receipt.
func (e *Engine) checkReceipts(lg *logIndex, now time.Time, out *collector) {
	for _, it := range lg.all {
		if it.isReceipt() {
			continue
		}
		due := it.given().Add(e.window)
		for i, p := range e.parties {
			if p == it.sender {
				continue
			}
			var a ack
			if acks := lg.acksOf(it); acks != nil {
				a = acks[i]
			}
			if a.ok() && !a.at().After(due) || !a.ok() && !now.After(due) {
				continue // in time, or not yet due
			}
			f := finding{
				rule:     RuleReceipt,
				severity: parleyv1.Severity_SEVERITY_VIOLATION,
				party:    p,
				entries:  []*item{it},
				required: fmt.Sprintf("a receipt by %s within %s of the entry being given %s (by %s)", p, fmtDur(e.window, false), fmtTime(it.given()), fmtTime(due)),
			}
			if a.ok() {
				f.entries = append(f.entries, a.by)
				f.seen = fmt.Sprintf("acknowledged %s in receipt seq %d, %s after the entry", fmtTime(a.at()), a.by.seq, fmtDur(a.at().Sub(it.given()), false))
				f.summary = fmt.Sprintf("late receipt by %s of %s seq %d", p, it.sender, it.seq)
				f.at = a.at()
			} else {
				f.seen = fmt.Sprintf("no receipt by %s", fmtTime(due))
				f.summary = fmt.Sprintf("no receipt by %s of %s seq %d (not acknowledged, or not delivered)", p, it.sender, it.seq)
				f.at = due
			}
			out.add(f)
		}
	}
}
