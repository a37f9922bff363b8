package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
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

func TestTracker(t *testing.T) {
	d1, d2 := []byte("digest-1"), []byte("digest-2")
	entry := &parleyv1.LogEntry{Sender: "alpha", Seq: 7, Digest: d1}
	type ack struct {
		by     string
		digest []byte
	}
	for _, tc := range []struct {
		name          string
		before, after []ack // acknowledgements before and after register
		want          bool
		mismatches    int
	}{
		{"acked after", nil, []ack{{"bravo", d1}, {"charlie", d1}}, true, 0},
		{"acked before", []ack{{"bravo", d1}, {"charlie", d1}}, nil, true, 0},
		{"acked around", []ack{{"charlie", d1}}, []ack{{"bravo", d1}}, true, 0},
		{"one counterpart missing", []ack{{"bravo", d1}}, nil, false, 0},
		{"other digest", nil, []ack{{"bravo", d1}, {"charlie", d2}}, false, 1},
		{"the sender itself does not count", nil, []ack{{"alpha", d1}, {"bravo", d1}}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var completions int
			tr := newTracker([]string{"alpha", "bravo", "charlie"}, func() { completions++ })
			apply := func(acks []ack) {
				tr.mu.Lock()
				defer tr.mu.Unlock()
				for _, a := range acks {
					if tr.ack(a.by, "alpha", 7, a.digest) {
						completions++
					}
				}
			}
			apply(tc.before)
			done := make(chan struct{})
			tr.register(entry, time.Now(), done)
			apply(tc.after)
			select {
			case <-done:
				if !tc.want {
					t.Fatal("got fully exchanged, want not")
				}
			default:
				if tc.want {
					t.Fatal("got not fully exchanged, want fully exchanged")
				}
			}
			if got := tr.pending(); got != map[bool]int{true: 0, false: 1}[tc.want] {
				t.Errorf("got %d pending, want %d", got, map[bool]int{true: 0, false: 1}[tc.want])
			}
			_, n, _, mismatches := tr.snapshot()
			if n != completions || mismatches != tc.mismatches {
				t.Errorf("got %d completions (%d callbacks) and %d mismatches, want equal counts and %d", n, completions, mismatches, tc.mismatches)
			}
		})
	}
}

func TestParseSample(t *testing.T) {
	for _, tc := range []struct {
		line   string
		name   string
		labels map[string]string
		value  float64
	}{
		{`grpc_server_msg_received_total{grpc_method="Deliver",peer_party="bravo"} 42`, "grpc_server_msg_received_total", map[string]string{"grpc_method": "Deliver", "peer_party": "bravo"}, 42},
		{`parley_log_entries{state="a,b \"c\""} 1.5e+06 1700000000`, "parley_log_entries", map[string]string{"state": `a,b "c"`}, 1.5e6},
		{`go_goroutines 17`, "go_goroutines", map[string]string{}, 17},
	} {
		name, labels, value, ok := parseSample(tc.line)
		if !ok || name != tc.name || value != tc.value || fmt.Sprint(labels) != fmt.Sprint(tc.labels) {
			t.Errorf("parseSample(%q) = %q, %v, %v, %v; want %q, %v, %v, true", tc.line, name, labels, value, ok, tc.name, tc.labels, tc.value)
		}
	}
	for _, line := range []string{"", "# HELP x y", "x{a=b} 1", "x{a=\"b\"}", "x{a=\"b\"} one"} {
		if _, _, _, ok := parseSample(line); ok {
			t.Errorf("parseSample(%q) succeeded, want failure", line)
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
		Binary: bin, Dir: t.TempDir(), Parties: 2, Mediators: 1, Concurrency: 4,
		Duration: 2 * time.Second, CheckpointInterval: 200 * time.Millisecond,
		IdleSamples: 3, ProbeTimeout: 3 * time.Second, Scale: []int{2}, RestartEntries: 300,
		Progress: &syncWriter{w: &progress},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := r.Acceptance
	if a == nil || a.Echo.Ops == 0 || a.Node.Ops == 0 || a.Echo.Errors+a.Node.Errors > 0 {
		t.Fatalf("acceptance: got %+v, want operations on both targets and no errors", a)
	}
	if a.Turns != 4 || a.Echo.Seconds < 1.9 || a.Node.Seconds < 1.9 {
		t.Errorf("acceptance: got %d turns over %.2f s (echo) and %.2f s (node), want 4 over the 2 s each", a.Turns, a.Echo.Seconds, a.Node.Seconds)
	}
	if p := a.Node.Processes; len(p) > 0 && math.Abs(p[0].CPUPer1000-p[0].CPUSeconds/float64(a.Node.Ops)*1000) > 1e-9 {
		t.Errorf("acceptance: node CPU %.3f s per 1,000 ops, want its %.3f s over its %d ops", p[0].CPUPer1000, p[0].CPUSeconds, a.Node.Ops)
	}
	for _, l := range []*Load{a.Echo, a.Node} {
		c := l.Clients
		if c == nil || c.PID != os.Getpid() || c.CPUSeconds <= 0 || math.Abs(c.CPUPer1000-c.CPUSeconds/float64(l.Ops)*1000) > 1e-9 {
			t.Errorf("acceptance, %s: clients' figures %+v, want this process's CPU time over its %d ops", l.Target, c, l.Ops)
		}
		if runtime.GOOS == "linux" && (l.MachineBusy <= 0 || l.MachineBusy > 1) {
			t.Errorf("acceptance, %s: machine busy %v, want a share in (0, 1]", l.Target, l.MachineBusy)
		}
	}
	// The node's figures come first, then the mediator's.
	if a.Ratios.Throughput <= 0 || len(a.Node.Processes) != 2 || a.Node.Processes[0].Name != "node alpha" || a.Node.Processes[0].PeakRSSMiB <= 0 {
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
	if x := r.Restart; x == nil || x.Entries < 300 || x.FillErrors != 0 || x.StartSeconds <= 0 || x.Load == nil || x.Load.Ops == 0 {
		t.Errorf("restart: got %+v, want a log of 300 entries or more, filled without errors, a start-up time and a load", x)
	} else if f := x.Findings; f == nil || f.Error != "" || f.Seconds <= 0 || f.PeakRSSMiB <= 0 || f.RSSMet != (f.PeakRSSMiB <= 200) {
		t.Errorf("restart: findings figures %+v, want a timed, successful whole-log evaluation and the node's peak RSS against the target", f)
	} else if l := x.FindingsLater; l == nil || l.Error != "" || int64(l.Count) < 2*x.Entries || l.PeakRSSMiB <= 0 {
		t.Errorf("restart: findings as of later %+v, want a successful list of at least two findings per entry filled (%d), the receipts the two absent parties owe, and its peak RSS", l, x.Entries)
	} else if x.MediatorRSSMiB <= 0 {
		t.Errorf("restart: mediator peak RSS %.1f MiB, want the mediator's figure", x.MediatorRSSMiB)
	} else if x.MediatorAuditError != "" || x.MediatorAuditSeconds <= 0 {
		t.Errorf("restart: the mediator's audit on request took %.2f s, error %q; want a timed, successful audit", x.MediatorAuditSeconds, x.MediatorAuditError)
	}
	if !strings.Contains(progress.String(), "bench: accept ") || !strings.Contains(progress.String(), "(so far echo ") {
		t.Errorf("progress: got %q, want lines for the acceptance loads", progress.String())
	}
	var table strings.Builder
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	wants := []string{"1. Acceptance", "2. Fully exchanged", "3. Idle", "4. Scaling", "5. One node with a log of", "ListFindings over the whole log", "the same as of 2 h later", "mediator, mirroring the log"}
	if runtime.GOOS == "linux" {
		wants = append(wants, "machine's CPU busy (every process, /proc/stat): ")
	}
	for _, want := range wants {
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

// BenchmarkEcho measures the echo baseline in this process, with alpha's
// node certificate and TLS configuration, from 1, 16 and 64 goroutines
// sharing one client: the baseline of internal/e2e's BenchmarkDurableAppend,
// which drives a real node the same way. parley bench measures both as
// processes.
//
//	go test ./internal/bench -run '^$' -bench Echo
func BenchmarkEcho(b *testing.B) {
	n, err := localnet.Generate(b.Context(), localnet.Options{Dir: b.TempDir(), Parties: []string{"alpha", "bravo"}})
	if err != nil {
		b.Fatal(err)
	}
	p := n.Parties["alpha"]
	tlsCfg, a, party, err := nodeTLS(p.ConfigFile)
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := NewEchoServer(tlsCfg, a.ID, party, a.Parties[0].Keys[0].ID)
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	c, err := client.Dial(b.Context(), client.Config{Address: l.Addr().String(), CertFile: p.OperatorCert, KeyFile: p.OperatorKey, CAFiles: n.CAFiles(), Party: party})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			var (
				mu   sync.Mutex
				all  histogram
				next atomic.Int64
				wg   sync.WaitGroup
			)
			b.ResetTimer()
			for w := range conc {
				wg.Go(func() {
					var h histogram
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						t := time.Now()
						if _, err := c.Notify(b.Context(), notification(party, w, int(i))); err != nil {
							b.Error(err)
							return
						}
						h.add(time.Since(t))
					}
					mu.Lock()
					all.merge(&h)
					mu.Unlock()
				})
			}
			wg.Wait()
			b.StopTimer()
			lat := all.latency()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			b.ReportMetric(lat.P50, "p50-ms")
			b.ReportMetric(lat.P99, "p99-ms")
		})
	}
}

func TestIdleLimit(t *testing.T) {
	for _, tc := range []struct {
		duration, interval time.Duration
		samples            int
		want               time.Duration
	}{
		{16 * time.Second, time.Second, 30, 60 * time.Second},         // the samples' time is longer
		{40 * time.Second, time.Second, 30, 80 * time.Second},         // twice the duration is longer
		{2 * time.Second, 200 * time.Millisecond, 3, 4 * time.Second}, // the harness's own test
	} {
		cfg := &Config{Duration: tc.duration, CheckpointInterval: tc.interval, IdleSamples: tc.samples}
		if got := idleLimit(cfg); got != tc.want {
			t.Errorf("idleLimit(duration %s, interval %s, %d samples) = %s, want %s", tc.duration, tc.interval, tc.samples, got, tc.want)
		}
	}
}
