package bench

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/localnet"
)

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		name string
		q    float64
		want time.Duration
	}{
		{"p50", 0.50, 500 * time.Millisecond},
		{"p90", 0.90, 900 * time.Millisecond},
		{"p99", 0.99, 990 * time.Millisecond},
		{"max", 1, 1000 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := h.quantile(tc.q)
			if diff := float64(got-tc.want) / float64(tc.want); diff < -0.01 || diff > 0.01 {
				t.Errorf("got %s, want %s within 1%%", got, tc.want)
			}
		})
	}
	if h.max != time.Second || h.n != 1000 {
		t.Errorf("got max %s and n %d, want 1s and 1000", h.max, h.n)
	}
	for _, v := range []uint64{0, 1, 255, 256, 257, 1 << 20, 1<<40 + 12345, 1<<63 + 1} {
		i := bucketOf(v)
		if mid := bucketMid(i); bucketOf(mid) != i {
			t.Errorf("value %d: bucket %d has middle %d, which falls in bucket %d", v, i, mid, bucketOf(mid))
		}
	}
}

// TestRun runs the whole harness briefly on two parties, with the nodes
// and the echo baseline as processes of a freshly built parley binary.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds parley and runs networks of processes")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	bin, err := localnet.BuildBinary(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	r, err := Run(ctx, Config{
		Binary: bin, Dir: t.TempDir(), Parties: 2, Concurrency: 4,
		Duration: 2 * time.Second, CheckpointInterval: 200 * time.Millisecond,
		IdleSamples: 3, ProbeTimeout: 3 * time.Second, Scale: []int{2},
		Progress: &syncWriter{w: &progress},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := r.Acceptance
	if a == nil || a.Echo.Ops == 0 || a.Node.Ops == 0 || a.Echo.Errors+a.Node.Errors > 0 {
		t.Fatalf("acceptance: got %+v, want operations on both targets and no errors", a)
	}
	if a.Ratios.Throughput <= 0 || len(a.Node.Processes) != 1 || a.Node.Processes[0].PeakRSSMiB <= 0 {
		t.Errorf("acceptance: got ratios %+v and processes %+v, want a throughput ratio and the node's figures", a.Ratios, a.Node.Processes)
	}
	if x := r.Exchange; x == nil || (!x.Available && !strings.HasPrefix(x.Reason, "not available: ")) {
		t.Errorf("exchange: got %+v, want figures or a reason", x)
	} else if x.Available && (x.Exchanged == 0 || x.Backlog != 0) {
		t.Errorf("exchange: got %d exchanged and a backlog of %d, want some and none", x.Exchanged, x.Backlog)
	}
	if i := r.Idle; i == nil || i.Samples != 3 || i.Published.N != 3 {
		t.Errorf("idle: got %+v, want 3 samples published", i)
	}
	if len(r.Scale) != 1 || r.Scale[0].Submit == nil || r.Scale[0].Submit.Ops == 0 {
		t.Errorf("scale: got %+v, want one size with submissions", r.Scale)
	}
	if !strings.Contains(progress.String(), "bench: accept: echo") {
		t.Errorf("progress: got %q, want lines for the echo load", progress.String())
	}
	var table strings.Builder
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1. Acceptance", "2. Fully exchanged", "3. Idle", "4. Scaling"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if _, err := json.Marshal(r); err != nil {
		t.Errorf("report does not encode as JSON: %v", err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// benchNetwork starts a two-party network with one mediator in this
// process.
func benchNetwork(b *testing.B) *localnet.Running {
	b.Helper()
	n, err := localnet.Generate(b.Context(), localnet.Options{Dir: b.TempDir(), Parties: []string{"alpha", "bravo"}, CheckpointInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	r, err := n.Start(context.WithoutCancel(b.Context()), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Stop)
	return r
}

// benchSubmit runs Submit from 16 goroutines (8 per CPU at 2 CPUs), each
// with its own client from dial, and reports throughput and latency.
func benchSubmit(b *testing.B, dial func() (*client.Client, error)) {
	var (
		mu     sync.Mutex
		all    histogram
		worker atomic.Int64
	)
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := dial()
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		w := int(worker.Add(1))
		var h histogram
		for i := 0; pb.Next(); i++ {
			t := time.Now()
			if _, err := c.Notify(b.Context(), notification("alpha", w, i)); err != nil {
				b.Error(err)
				return
			}
			h.add(time.Since(t))
		}
		mu.Lock()
		all.merge(&h)
		mu.Unlock()
	})
	b.StopTimer()
	l := all.latency()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(l.P50, "p50-ms")
	b.ReportMetric(l.P99, "p99-ms")
}

// BenchmarkSubmit measures SubmissionService.Submit through a real node in
// this process, over mutual TLS: sign, verify, durable log and state. Its
// baseline is BenchmarkEcho; parley bench measures both as processes.
func BenchmarkSubmit(b *testing.B) {
	r := benchNetwork(b)
	benchSubmit(b, func() (*client.Client, error) { return r.Operator(b.Context(), "alpha") })
}

// BenchmarkEcho measures the echo baseline with alpha's node certificate
// and TLS configuration, driven exactly as BenchmarkSubmit drives the node.
func BenchmarkEcho(b *testing.B) {
	r := benchNetwork(b)
	p := r.Parties["alpha"]
	tlsCfg, a, party, err := nodeTLS(p.ConfigFile)
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := NewEchoServer(tlsCfg, a.ID, party, "")
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(srv.Stop)
	benchSubmit(b, func() (*client.Client, error) {
		return client.Dial(b.Context(), client.Config{Address: l.Addr().String(), CertFile: p.OperatorCert, KeyFile: p.OperatorKey, CAFiles: r.CAFiles(), Party: party})
	})
}
