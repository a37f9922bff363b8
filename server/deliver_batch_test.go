package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/internal/localnet/localnettest"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/server"
)

// signChainAs signs n notifications as party's seq 1 to n, each naming the
// one before as prev, with party's signing key.
func signChainAs(t testing.TB, net *localnet.Network, party string, n int) [][]byte {
	t.Helper()
	var (
		out  [][]byte
		prev []byte
	)
	for i := range n {
		raw := signAtAs(t, net, party, uint64(i+1), prev, &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: notification(9000 + uint32(i))}})
		d := envelope.Digest(raw)
		out, prev = append(out, raw), d[:]
	}
	return out
}

// TestDeliverBatch sends a node Deliver requests of several envelopes, over
// gRPC and mutual TLS, as a peer's node would: the node announces the batch
// it takes in the stream's header and answers every envelope of a request,
// in order, as if it had come alone (accepted, duplicate, a gap, and one
// accepted after it in the same request).
func TestDeliverBatch(t *testing.T) {
	net := bareNetwork(t)
	startNode(t, net, "bravo", func(c *server.Config) {
		c.Exchange.PeerAddresses = map[string]string{"alpha": "127.0.0.1:1", "charlie": "127.0.0.1:1"}
	})
	chain := signChainAs(t, net, "alpha", 6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := nodeClient(t, net, "bravo", "alpha").Exchange.Deliver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	md, err := stream.Header()
	if err != nil {
		t.Fatal(err)
	}
	if got := md.Get("parley-deliver-batch"); len(got) != 1 || got[0] != "128" {
		t.Errorf("header parley-deliver-batch: got %q, want 128", got)
	}
	if got := md.Get("parley-deliver-batch-bytes"); len(got) != 1 || func() bool { n, err := strconv.Atoi(got[0]); return err != nil || n < 64<<10 }() {
		t.Errorf("header parley-deliver-batch-bytes: got %q, want at least an envelope's most bytes", got)
	}
	type want struct {
		raw      []byte
		status   parleyv1.DeliveryStatus
		expected uint64
	}
	accepted, duplicate, gap := parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED, parleyv1.DeliveryStatus_DELIVERY_STATUS_DUPLICATE, parleyv1.DeliveryStatus_DELIVERY_STATUS_GAP
	for i, wants := range [][]want{
		{{chain[0], accepted, 0}, {chain[1], accepted, 0}, {chain[2], accepted, 0}},
		{{chain[1], duplicate, 0}, {chain[5], gap, 4}, {chain[3], accepted, 0}},
		{{chain[4], accepted, 0}},
	} {
		req := &parleyv1.DeliverRequest{Envelope: wants[0].raw}
		for _, w := range wants[1:] {
			req.More = append(req.More, w.raw)
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		answers := append([]*parleyv1.DeliverResponse{resp}, resp.GetMore()...)
		if len(answers) != len(wants) {
			t.Fatalf("request %d: %d answers (%v), want %d", i, len(answers), resp, len(wants))
		}
		for j, a := range answers {
			d := envelope.Digest(wants[j].raw)
			if a.GetStatus() != wants[j].status || a.GetExpectedSeq() != wants[j].expected || string(a.GetDigest()) != string(d[:]) || len(a.GetMore()) != 0 && j > 0 {
				t.Errorf("request %d, envelope %d: got %v, want %v, expected seq %d and the envelope's digest", i, j, a, wants[j].status, wants[j].expected)
			}
		}
	}
	_ = stream.CloseSend()
	op := localnettest.Operator(t, net, "bravo")
	for seq := uint64(1); seq <= 5; seq++ {
		if _, err := op.Entry(ctx, "alpha", seq); err != nil {
			t.Errorf("bravo does not hold alpha/%d: %v", seq, err)
		}
	}
	if _, err := op.Entry(ctx, "alpha", 6); status.Code(errors.Unwrap(err)) != codes.NotFound && status.Code(err) != codes.NotFound {
		t.Errorf("alpha/6, which came after a gap: got %v, want NotFound", err)
	}
}

// TestDeliveryBatchesABacklog has a node deliver a backlog of its entries
// to a peer that takes batches: the peer gets every entry, in fewer
// requests than entries.
func TestDeliveryBatchesABacklog(t *testing.T) {
	net := bareNetwork(t)
	alpha := startNode(t, net, "alpha", func(c *server.Config) {
		c.Exchange.PeerAddresses = map[string]string{"bravo": net.Parties["bravo"].Address, "charlie": "127.0.0.1:1"}
		c.Exchange.BackoffMin, c.Exchange.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 60
	op := localnettest.Operator(t, net, "alpha")
	for i := range n {
		if _, err := op.Notify(ctx, notification(9000+uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	startNode(t, net, "bravo", func(c *server.Config) {
		c.Exchange.PeerAddresses = map[string]string{"alpha": "127.0.0.1:1", "charlie": "127.0.0.1:1"}
	})
	bop := localnettest.Operator(t, net, "bravo")
	waitFor(t, 30*time.Second, "bravo to hold alpha's backlog", func() (bool, error) {
		_, err := bop.Entry(ctx, "alpha", n)
		return err == nil, err
	})
	st := alpha.ExchangeStats()
	if st.Delivered < n || st.DeliverRequests == 0 || st.DeliverRequests > st.Delivered/2 {
		t.Errorf("alpha delivered %d envelopes in %d requests, want at least %d in at most half as many requests", st.Delivered, st.DeliverRequests, n)
	}
}

// olderPeer is a peer's node of a version that does not take batches: it
// sends no header before its first answer, and answers one envelope per
// request (ignoring more, which it does not know).
type olderPeer struct {
	parleyv1.UnimplementedExchangeServiceServer
	mu       sync.Mutex
	requests int
	more     int
}

func (p *olderPeer) FeedHeads(context.Context, *parleyv1.FeedHeadsRequest) (*parleyv1.FeedHeadsResponse, error) {
	return &parleyv1.FeedHeadsResponse{}, nil
}

func (p *olderPeer) Deliver(stream parleyv1.ExchangeService_DeliverServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.requests++
		p.more += len(req.GetMore())
		p.mu.Unlock()
		d := envelope.Digest(req.GetEnvelope())
		if err := stream.Send(&parleyv1.DeliverResponse{Digest: d[:], Status: parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED}); err != nil {
			return err
		}
	}
}

func (p *olderPeer) counts() (requests, more int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests, p.more
}

// TestDeliveryToAnOlderPeer has a node deliver to a peer that announces no
// batch: every request carries one envelope.
func TestDeliveryToAnOlderPeer(t *testing.T) {
	net := bareNetwork(t)
	c, err := config.Load(net.Parties["bravo"].ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.Build(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	older := &olderPeer{}
	srv := grpc.NewServer(grpc.Creds(certs.ServerCredentials(cfg.TLS)))
	parleyv1.RegisterExchangeServiceServer(srv, older)
	l := reservedListener(t, net, "bravo")
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	startNode(t, net, "alpha", func(c *server.Config) {
		c.Exchange.PeerAddresses = map[string]string{"bravo": net.Parties["bravo"].Address, "charlie": "127.0.0.1:1"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 30
	op := localnettest.Operator(t, net, "alpha")
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := op.Notify(ctx, notification(9000+uint32(i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	waitFor(t, 30*time.Second, "the older peer to get every entry", func() (bool, error) {
		requests, _ := older.counts()
		return requests >= n, nil
	})
	if requests, more := older.counts(); more != 0 {
		t.Errorf("the older peer got %d requests carrying %d more envelopes, want none", requests, more)
	}
}

// TestDeliverBatchPaysTheEntryRate has a peer deliver batches to a node
// whose entry rate limit is low: each envelope of a request costs a token
// of the limit, not each request, so three requests of 25 envelopes in all
// take at least the time the limit gives 21 of them beyond its burst (the
// answer to the third request waits for the tokens of the first two and its
// own first envelope).
func TestDeliverBatchPaysTheEntryRate(t *testing.T) {
	net := bareNetwork(t)
	const rate, burst = 20, 5
	startNode(t, net, "bravo", func(c *server.Config) {
		c.Exchange.PeerAddresses = map[string]string{"alpha": "127.0.0.1:1", "charlie": "127.0.0.1:1"}
		c.Limits.EntryRatePerParty, c.Limits.EntryBurstPerParty = rate, burst
	})
	chain := signChainAs(t, net, "alpha", 25)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := nodeClient(t, net, "bravo", "alpha").Exchange.Deliver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, part := range [][][]byte{chain[:10], chain[10:20], chain[20:]} {
		if err := stream.Send(&parleyv1.DeliverRequest{Envelope: part[0], More: part[1:]}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range append([]*parleyv1.DeliverResponse{resp}, resp.GetMore()...) {
			wantStatus(t, "envelope "+strconv.Itoa(i), a, parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED)
		}
	}
	_ = stream.CloseSend()
	// 21 tokens, 5 of them from the burst: 16 at 20 a second.
	if took, least := time.Since(start), time.Duration(float64(21-burst)/rate*float64(time.Second)); took < least*9/10 {
		t.Errorf("25 envelopes in 3 requests took %v, want at least about %v at %d envelopes/s with a burst of %d", took, least, rate, burst)
	}
}
