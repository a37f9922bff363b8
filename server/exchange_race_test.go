package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	stdnet "net"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/server"
)

// These tests drive the exchange's claims and conflicts by hand: the nodes'
// own sync loops are kept idle (a round an hour) and every round the tests
// need is run with SyncRound.

// idle keeps a node's sync loop from running a round during a test.
const idle = time.Hour

// bareNetwork generates a network of alpha, bravo and charlie without
// mediators, in a directory of the test's.
func bareNetwork(t testing.TB) *localnet.Network {
	t.Helper()
	net, err := localnet.Generate(context.Background(), localnet.Options{Dir: t.TempDir(), NoMediators: true})
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// reservedListener returns the listener reserved for party's node.
func reservedListener(t testing.TB, net *localnet.Network, party string) stdnet.Listener {
	t.Helper()
	l, ok := net.Listener(party)
	if !ok {
		t.Fatalf("no reserved address for %s", party)
	}
	return l
}

// startNode runs party's node of net in this process, on its reserved
// address, with edit applied to its configuration.
func startNode(t testing.TB, net *localnet.Network, party string, edit func(*server.Config)) *server.Node {
	t.Helper()
	return startNodeOn(t, net, party, reservedListener(t, net, party), edit)
}

// startNodeOn is startNode serving on l.
func startNodeOn(t testing.TB, net *localnet.Network, party string, l stdnet.Listener, edit func(*server.Config)) *server.Node {
	t.Helper()
	node, _ := runNodeOn(t, net, party, l, edit)
	return node
}

// runNodeOn is startNodeOn that also returns a function that stops the node
// before the test ends, as a shutdown does (it may be called more than
// once).
func runNodeOn(t testing.TB, net *localnet.Network, party string, l stdnet.Listener, edit func(*server.Config)) (*server.Node, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := config.Load(net.Parties[party].ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.Build(ctx, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Exchange.SyncInterval, cfg.Exchange.RelayDelay = idle, idle
	edit(&cfg)
	node, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := node.Serve(ctx, l); err != nil {
			t.Errorf("%s's node: %v", party, err)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-served
			if err := node.Close(); err != nil {
				t.Errorf("close %s's node: %v", party, err)
			}
		})
	}
	t.Cleanup(stop)
	return node, stop
}

// conflictNetwork starts bravo's node, which dials charlie's and nobody
// else, and, if serving, charlie's node, which dials nobody. Alpha's node
// does not run: the tests sign alpha's entries themselves.
func conflictNetwork(t testing.TB) (net *localnet.Network, bravo *server.Node) {
	t.Helper()
	net = bareNetwork(t)
	startNode(t, net, "charlie", func(c *server.Config) { c.Exchange.PeerTLS = nil })
	bravo = startNode(t, net, "bravo", func(c *server.Config) {
		c.Exchange.PeerAddresses = map[string]string{"alpha": "127.0.0.1:1"}
	})
	return net, bravo
}

// receiptOf signs, as party's seq 1, a receipt acknowledging raw as the
// entry (sender, seq).
func receiptOf(t testing.TB, net *localnet.Network, party, sender string, seq uint64, raw []byte) []byte {
	t.Helper()
	digest := envelope.Digest(raw)
	return signBodyAs(t, net, party, &parleyv1.Body{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{
		{Sender: sender, Seq: seq, Digest: digest[:], ReceivedAt: timestamppb.Now()},
	}}}})
}

// deliverOne pushes raw to c's node over a Deliver stream, and returns an
// error unless the node accepted it. Unlike deliver, it may run outside the
// test's goroutine.
func deliverOne(c *client.Client, raw []byte) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := c.Exchange.Deliver(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&parleyv1.DeliverRequest{Envelope: raw}); err != nil {
		return err
	}
	resp, err := stream.Recv()
	if err != nil {
		return err
	}
	if got := resp.GetStatus(); got != parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED {
		return fmt.Errorf("got %v, want ACCEPTED", resp)
	}
	return stream.CloseSend()
}

func wantStatus(t testing.TB, what string, resp *parleyv1.DeliverResponse, want parleyv1.DeliveryStatus) {
	t.Helper()
	if got := resp.GetStatus(); got != want {
		t.Fatalf("%s: got %v, want %v", what, resp, want)
	}
}

// hasEquivocation reports whether node keeps alpha's seq 1 equivocation
// made of first and second.
func hasEquivocation(t testing.TB, node *server.Node, first, second []byte) bool {
	t.Helper()
	evs, err := node.Evidence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		eq := ev.GetEquivocation()
		a, b := string(eq.GetFirst()), string(eq.GetSecond())
		if eq.GetSender() == "alpha" && eq.GetSeq() == 1 && (a == string(first) && b == string(second) || a == string(second) && b == string(first)) {
			return true
		}
	}
	return false
}

// A peer's receipt names an entry the node does not hold yet, and the node
// accepts another envelope at that seq while it is checking the receipt:
// the receipt's claim must still be compared with it.
func TestExchangeClaimRacingAcceptance(t *testing.T) {
	net := bareNetwork(t)
	// Nobody is reachable: bravo's fetch of the conflict can only fail, so
	// the conflict stays pending for the test to see.
	bravo := startNode(t, net, "bravo", func(c *server.Config) {
		c.Exchange.PeerAddresses = map[string]string{"alpha": "127.0.0.1:1", "charlie": "127.0.0.1:1"}
	})
	first, second := signAs(t, net, "alpha", 100), signAs(t, net, "alpha", 200)
	fromAlpha := nodeClient(t, net, "bravo", "alpha")
	var (
		once     sync.Once
		accepted error
	)
	bravo.OnReceiptNotHeld(func(sender string, seq uint64) {
		if sender != "alpha" || seq != 1 {
			return
		}
		once.Do(func() {
			// alpha's node delivers first just as bravo finds it does not
			// hold alpha/1.
			accepted = deliverOne(fromAlpha, first)
		})
	})
	// charlie's receipt says charlie holds second at alpha/1.
	wantStatus(t, "charlie's receipt", deliver(t, nodeClient(t, net, "bravo", "charlie"), receiptOf(t, net, "charlie", "alpha", 1, second)), parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED)
	once.Do(func() { accepted = errors.New("bravo never found alpha/1 missing") })
	if accepted != nil {
		t.Fatalf("delivering alpha's first envelope while bravo checked charlie's receipt: %v", accepted)
	}
	if !bravo.ConflictPending("charlie", "alpha", 1) {
		t.Error("bravo has no conflict to fetch from charlie at alpha/1, want one: charlie's receipt names another envelope than bravo holds")
	}
}

// A peer that answers without the conflicting entry (not indexed yet) is
// asked again in later rounds, until the node keeps the evidence.
func TestExchangeRetriesConflictNotServed(t *testing.T) {
	net, bravo := conflictNetwork(t)
	ctx := context.Background()
	first, second := signAs(t, net, "alpha", 100), signAs(t, net, "alpha", 200)
	wantStatus(t, "alpha's first to bravo", deliver(t, nodeClient(t, net, "bravo", "alpha"), first), parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED)
	// charlie's receipt names second before charlie's node serves it.
	wantStatus(t, "charlie's receipt", deliver(t, nodeClient(t, net, "bravo", "charlie"), receiptOf(t, net, "charlie", "alpha", 1, second)), parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED)
	if !bravo.ConflictPending("charlie", "alpha", 1) {
		t.Fatal("bravo has no conflict to fetch from charlie at alpha/1, want one")
	}
	if err := bravo.SyncRound(ctx, "charlie"); err != nil {
		t.Fatal(err)
	}
	if !bravo.ConflictPending("charlie", "alpha", 1) {
		t.Fatal("bravo gave up on alpha/1 at charlie after one answer without it, want it asked again")
	}
	// Now charlie holds second; delivering it again returns once charlie
	// has indexed it, so that it serves it.
	to := nodeClient(t, net, "charlie", "alpha")
	wantStatus(t, "alpha's second to charlie", deliver(t, to, second), parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED)
	wantStatus(t, "alpha's second to charlie again", deliver(t, to, second), parleyv1.DeliveryStatus_DELIVERY_STATUS_DUPLICATE)
	if err := bravo.SyncRound(ctx, "charlie"); err != nil {
		t.Fatal(err)
	}
	if !hasEquivocation(t, bravo, first, second) {
		t.Fatal("bravo keeps no evidence of alpha's two envelopes at seq 1, want it fetched from charlie")
	}
	if bravo.ConflictPending("charlie", "alpha", 1) {
		t.Error("bravo still has alpha/1 to fetch from charlie after keeping the evidence, want it settled")
	}
}

// A peer that never serves the conflicting entry is asked a bounded number
// of times.
func TestExchangeGivesUpConflictNeverServed(t *testing.T) {
	net, bravo := conflictNetwork(t)
	ctx := context.Background()
	first, second := signAs(t, net, "alpha", 100), signAs(t, net, "alpha", 200)
	wantStatus(t, "alpha's first to bravo", deliver(t, nodeClient(t, net, "bravo", "alpha"), first), parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED)
	wantStatus(t, "charlie's receipt", deliver(t, nodeClient(t, net, "bravo", "charlie"), receiptOf(t, net, "charlie", "alpha", 1, second)), parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED)
	for round := 1; round <= server.MaxConflictFetches; round++ {
		if !bravo.ConflictPending("charlie", "alpha", 1) {
			t.Fatalf("before round %d: bravo gave up on alpha/1 at charlie, want it asked %d times", round, server.MaxConflictFetches)
		}
		if err := bravo.SyncRound(ctx, "charlie"); err != nil {
			t.Fatal(err)
		}
	}
	if bravo.ConflictPending("charlie", "alpha", 1) {
		t.Errorf("after %d rounds: bravo still asks charlie for alpha/1, want it given up", server.MaxConflictFetches)
	}
}

// Two peers' receipts name different envelopes at a seq the node does not
// hold yet: whichever the node accepts, it compares both claims.
func TestExchangeKeepsEveryClaim(t *testing.T) {
	net, err := localnet.Generate(context.Background(), localnet.Options{Dir: t.TempDir(), NoMediators: true, Parties: []string{"alpha", "bravo", "charlie", "delta"}})
	if err != nil {
		t.Fatal(err)
	}
	bravo := startNode(t, net, "bravo", func(c *server.Config) {
		c.Exchange.PeerAddresses = map[string]string{"alpha": "127.0.0.1:1", "charlie": "127.0.0.1:1", "delta": "127.0.0.1:1"}
	})
	first, second := signAs(t, net, "alpha", 100), signAs(t, net, "alpha", 200)
	wantStatus(t, "delta's receipt", deliver(t, nodeClient(t, net, "bravo", "delta"), receiptOf(t, net, "delta", "alpha", 1, second)), parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED)
	wantStatus(t, "charlie's receipt", deliver(t, nodeClient(t, net, "bravo", "charlie"), receiptOf(t, net, "charlie", "alpha", 1, first)), parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED)
	wantStatus(t, "alpha's first to bravo", deliver(t, nodeClient(t, net, "bravo", "alpha"), first), parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED)
	if !bravo.ConflictPending("delta", "alpha", 1) {
		t.Error("bravo has no conflict to fetch from delta at alpha/1, want one: delta's receipt names another envelope than bravo holds")
	}
	if bravo.ConflictPending("charlie", "alpha", 1) {
		t.Error("bravo has a conflict to fetch from charlie at alpha/1, want none: charlie's receipt names the envelope bravo holds")
	}
}
