package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/internal/localnet/localnettest"
	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// The exchange suite (issue 5) runs each party's node as its own OS process
// (the parley binary) on loopback, with the mediator's witness in the test
// process, and checks what the nodes end up holding: the same (sender, seq,
// digest) everywhere, every substantive entry receipted by every
// counterpart, through crashes, a cut link and an equivocating sender.

// xpExchange makes peers compare feeds and retry often, so that the suite
// runs in seconds.
var xpExchange = config.Exchange{SyncInterval: "300ms", RelayDelay: "100ms", BackoffMax: "500ms"}

// xpNet is a network whose nodes are processes.
type xpNet struct {
	*localnet.Network
	procs map[string]*localnet.Process
	logs  map[string]*bytes.Buffer
}

// xpStart generates a network of three parties and a mediator, lets edit
// change node configurations, and starts the witness in this process and
// every node as a process.
func xpStart(t *testing.T, edit func(net *localnet.Network)) *xpNet {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process exchange test: skipped in -short")
	}
	bin := parleyBinary(t)
	ctx := context.Background()
	net, err := localnet.Generate(ctx, localnet.Options{Dir: t.TempDir(), Exchange: xpExchange})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if edit != nil {
		edit(net)
	}
	w, err := net.StartWitnesses(ctx, slog.New(slog.NewTextHandler(&xpLockedBuffer{}, nil)))
	if err != nil {
		t.Fatalf("StartWitnesses: %v", err)
	}
	t.Cleanup(w.Stop)
	x := &xpNet{Network: net, procs: map[string]*localnet.Process{}, logs: map[string]*bytes.Buffer{}}
	for _, id := range net.PartyIDs {
		buf := &xpLockedBuffer{}
		x.logs[id] = &buf.Buffer
		p, err := net.StartProcess(ctx, bin, id, buf)
		if err != nil {
			t.Fatalf("start %s: %v\n%s", id, err, buf.String())
		}
		x.procs[id] = p
		t.Cleanup(func() { _ = p.Kill() })
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, id := range net.PartyIDs {
				t.Logf("--- %s's node log (tail):\n%s", id, xpTail(x.logs[id].String(), 40))
			}
		}
	})
	return x
}

// xpLockedBuffer is a bytes.Buffer safe for a process's concurrent writes.
type xpLockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *xpLockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (b *xpLockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

func xpTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// notify submits count notifications at party's node, concurrently.
func (x *xpNet) notify(t *testing.T, party string, count int) {
	t.Helper()
	ctx := context.Background()
	c, err := x.Operator(ctx, party)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, count)
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Notify(ctx, localnettest.Notification(1000+uint32(i))); err != nil {
				errs <- fmt.Errorf("%s notify %d: %w", party, i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// converged reports whether every node holds the same entries and each
// substantive entry is receipted by every counterpart of its sender,
// and that it holds at least min entries.
func (x *xpNet) converged(min int) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var first *localnet.Holdings
	for _, id := range x.PartyIDs {
		h, err := x.Holdings(ctx, id)
		if err != nil {
			return false, err
		}
		if len(h.Entries) < min {
			return false, fmt.Errorf("%s holds %d entries, want at least %d", id, len(h.Entries), min)
		}
		for _, k := range h.Substantive {
			var by []string
			for _, p := range x.PartyIDs {
				if p != k.Sender {
					by = append(by, p)
				}
			}
			if !h.ReceiptedBy(k, by...) {
				return false, fmt.Errorf("%s: %s is receipted by %v, want %v", id, k, h.Receipts[k], by)
			}
		}
		if first == nil {
			first = h
			continue
		}
		if diff := xpDiff(first.Entries, h.Entries); diff != "" {
			return false, fmt.Errorf("%s and %s differ: %s", x.PartyIDs[0], id, diff)
		}
	}
	return true, nil
}

func xpDiff(a, b map[localnet.EntryKey][32]byte) string {
	var out []string
	for k, d := range a {
		if e, ok := b[k]; !ok {
			out = append(out, "only first holds "+k.String())
		} else if e != d {
			out = append(out, "different digests at "+k.String())
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "only second holds "+k.String())
		}
	}
	sort.Strings(out)
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("and %d more", len(out)-5))
	}
	return strings.Join(out, "; ")
}

func (x *xpNet) awaitConverged(t *testing.T, min int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		if ok, err = x.converged(min); ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("nodes did not converge within %s: %v", timeout, err)
}

func TestProcessesExchangeAndConverge(t *testing.T) {
	x := xpStart(t, nil)
	var wg sync.WaitGroup
	for _, id := range x.PartyIDs {
		wg.Add(1)
		go func() { defer wg.Done(); x.notify(t, id, 20) }()
	}
	wg.Wait()
	x.awaitConverged(t, 60, 60*time.Second)
	// Honest nodes checking each other's feeds and witnessed checkpoints
	// find nothing to hold against anyone.
	ctx := context.Background()
	for _, id := range x.PartyIDs {
		c, err := x.Operator(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := c.Evidence(ctx)
		c.Close()
		if err != nil || len(evs) != 0 {
			t.Errorf("%s holds evidence %v (%v), want none", id, evs, err)
		}
	}
}

func TestProcessKilledAndRestartedCatchesUp(t *testing.T) {
	x := xpStart(t, nil)
	ctx := context.Background()
	for _, id := range x.PartyIDs {
		x.notify(t, id, 5)
	}
	x.awaitConverged(t, 15, 60*time.Second)

	// charlie crashes; alpha and bravo go on; then alpha crashes too,
	// holding entries charlie has not seen.
	if err := x.procs["charlie"].Kill(); err != nil {
		t.Fatal(err)
	}
	x.notify(t, "alpha", 10)
	x.notify(t, "bravo", 10)
	if err := x.procs["alpha"].Kill(); err != nil {
		t.Fatal(err)
	}
	if err := x.procs["charlie"].Restart(ctx, x.Network); err != nil {
		t.Fatal(err)
	}
	x.notify(t, "charlie", 5)
	if err := x.procs["alpha"].Restart(ctx, x.Network); err != nil {
		t.Fatal(err)
	}
	x.awaitConverged(t, 40, 60*time.Second)
}

func TestProcessRelayBridgesACutLink(t *testing.T) {
	x := xpStart(t, func(net *localnet.Network) {
		for party, peer := range map[string]string{"alpha": "charlie", "charlie": "alpha"} {
			err := net.UpdateNodeConfig(party, func(c *config.Node) {
				c.Exchange.PeerOverrides = map[string]string{peer: "127.0.0.1:1"}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	x.notify(t, "alpha", 10)
	x.notify(t, "charlie", 10)
	x.awaitConverged(t, 20, 60*time.Second)
}

func TestProcessEquivocationCaughtEverywhere(t *testing.T) {
	x := xpStart(t, nil)
	ctx := context.Background()
	first, second := xpSign(t, x.Network, "alpha", 100), xpSign(t, x.Network, "alpha", 200)
	// alpha's signing key signs two statements at seq 1. The second goes
	// to charlie over ExchangeService.Deliver with alpha's node
	// certificate; the first is submitted at alpha's node, which delivers
	// it to everyone.
	xpDeliverAs(t, x.Network, "charlie", "alpha", second)
	op, err := x.Operator(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if _, err := op.SubmitEnvelope(ctx, first); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{string(first): true, string(second): true}
	for _, id := range x.PartyIDs {
		c, err := x.Operator(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		deadline := time.Now().Add(30 * time.Second)
		for {
			evs, err := c.Evidence(ctx)
			found := false
			for _, ev := range evs {
				eq := ev.GetEquivocation()
				if eq.GetSender() == "alpha" && eq.GetSeq() == 1 && want[string(eq.GetFirst())] && want[string(eq.GetSecond())] && !bytes.Equal(eq.GetFirst(), eq.GetSecond()) {
					found = true
				}
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s holds no evidence of alpha's equivocation: %v, %v", id, evs, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The envelope a node saw second was never accepted: alpha and
		// charlie hold the ones given to them, bravo whichever reached it
		// first (alpha's delivery, or charlie's envelope relayed).
		e, err := c.Entry(ctx, "alpha", 1)
		if err != nil {
			t.Fatal(err)
		}
		got := e.GetEnvelope()
		switch {
		case !want[string(got)]:
			t.Errorf("%s holds neither envelope at alpha/1", id)
		case id == "alpha" && !bytes.Equal(got, first), id == "charlie" && !bytes.Equal(got, second):
			t.Errorf("%s holds the envelope it saw second at alpha/1", id)
		}
	}
}

// TestProcessEquivocationShownToAPeerHoldingTheOther checks that a node
// whose own entry a peer holds as another envelope, signed with the party's
// key and received elsewhere, sends the peer its own, so that the peer keeps
// the evidence too: here charlie holds the other envelope before alpha's
// delivery worker first asks it for its feed heads (alpha restarting with
// its link to charlie back), and charlie dials no one, so that alpha's
// delivery is the only way the conflict can reach it.
func TestProcessEquivocationShownToAPeerHoldingTheOther(t *testing.T) {
	cut := func(net *localnet.Network, party string, peers ...string) {
		t.Helper()
		err := net.UpdateNodeConfig(party, func(c *config.Node) {
			c.Exchange.PeerOverrides = map[string]string{}
			for _, p := range peers {
				c.Exchange.PeerOverrides[p] = "127.0.0.1:1"
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	x := xpStart(t, func(net *localnet.Network) {
		cut(net, "alpha", "charlie")
		cut(net, "bravo", "charlie")
		cut(net, "charlie", "alpha", "bravo")
	})
	ctx := context.Background()
	first, second := xpSign(t, x.Network, "alpha", 100), xpSign(t, x.Network, "alpha", 200)
	xpDeliverAs(t, x.Network, "charlie", "alpha", second)
	op, err := x.Operator(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.SubmitEnvelope(ctx, first)
	op.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := x.procs["alpha"].Stop(); err != nil {
		t.Fatal(err)
	}
	cut(x.Network, "alpha")
	if err := x.procs["alpha"].Restart(ctx, x.Network); err != nil {
		t.Fatal(err)
	}
	ch, err := x.Operator(ctx, "charlie")
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	want := map[string]bool{string(first): true, string(second): true}
	xpWait(t, 30*time.Second, "charlie to hold evidence of alpha's equivocation", func() (bool, error) {
		evs, err := ch.Evidence(ctx)
		for _, ev := range evs {
			eq := ev.GetEquivocation()
			if eq.GetSender() == "alpha" && eq.GetSeq() == 1 && want[string(eq.GetFirst())] && want[string(eq.GetSecond())] && !bytes.Equal(eq.GetFirst(), eq.GetSecond()) {
				return true, nil
			}
		}
		return false, fmt.Errorf("evidence %v, %v", evs, err)
	})
}

// xpSign signs a notification as party's seq 1 with its signing key file.
func xpSign(t *testing.T, net *localnet.Network, party string, troops uint32) []byte {
	t.Helper()
	ctx := context.Background()
	signer, err := keys.LoadSigner(ctx, net.Parties[party].SigningKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := signer.PublicKey()
	keyID, _ := keys.KeyID(pub)
	st := &parleyv1.Statement{
		Header: &parleyv1.Header{AgreementId: net.Agreement.Agreement.ID, Sender: party, Seq: 1, IssuedAt: timestamppb.Now()},
		Body:   &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: localnettest.Notification(troops)}},
	}
	raw, err := envelope.Sign(ctx, st, signer, keyID)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// xpNodeClient dials party's node with the node certificate of party as.
func xpNodeClient(t *testing.T, net *localnet.Network, party, as string) *client.Client {
	t.Helper()
	bundle, err := config.TrustBundle(net.Agreement.Agreement)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := certs.LoadKeyPair(net.Parties[as].NodeCertFile, net.Parties[as].NodeKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.DialTLS(context.Background(), net.Parties[party].Address, credentials.NewTLS(certs.ClientConfig(bundle, kp.Certificate, party)), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestProcessReceiptsRecoveredAfterCrash kills a node that accepted
// entries of another party but had not yet written the receipt
// acknowledging them (its receipt delay is a minute), and checks that when
// it starts again it finds them in its log and receipts them: a crash
// loses no acknowledgement.
func TestProcessReceiptsRecoveredAfterCrash(t *testing.T) {
	setDelay := func(net *localnet.Network, d string) {
		if err := net.UpdateNodeConfig("alpha", func(c *config.Node) { c.Exchange.ReceiptDelay = d }); err != nil {
			t.Fatal(err)
		}
	}
	x := xpStart(t, func(net *localnet.Network) { setDelay(net, "1m") })
	ctx := context.Background()
	bravoHeld := func(want int) func() (bool, error) {
		return func() (bool, error) {
			h, err := x.Holdings(ctx, "alpha")
			if err != nil {
				return false, err
			}
			n := 0
			for k := range h.Entries {
				if k.Sender == "bravo" && slices.Contains(h.Substantive, k) {
					n++
				}
			}
			return n >= want, nil
		}
	}
	// The first acknowledgement goes out at once; the next ones wait for
	// the receipt delay.
	x.notify(t, "bravo", 1)
	xpWait(t, 30*time.Second, "alpha to hold bravo's first entry", bravoHeld(1))
	x.notify(t, "bravo", 4)
	xpWait(t, 30*time.Second, "alpha to hold bravo's five entries", bravoHeld(5))
	h, err := x.Holdings(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	unreceipted := 0
	for _, k := range h.Substantive {
		if k.Sender == "bravo" && !h.ReceiptedBy(k, "alpha") {
			unreceipted++
		}
	}
	if unreceipted == 0 {
		t.Fatal("alpha receipted every entry of bravo before the crash: the test cannot tell whether recovery works")
	}
	if err := x.procs["alpha"].Kill(); err != nil {
		t.Fatal(err)
	}
	setDelay(x.Network, "")
	if err := x.procs["alpha"].Restart(ctx, x.Network); err != nil {
		t.Fatal(err)
	}
	t.Logf("alpha killed with %d of bravo's entries unreceipted", unreceipted)
	x.awaitConverged(t, 5, 60*time.Second)
}

// xpWait polls cond every 100 ms until it holds or timeout passes.
func xpWait(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %s for %s (last error: %v)", timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// xpDeliverAs delivers raw to party's node over ExchangeService.Deliver
// with the node certificate of as, and checks that it is accepted.
func xpDeliverAs(t *testing.T, net *localnet.Network, party, as string, raw []byte) {
	t.Helper()
	c := xpNodeClient(t, net, party, as)
	stream, err := c.Exchange.Deliver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&parleyv1.DeliverRequest{Envelope: raw}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil || resp.GetStatus() != parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED {
		t.Fatalf("%s answered %v, %v; want ACCEPTED", party, resp, err)
	}
	_ = stream.CloseSend()
}
