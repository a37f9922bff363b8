package rules

import (
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
)

// receiptForm returns entries with every receipt given as a Receipt
// instead of its statement, as the mediator's audit gives them.
func receiptForm(entries []Entry) []Entry {
	out := make([]Entry, len(entries))
	for i, en := range entries {
		out[i] = en
		it := &item{st: en.Statement}
		if !it.isReceipt() {
			continue
		}
		out[i].Statement = nil
		out[i].Receipt = &Receipt{IssuedAt: it.issued(), Acks: it.receiptAcks()}
	}
	return out
}

// checkReceiptForm fails if the findings differ when the receipts are
// given as Receipts.
func checkReceiptForm(tb testing.TB, e *Engine, entries []Entry, now time.Time) {
	tb.Helper()
	if got, want := dump(e.Evaluate(receiptForm(entries), now)), dump(e.Evaluate(entries, now)); got != want {
		tb.Errorf("findings with receipts as Receipt:\n%s\nwant, as with their statements:\n%s", got, want)
	}
}

func TestReceiptForm(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules agreement.Rules
		log   func(testing.TB, int) ([]Entry, time.Time)
	}{
		{name: "bench", log: benchLog},
		{name: "split", log: splitLog},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, now := tc.log(t, 3000)
			checkReceiptForm(t, newEngine(t, tc.rules), entries, now)
		})
	}
}
