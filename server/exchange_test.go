package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/server"
	"github.com/parley-dev/parley/server/tlog"
)

// fastExchange makes peers compare feeds often, for tests.
var fastExchange = config.Exchange{SyncInterval: "300ms", RelayDelay: "50ms", BackoffMax: "500ms"}

// waitFor polls cond until it reports true or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
}

func holdings(t testing.TB, run *localnet.Running, party string) *localnet.Holdings {
	t.Helper()
	h, err := run.Holdings(context.Background(), party)
	if err != nil {
		t.Fatalf("read %s's log: %v", party, err)
	}
	return h
}

func TestExchangeDeliversAndReceipts(t *testing.T) {
	x := fastExchange
	x.ReceiptDelay = "200ms" // batching is certain, however slow the machine
	run := startNetwork(t, localnet.Options{Exchange: x})
	ctx := context.Background()
	alpha := operator(t, run, "alpha")
	const n = 40
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent []localnet.EntryKey
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := alpha.Notify(ctx, notification(1000+uint32(i)))
			if err != nil {
				t.Errorf("Notify: %v", err)
				return
			}
			mu.Lock()
			sent = append(sent, localnet.EntryKey{Sender: "alpha", Seq: e.GetSeq()})
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitFor(t, 30*time.Second, "every node to hold alpha's entries, receipted by bravo and charlie", func() (bool, error) {
		for _, id := range run.PartyIDs {
			h := holdings(t, run, id)
			for _, k := range sent {
				if _, ok := h.Entries[k]; !ok {
					return false, fmt.Errorf("%s lacks %s", id, k)
				}
				if !h.ReceiptedBy(k, "bravo", "charlie") {
					return false, fmt.Errorf("%s holds no receipts of %s from bravo and charlie (got %v)", id, k, h.Receipts[k])
				}
			}
		}
		return true, nil
	})
	h := holdings(t, run, "alpha")
	receipts := map[string]int{}
	for k := range h.Entries {
		if k.Sender != "alpha" {
			receipts[k.Sender]++
		}
	}
	for _, id := range []string{"bravo", "charlie"} {
		// Acknowledgements are batched: far fewer receipts than entries.
		if receipts[id] == 0 || receipts[id] >= n {
			t.Errorf("%s wrote %d receipts for %d entries, want between 1 and %d", id, receipts[id], n, n-1)
		}
	}
	// Receipts are not receipted.
	for k, by := range h.Receipts {
		if k.Sender != "alpha" {
			t.Errorf("receipt %s is acknowledged by %v; receipts are not receipted", k, by)
		}
	}
	stats := run.Nodes["alpha"].ExchangeStats()
	if stats.Delivered < 2*n {
		t.Errorf("alpha delivered %d envelopes, want at least %d", stats.Delivered, 2*n)
	}
	// Meanwhile every node checks its peers' witnessed checkpoints, and
	// finds no fork or equivocation.
	for _, id := range run.PartyIDs {
		node := run.Nodes[id]
		waitFor(t, 10*time.Second, id+" to verify its peers' checkpoints", func() (bool, error) {
			return node.ExchangeStats().CheckpointsVerified >= 2, nil
		})
		evs, err := operator(t, run, id).Evidence(context.Background())
		if err != nil || len(evs) != 0 {
			t.Errorf("%s holds evidence %v (%v), want none", id, evs, err)
		}
	}
}

func TestExchangeRelaysAroundACutLink(t *testing.T) {
	ctx := context.Background()
	net, err := localnet.Generate(ctx, localnet.Options{Dir: t.TempDir(), NoMediators: true, Exchange: fastExchange})
	if err != nil {
		t.Fatal(err)
	}
	cut := func(party, peer string) {
		err := net.UpdateNodeConfig(party, func(c *config.Node) {
			c.Exchange.PeerOverrides = map[string]string{peer: "127.0.0.1:1"}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cut("alpha", "charlie")
	cut("charlie", "alpha")
	run, err := net.Start(ctx, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(run.Stop)
	a, err := operator(t, run, "alpha").Notify(ctx, notification(500))
	if err != nil {
		t.Fatal(err)
	}
	c, err := operator(t, run, "charlie").Notify(ctx, notification(600))
	if err != nil {
		t.Fatal(err)
	}
	ka, kc := localnet.EntryKey{Sender: "alpha", Seq: a.GetSeq()}, localnet.EntryKey{Sender: "charlie", Seq: c.GetSeq()}
	waitFor(t, 30*time.Second, "alpha's and charlie's entries to cross through bravo, with receipts", func() (bool, error) {
		for _, id := range run.PartyIDs {
			h := holdings(t, run, id)
			if !h.ReceiptedBy(ka, "bravo", "charlie") || !h.ReceiptedBy(kc, "alpha", "bravo") {
				return false, fmt.Errorf("%s: receipts of %s %v, of %s %v", id, ka, h.Receipts[ka], kc, h.Receipts[kc])
			}
		}
		return true, nil
	})
	if got := run.Nodes["charlie"].ExchangeStats().Pulled; got == 0 {
		t.Errorf("charlie pulled %d entries, want some (alpha's, relayed by bravo)", got)
	}
}

// nodeClient dials party's node as the node of party as, the way peers do.
func nodeClient(t testing.TB, net *localnet.Network, party, as string) *client.Client {
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

// signAs signs a notification as party's seq 1, with its signing key.
func signAs(t testing.TB, net *localnet.Network, party string, troops uint32) []byte {
	t.Helper()
	return signBodyAs(t, net, party, &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: notification(troops)}})
}

// signBodyAs signs body as party's seq 1, with its signing key.
func signBodyAs(t testing.TB, net *localnet.Network, party string, body *parleyv1.Body) []byte {
	t.Helper()
	return signAtAs(t, net, party, 1, nil, body)
}

// signAtAs signs body as party's seq, after the entry of digest prev, with
// party's signing key.
func signAtAs(t testing.TB, net *localnet.Network, party string, seq uint64, prev []byte, body *parleyv1.Body) []byte {
	t.Helper()
	ctx := context.Background()
	signer, err := keys.LoadSigner(ctx, net.Parties[party].SigningKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := signer.PublicKey()
	keyID, _ := keys.KeyID(pub)
	st := &parleyv1.Statement{
		Header: &parleyv1.Header{AgreementId: net.Agreement.Agreement.ID, Sender: party, Seq: seq, Prev: prev, IssuedAt: timestamppb.Now()},
		Body:   body,
	}
	raw, err := envelope.Sign(ctx, st, signer, keyID)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// deliver pushes raw to c's node over a Deliver stream and returns its answer.
func deliver(t testing.TB, c *client.Client, raw []byte) *parleyv1.DeliverResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := c.Exchange.Deliver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&parleyv1.DeliverRequest{Envelope: raw}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	return resp
}

func TestExchangeCatchesEquivocation(t *testing.T) {
	run := startNetwork(t, localnet.Options{NoMediators: true, Exchange: fastExchange})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A subscriber of bravo's node is told of the evidence.
	evidence := make(chan *parleyv1.Evidence, 4)
	go func() {
		c, err := run.Operator(ctx, "bravo")
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.Subscribe(ctx, 0, true, func(ev *parleyv1.SubscribeResponse) error {
			if e := ev.GetEvidence(); e != nil {
				evidence <- e
			}
			return nil
		})
	}()
	first, second := signAs(t, run.Network, "alpha", 100), signAs(t, run.Network, "alpha", 200)
	// alpha's key signs two statements at seq 1: the second goes straight to
	// charlie (as if from alpha's node), the first to alpha's own node,
	// which delivers it to everyone.
	if resp := deliver(t, nodeClient(t, run.Network, "charlie", "alpha"), second); resp.GetStatus() != parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED {
		t.Fatalf("charlie answered %v, want ACCEPTED", resp)
	}
	if _, err := operator(t, run, "alpha").SubmitEnvelope(ctx, first); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{string(first): true, string(second): true}
	for _, id := range run.PartyIDs {
		c := operator(t, run, id)
		waitFor(t, 30*time.Second, id+" to hold the equivocation evidence", func() (bool, error) {
			evs, err := c.Evidence(ctx)
			if err != nil {
				return false, err
			}
			for _, ev := range evs {
				eq := ev.GetEquivocation()
				if eq.GetSender() == "alpha" && eq.GetSeq() == 1 && want[string(eq.GetFirst())] && want[string(eq.GetSecond())] && string(eq.GetFirst()) != string(eq.GetSecond()) {
					return true, nil
				}
			}
			return false, fmt.Errorf("evidence: %v", evs)
		})
	}
	// Each node kept the envelope it saw first and never the other: alpha
	// and charlie the ones given to them, bravo whichever reached it first
	// (alpha's delivery, or charlie's envelope relayed).
	for id, wantRaw := range map[string][]byte{"alpha": first, "bravo": nil, "charlie": second} {
		e, err := operator(t, run, id).Entry(ctx, "alpha", 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(e.GetEnvelope()); !want[got] || (wantRaw != nil && got != string(wantRaw)) {
			t.Errorf("%s holds the wrong envelope at alpha/1", id)
		}
	}
	select {
	case ev := <-evidence:
		if ev.GetEquivocation().GetSender() != "alpha" {
			t.Errorf("subscriber got evidence %v, want alpha's equivocation", ev)
		}
	case <-time.After(10 * time.Second):
		t.Error("bravo's subscriber got no evidence")
	}

	// A subscriber that comes later is sent the evidence kept before it
	// came (the node reads it from its store, not from memory).
	late, lcancel := context.WithTimeout(ctx, 10*time.Second)
	defer lcancel()
	got := false
	_ = operator(t, run, "charlie").Subscribe(late, 0, true, func(ev *parleyv1.SubscribeResponse) error {
		if ev.GetEvidence().GetEquivocation().GetSender() == "alpha" {
			got = true
			return errors.New("done")
		}
		return nil
	})
	if !got {
		t.Error("a later subscriber of charlie's node got no evidence")
	}
}

// checkpointFor signs a checkpoint of tree as the log of party.
func checkpointFor(t testing.TB, net *localnet.Network, party string, tree *testonly.Tree) []byte {
	t.Helper()
	skey, err := os.ReadFile(net.Parties[party].CheckpointKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := tlog.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	body := log.Checkpoint{Origin: net.Parties[party].LogOrigin, Size: tree.Size(), Hash: tree.Hash()}.Marshal()
	raw, err := note.Sign(&note.Note{Text: string(body)}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestForkDetection(t *testing.T) {
	ctx := context.Background()
	net, err := localnet.Generate(ctx, localnet.Options{Dir: t.TempDir(), NoMediators: true, Parties: []string{"alpha", "bravo"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(net.Parties["alpha"].ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := c.Build(ctx, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	scfg.Exchange.PeerTLS = nil // this test feeds the checkpoints itself
	node, err := server.New(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	tree := func(leaves ...string) *testonly.Tree {
		tr := testonly.New(rfc6962.DefaultHasher)
		for _, l := range leaves {
			tr.AppendData([]byte(l))
		}
		return tr
	}
	honest := tree("a", "b", "c", "d", "e")
	prefix := tree("a", "b", "c")
	forked := tree("a", "b", "x", "d", "e", "f")
	proveFrom := func(tr *testonly.Tree) func(context.Context, uint64, uint64) ([][]byte, error) {
		return func(_ context.Context, from, to uint64) ([][]byte, error) { return tr.ConsistencyProof(from, to) }
	}
	forks := func() int {
		n := 0
		resp, err := nodeEvidence(ctx, t, node)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range resp {
			if ev.GetFork() != nil {
				n++
			}
		}
		return n
	}
	steps := []struct {
		name      string
		raw       []byte
		prove     *testonly.Tree
		wantForks int
	}{
		{"first checkpoint is kept", checkpointFor(t, net, "bravo", prefix), nil, 0},
		{"a consistent extension", checkpointFor(t, net, "bravo", honest), honest, 0},
		{"the same checkpoint again", checkpointFor(t, net, "bravo", honest), honest, 0},
		{"an older, consistent view", checkpointFor(t, net, "bravo", prefix), honest, 0},
		{"an inconsistent extension", checkpointFor(t, net, "bravo", forked), forked, 1},
		{"another root for a known size", checkpointFor(t, net, "bravo", tree("a", "b", "c", "d", "e", "g")), nil, 2},
	}
	for _, st := range steps {
		var prove func(context.Context, uint64, uint64) ([][]byte, error)
		if st.prove != nil {
			prove = proveFrom(st.prove)
		} else {
			prove = func(context.Context, uint64, uint64) ([][]byte, error) { return nil, errors.New("no proof") }
		}
		if err := node.ObserveCheckpoint(ctx, "bravo", st.raw, prove); err != nil {
			t.Fatalf("%s: ObserveCheckpoint: %v", st.name, err)
		}
		if got := forks(); got != st.wantForks {
			t.Fatalf("%s: got %d fork evidence, want %d", st.name, got, st.wantForks)
		}
	}
	// A checkpoint not signed by bravo's key proves nothing.
	bad := checkpointFor(t, net, "alpha", honest)
	if err := node.ObserveCheckpoint(ctx, "bravo", bad, proveFrom(honest)); !errors.Is(err, server.ErrCheckpoint) {
		t.Fatalf("got %v, want ErrCheckpoint", err)
	}
}

// nodeEvidence lists a node's evidence as its ListEvidence method does.
func nodeEvidence(ctx context.Context, t testing.TB, node *server.Node) ([]*parleyv1.Evidence, error) {
	t.Helper()
	return node.Evidence(ctx)
}
