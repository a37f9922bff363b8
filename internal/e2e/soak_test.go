package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/chaos"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
)

var (
	soakDuration = flag.Duration("soak.duration", 0, "run TestSoak for this long under load, for example 10m (0 skips it)")
	soakInterval = flag.Duration("soak.interval", 5*time.Second, "how often TestSoak samples each process")
	soakOut      = flag.String("soak.out", "", "write TestSoak's samples and trends as JSON to this file")
)

// Tolerances of TestSoak: over the second half of the run, the fitted
// trend of a process's anonymous memory may grow by at most
// max(soakMemFraction of its mean, soakMemFloor), and its goroutines by
// at most max(soakGoroutineFraction of their mean, soakGoroutineFloor).
const (
	soakMemFraction       = 0.10
	soakMemFloor          = 8 << 20
	soakGoroutineFraction = 0.10
	soakGoroutineFloor    = 25
	// soakMaxFailed is the fraction of submissions that may fail (time
	// out on a starved machine) without failing the soak.
	soakMaxFailed = 0.01
)

// soakSample is one sample of one process.
type soakSample struct {
	At         float64 `json:"at_seconds"`
	RSS        int64   `json:"rss_bytes"`      // VmRSS
	Anon       int64   `json:"rss_anon_bytes"` // RssAnon: heap, stacks, Go runtime
	Goroutines int     `json:"goroutines"`     // -1 without an admin port
	// LogEntries is the size of the node's latest witnessed checkpoint;
	// for a mediator, the sum over the nodes it mirrors.
	LogEntries uint64 `json:"log_entries"`
}

// soakSeries is one process's samples and the trends fitted over the
// second half.
type soakSeries struct {
	Process string       `json:"process"`
	Samples []soakSample `json:"samples"`
	// Growth of each fitted trend over the second half of the run.
	RSSGrowth       float64 `json:"rss_growth_bytes"`
	AnonGrowth      float64 `json:"rss_anon_growth_bytes"`
	GoroutineGrowth float64 `json:"goroutine_growth"`
	AnonMean        float64 `json:"rss_anon_mean_bytes"`
	// AnonPerEntry is the least-squares slope of anonymous memory over
	// log entries in the second half: what each new entry costs.
	AnonPerEntry  float64 `json:"rss_anon_bytes_per_entry"`
	GoroutineMean float64 `json:"goroutine_mean"`
}

// TestSoak runs load against a network of three nodes and a mediator, each
// its own process, for -soak.duration, sampling every process's resident
// memory (/proc/PID/status) and every node's goroutines (the profiler on
// its admin port) every -soak.interval. It fails if, over the second half
// of the run, the least-squares trend of a process's anonymous memory or a
// node's goroutines grows beyond the tolerances above: the first half is
// warm-up (caches filling, the Go heap finding its size). VmRSS is reported
// but not judged: it includes the pages of the nodes' bbolt store that
// the kernel mapped in, which grow with the log, as a page cache does.
//
// It also reports what each new log entry costs in anonymous memory (the
// slope of memory over log size): memory that grows with the log, such
// as statements kept for the rule engine, is growth all the same, and
// fails the soak like a leak would; the figure says which it is.
//
// It is skipped unless -soak.duration is given:
//
//	go test ./internal/e2e -run TestSoak -soak.duration=10m -timeout=30m -v
func TestSoak(t *testing.T) {
	if *soakDuration <= 0 {
		t.Skip("soak: give -soak.duration=10m to run it")
	}
	ctx := context.Background()
	bin := parleyBinary(t)
	netw := generate(t, localnet.Options{
		Parties:            []string{"alpha", "bravo", "charlie"},
		CheckpointInterval: 500 * time.Millisecond,
		Exchange:           config.Exchange{SyncInterval: "500ms", RelayDelay: "100ms", BackoffMax: "1s"},
	})
	admin := map[string]string{}
	for _, id := range netw.PartyIDs {
		admin[id] = freeLoopbackAddr(t)
		err := netw.UpdateNodeConfig(id, func(c *config.Node) {
			c.AdminListen = admin[id]
			c.Limits.RatePerParty = -1
			c.LogLevel = "warn"
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	logDir := t.TempDir()
	openLog := func(name string) *os.File {
		f, err := os.Create(filepath.Join(logDir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	pids := map[string]func() int{}
	for _, id := range netw.MediatorIDs {
		m, err := chaos.StartMediator(ctx, netw, bin, id, openLog("mediator-"+id))
		if err != nil {
			t.Fatalf("start mediator %s: %v", id, err)
		}
		t.Cleanup(m.Stop) // after the nodes: cleanups run last in, first out
		pids["mediator-"+id] = m.PID
	}
	for _, id := range netw.PartyIDs {
		p, err := netw.StartProcess(ctx, bin, id, openLog(id))
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		t.Cleanup(func() { _ = p.Stop() })
		pids[id] = p.PID
	}

	// Load: two operator clients per party, each submitting one
	// notification after another, with a short pause.
	lctx, cancel := context.WithTimeout(ctx, *soakDuration)
	defer cancel()
	var (
		wg            sync.WaitGroup
		acked, failed atomic.Int64
	)
	for _, id := range netw.PartyIDs {
		for w := range 2 {
			c := operator(t, netw, id)
			wg.Go(func() {
				for i := 0; lctx.Err() == nil; i++ {
					sctx, cancel := context.WithTimeout(lctx, 15*time.Second)
					_, err := c.Notify(sctx, chaos.Notification(fmt.Sprintf("Soak %s-%d-%d", id, w, i), 9000))
					cancel()
					switch {
					case err == nil:
						acked.Add(1)
					case lctx.Err() == nil:
						if failed.Add(1) <= 3 {
							t.Logf("%s: submission failed without any fault: %v", id, err)
						}
					}
					select {
					case <-lctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
				}
			})
		}
	}

	// Sampling.
	series := map[string]*soakSeries{}
	names := append(append([]string(nil), netw.PartyIDs...), func() []string {
		var m []string
		for _, id := range netw.MediatorIDs {
			m = append(m, "mediator-"+id)
		}
		return m
	}()...)
	for _, name := range names {
		series[name] = &soakSeries{Process: name}
	}
	readers := map[string]*client.Client{}
	for _, id := range netw.PartyIDs {
		readers[id] = operator(t, netw, id)
	}
	// logSizes reads every node's witnessed log size, and their sum under
	// each mediator's name.
	logSizes := func() map[string]uint64 {
		sizes := map[string]uint64{}
		var total uint64
		for _, id := range netw.PartyIDs {
			cctx, cancel := context.WithTimeout(lctx, 10*time.Second)
			cp, _, err := readers[id].Checkpoint(cctx, netw.LogKeys(id))
			cancel()
			if err == nil {
				sizes[id] = cp.Size
				total += cp.Size
			}
		}
		for _, id := range netw.MediatorIDs {
			sizes["mediator-"+id] = total
		}
		return sizes
	}
	start := time.Now()
	tick := time.NewTicker(*soakInterval)
	defer tick.Stop()
	progress := time.Now()
	skipped := 0
sampling:
	for {
		select {
		case <-lctx.Done():
			break sampling
		case <-tick.C:
		}
		at := time.Since(start).Seconds()
		sizes := logSizes()
		for _, name := range names {
			rss, anon, err := readRSS(pids[name]())
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			g := -1
			if addr, ok := admin[name]; ok {
				if g, err = scrapeGoroutines(lctx, addr); err != nil {
					if lctx.Err() != nil {
						break sampling
					}
					// A starved machine can be slow to answer: skip the
					// sample, and fail only if too many are missing.
					skipped++
					t.Logf("%s: sample skipped: %v", name, err)
					continue
				}
			}
			s := series[name]
			s.Samples = append(s.Samples, soakSample{At: at, RSS: rss, Anon: anon, Goroutines: g, LogEntries: sizes[name]})
		}
		if time.Since(progress) >= time.Minute {
			progress = time.Now()
			t.Logf("soak: %s, %d acknowledged", time.Since(start).Round(time.Second), acked.Load())
		}
	}
	wg.Wait()

	if skipped > 0 {
		t.Logf("soak: %d samples skipped (the profiler did not answer within 10s)", skipped)
	}
	expected := int(*soakDuration / *soakInterval)
	for _, name := range names {
		s := series[name]
		if len(s.Samples) < max(8, expected/2) {
			t.Errorf("%s: only %d samples of about %d; run longer, or sample less often on a busy machine", name, len(s.Samples), expected)
			continue
		}
		half := s.Samples[len(s.Samples)/2:]
		span := half[len(half)-1].At - half[0].At
		xs := make([]float64, len(half))
		rss, anon, gor, entries := make([]float64, len(half)), make([]float64, len(half)), make([]float64, len(half)), make([]float64, len(half))
		for i, v := range half {
			xs[i], rss[i], anon[i], gor[i], entries[i] = v.At, float64(v.RSS), float64(v.Anon), float64(v.Goroutines), float64(v.LogEntries)
		}
		s.AnonPerEntry = slope(entries, anon)
		s.RSSGrowth = slope(xs, rss) * span
		s.AnonGrowth = slope(xs, anon) * span
		s.AnonMean = mean(anon)
		if s.Samples[0].Goroutines >= 0 {
			s.GoroutineGrowth = slope(xs, gor) * span
			s.GoroutineMean = mean(gor)
		}
		first, last := s.Samples[0], s.Samples[len(s.Samples)-1]
		t.Logf("%-22s RSS %6.1f → %6.1f MiB (2nd-half trend %+6.1f MiB), anon %6.1f → %6.1f MiB (trend %+6.1f MiB), goroutines %4d → %4d (trend %+5.1f)",
			name, mib(first.RSS), mib(last.RSS), s.RSSGrowth/(1<<20), mib(first.Anon), mib(last.Anon), s.AnonGrowth/(1<<20),
			first.Goroutines, last.Goroutines, s.GoroutineGrowth)
		t.Logf("%-22s log entries %d → %d; anonymous memory %.0f bytes per entry (2nd-half slope)", name, first.LogEntries, last.LogEntries, s.AnonPerEntry)
		if limit := max(soakMemFraction*s.AnonMean, soakMemFloor); s.AnonGrowth > limit {
			t.Errorf("%s: anonymous memory grows by %.1f MiB over the second half (trend), more than the %.1f MiB tolerated", name, s.AnonGrowth/(1<<20), limit/(1<<20))
		}
		if limit := max(soakGoroutineFraction*s.GoroutineMean, soakGoroutineFloor); s.GoroutineGrowth > limit {
			t.Errorf("%s: goroutines grow by %.1f over the second half (trend), more than the %.1f tolerated", name, s.GoroutineGrowth, limit)
		}
	}
	t.Logf("soak: %s under load, %d notifications acknowledged, %d failed", soakDuration.String(), acked.Load(), failed.Load())
	if n := failed.Load(); float64(n) > soakMaxFailed*float64(n+acked.Load()) {
		t.Errorf("%d of %d submissions failed, more than %.0f%%", n, n+acked.Load(), 100*soakMaxFailed)
	}
	if *soakOut != "" {
		doc := struct {
			Duration     string        `json:"duration"`
			Acknowledged int64         `json:"acknowledged"`
			Failed       int64         `json:"failed"`
			Series       []*soakSeries `json:"series"`
		}{Duration: soakDuration.String(), Acknowledged: acked.Load(), Failed: failed.Load()}
		for _, name := range names {
			doc.Series = append(doc.Series, series[name])
		}
		b, err := json.MarshalIndent(doc, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*soakOut, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// freeLoopbackAddr returns a loopback address with a port free just now.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// readRSS reads a process's resident memory, all of it and its anonymous
// part, from /proc/PID/status.
func readRSS(pid int) (rss, anon int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("couldn't read the process's status: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "RssAnon") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("couldn't parse %s %q: %w", name, value, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			anon = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return rss, anon, sc.Err()
}

// scrapeGoroutines reads a node's goroutine count from the profiler on its
// admin port (the first line of /debug/pprof/goroutine?debug=1). /metrics
// has it too (go_goroutines), but scraping it evaluates the agreed rules
// over the whole log (parley_findings), which would measure the scraper
// rather than the node.
func scrapeGoroutines(ctx context.Context, addr string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("couldn't read the goroutine profile: %w", err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("couldn't read the goroutine profile: %w", err)
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("unexpected goroutine profile header %q", line)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("unexpected goroutine profile header %q: %w", line, err)
	}
	return n, nil
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	mx, my := mean(xs), mean(ys)
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
