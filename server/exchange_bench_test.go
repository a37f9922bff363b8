package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// receiptWatch follows one node's log and signals when the node holds
// receipts of an entry from every given party.
type receiptWatch struct {
	mu      sync.Mutex
	acks    map[localnet.EntryKey]map[string]bool
	waiters map[localnet.EntryKey]chan struct{}
	need    []string
}

func newReceiptWatch(need []string) *receiptWatch {
	return &receiptWatch{acks: map[localnet.EntryKey]map[string]bool{}, waiters: map[localnet.EntryKey]chan struct{}{}, need: need}
}

// done returns a channel closed once k is receipted by every needed party
// other than its sender.
func (w *receiptWatch) done(k localnet.EntryKey) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.waiters[k]
	if !ok {
		ch = make(chan struct{})
		w.waiters[k] = ch
		w.checkLocked(k)
	}
	return ch
}

func (w *receiptWatch) checkLocked(k localnet.EntryKey) {
	ch, ok := w.waiters[k]
	if !ok {
		return
	}
	select {
	case <-ch:
		return
	default:
	}
	for _, p := range w.need {
		if p != k.Sender && !w.acks[k][p] {
			return
		}
	}
	close(ch)
}

func (w *receiptWatch) observe(e *parleyv1.LogEntry) {
	p, err := envelope.Parse(e.GetEnvelope())
	if err != nil {
		return
	}
	by := p.Statement.GetHeader().GetSender()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range p.Statement.GetBody().GetReceipt().GetAcks() {
		k := localnet.EntryKey{Sender: a.GetSender(), Seq: a.GetSeq()}
		if w.acks[k] == nil {
			w.acks[k] = map[string]bool{}
		}
		w.acks[k][by] = true
		w.checkLocked(k)
	}
}

// watch subscribes to c's node until ctx ends.
func (w *receiptWatch) watch(ctx context.Context, c *client.Client) {
	_ = c.Subscribe(ctx, 0, false, func(ev *parleyv1.SubscribeResponse) error {
		if e := ev.GetEntry(); e != nil {
			w.observe(e)
		}
		return nil
	})
}

func benchNetwork(b *testing.B, parties int, mediators bool) *localnet.Running {
	b.Helper()
	opts := localnet.Options{NoMediators: !mediators}
	for i := range parties {
		opts.Parties = append(opts.Parties, []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"}[i])
	}
	opts.Dir = b.TempDir()
	ctx := context.Background()
	net, err := localnet.Generate(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	// The per-party rate limit (100 calls or streamed messages per second
	// by default) would cap each sender's deliveries: measure the exchange.
	for _, id := range net.PartyIDs {
		if err := net.UpdateNodeConfig(id, func(c *config.Node) { c.Limits.RatePerParty = -1 }); err != nil {
			b.Fatal(err)
		}
	}
	run, err := net.Start(ctx, slog.New(slog.NewTextHandler(testWriter{b}, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(run.Stop)
	return run
}

// BenchmarkReceiptLatency measures, on an idle network of 3 parties with a
// witnessing mediator, the time from submitting a notification at alpha
// until alpha's node holds the receipts of bravo and charlie.
func BenchmarkReceiptLatency(b *testing.B) {
	run := benchNetwork(b, 3, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alpha := operator(b, run, "alpha")
	w := newReceiptWatch(run.PartyIDs)
	go w.watch(ctx, alpha)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		e, err := alpha.Notify(ctx, notification(1000+uint32(i)))
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-w.done(localnet.EntryKey{Sender: "alpha", Seq: e.GetSeq()}):
		case <-time.After(30 * time.Second):
			b.Fatalf("alpha/%d not receipted within 30 s", e.GetSeq())
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkExchangeThroughput submits b.N notifications, spread over the 3
// parties by 32 concurrent clients, and waits until each sender's node
// holds the receipts of both counterparts.
func BenchmarkExchangeThroughput(b *testing.B) {
	run := benchNetwork(b, 3, true)
	benchThroughput(b, run, run.PartyIDs, 32, false)
}

// benchThroughput submits b.N notifications from senders, concurrency at a
// time, and waits until all are receipted by every counterpart; with
// waitEach, each client waits for the receipts of one notification before it
// sends the next. It reports notifications/s and the messages the exchange
// cost per notification.
func benchThroughput(b *testing.B, run *localnet.Running, senders []string, concurrency int, waitEach bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watches := map[string]*receiptWatch{}
	clients := map[string]*client.Client{}
	for _, id := range senders {
		clients[id] = operator(b, run, id)
		watches[id] = newReceiptWatch(run.PartyIDs)
		go watches[id].watch(ctx, clients[id])
	}
	before := totalStats(run)
	b.ResetTimer()
	start := time.Now()
	work := make(chan int)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		pending []<-chan struct{}
	)
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			party := senders[w%len(senders)]
			for i := range work {
				e, err := clients[party].Notify(ctx, notification(1000+uint32(i%1000)))
				if err != nil {
					b.Error(err)
					return
				}
				done := watches[party].done(localnet.EntryKey{Sender: party, Seq: e.GetSeq()})
				if !waitEach {
					mu.Lock()
					pending = append(pending, done)
					mu.Unlock()
					continue
				}
				select {
				case <-done:
				case <-time.After(60 * time.Second):
					b.Errorf("%s/%d not receipted within 60 s", party, e.GetSeq())
					return
				}
			}
		}()
	}
	for i := range b.N {
		work <- i
	}
	close(work)
	wg.Wait()
	deadline := time.After(120 * time.Second)
	for _, done := range pending {
		select {
		case <-done:
		case <-deadline:
			b.Fatal("notifications not receipted within 120 s")
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	after := totalStats(run)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "notifications/s")
	b.ReportMetric(float64(after.Delivered+after.Pulled-before.Delivered-before.Pulled)/float64(b.N), "entry-msgs/notification")
	b.ReportMetric(float64(after.Receipts-before.Receipts)/float64(b.N), "receipts/notification")
	b.ReportMetric(float64(after.HeadsCalls+after.CheckpointCalls-before.HeadsCalls-before.CheckpointCalls)/float64(b.N), "control-calls/notification")
}

func totalStats(run *localnet.Running) (s struct{ Delivered, Pulled, HeadsCalls, CheckpointCalls, Receipts uint64 }) {
	for _, n := range run.Nodes {
		st := n.ExchangeStats()
		s.Delivered += st.Delivered
		s.Pulled += st.Pulled
		s.HeadsCalls += st.HeadsCalls
		s.CheckpointCalls += st.CheckpointCalls
		s.Receipts += st.Receipts
	}
	return s
}

// BenchmarkMessagesPerNotification measures what the exchange costs per
// notification sent by one party, for networks of 3, 5 and 9 parties:
// envelopes delivered or pulled (entry messages), receipts written, and
// control calls (feed heads and checkpoints), both one notification at a
// time (every notification receipted on its own) and with 16 clients
// submitting without waiting (receipts batched).
func BenchmarkMessagesPerNotification(b *testing.B) {
	for _, parties := range []int{3, 5, 9} {
		for _, mode := range []struct {
			name        string
			concurrency int
			waitEach    bool
		}{{"sequential", 1, true}, {"burst16", 16, false}} {
			b.Run(fmt.Sprintf("parties=%d/%s", parties, mode.name), func(b *testing.B) {
				run := benchNetwork(b, parties, false)
				benchThroughput(b, run, []string{"alpha"}, mode.concurrency, mode.waitEach)
			})
		}
	}
}
