package server_test

import (
	"context"
	stdnet "net"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/server"
)

// TestReceiptsRecoveredAfterCrash: entries that a node accepted but had not
// yet receipted when it stopped without writing that receipt (a crash) are
// receipted when it starts again, from what it reads of its log's tail.
func TestReceiptsRecoveredAfterCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net := bareNetwork(t)
	// Alpha writes a receipt at once for the first entry it accepts, and
	// then at most one an hour: the acknowledgements of later entries wait.
	l := reservedListener(t, net, "alpha")
	addr := l.Addr().String()
	alpha, stopAlpha := runNodeOn(t, net, "alpha", l, func(c *server.Config) {
		c.Exchange.PeerTLS = nil
		c.Exchange.ReceiptDelay = time.Hour
	})
	// Bravo delivers to alpha; charlie does not run.
	startNode(t, net, "bravo", func(c *server.Config) {
		c.Exchange.PeerAddresses = map[string]string{"charlie": "127.0.0.1:1"}
	})
	bravo, err := net.Operator(ctx, "bravo")
	if err != nil {
		t.Fatal(err)
	}
	defer bravo.Close()
	notify := func(troops uint32) localnet.EntryKey {
		t.Helper()
		e, err := bravo.Notify(ctx, notification(troops))
		if err != nil {
			t.Fatal(err)
		}
		return localnet.EntryKey{Sender: "bravo", Seq: e.GetSeq()}
	}
	receiptedByAlpha := func(ks ...localnet.EntryKey) func() (bool, error) {
		return func() (bool, error) {
			h, err := net.Holdings(ctx, "alpha")
			if err != nil {
				return false, err
			}
			for _, k := range ks {
				if !h.ReceiptedBy(k, "alpha") {
					return false, nil
				}
			}
			return true, nil
		}
	}
	first := notify(100)
	waitFor(t, 30*time.Second, "alpha's receipt of bravo's first entry", receiptedByAlpha(first))
	later := []localnet.EntryKey{notify(101), notify(102)}
	waitFor(t, 30*time.Second, "alpha to accept bravo's later entries and queue their acknowledgements", func() (bool, error) {
		return alpha.PendingAcks() == len(later), nil
	})
	if n := alpha.DropPendingAcks(); n != len(later) {
		t.Fatalf("dropped %d acknowledgements, want %d", n, len(later))
	}
	stopAlpha()

	l, err = stdnet.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	runNodeOn(t, net, "alpha", l, func(c *server.Config) { c.Exchange.PeerTLS = nil })
	waitFor(t, 30*time.Second, "alpha, restarted, to receipt bravo's later entries", receiptedByAlpha(later...))
}
