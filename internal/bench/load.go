package bench

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's precision: 2^subBits buckets per power of
// two, so a recorded latency is off by less than 1/2^subBits (0.8 %).
const subBits = 7

// histogram counts durations in log-linear buckets: bounded memory however
// long the run, precise to under 1 %. The zero value is empty; it is not
// safe for concurrent use (each worker keeps its own and they are merged).
type histogram struct {
	counts [(64 - subBits + 1) << subBits]uint64
	n      uint64
	max    time.Duration
}

func bucketOf(v uint64) int {
	if v < 1<<(subBits+1) {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)<<subBits + int(v>>shift) - 1<<subBits
}

// bucketMid is the middle of bucket i's range.
func bucketMid(i int) uint64 {
	if i < 1<<(subBits+1) {
		return uint64(i)
	}
	shift := i>>subBits - 1
	lo := (uint64(1)<<subBits + uint64(i&(1<<subBits-1))) << shift
	return lo + (uint64(1)<<shift)/2
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q ≤ 1) of the recorded durations.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketMid(i)), h.max)
		}
	}
	return h.max
}

// Latency summarizes a latency distribution, in milliseconds.
type Latency struct {
	// N is how many operations were timed.
	N uint64 `json:"n"`
	// P50, P90 and P99 are percentiles; Max is the slowest operation.
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func (h *histogram) latency() Latency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{N: h.n, P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)), Max: ms(h.max)}
}

// op is one operation of a closed-loop worker. It returns when the
// operation is complete; its error counts as a failed operation.
type op func(ctx context.Context) error

// opTimeout bounds one operation, so that a stuck server cannot stall a run.
const opTimeout = 30 * time.Second

// loadResult is what a closed-loop run measured.
type loadResult struct {
	ops, errors int64
	firstErr    string
	hist        histogram
	elapsed     time.Duration
}

// drive runs one closed loop per worker for d: each loop calls its op again
// as soon as the previous one returned. If gate is not nil, each call waits
// for it first, untimed (a loop stops when gate fails). Operations in
// flight at the end are completed and counted; elapsed runs until the last
// of them. A progress line is written to progress every second. drive
// stops early if ctx ends.
func drive(ctx context.Context, name string, workers []op, gate func(context.Context) error, d time.Duration, progress io.Writer) *loadResult {
	var (
		ops, errs atomic.Int64
		mu        sync.Mutex
		res       = &loadResult{}
		wg        sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	gctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	stop := startProgress(name, start, d, progress, func() string {
		return fmt.Sprintf("ops %d  errors %d", ops.Load(), errs.Load())
	})
	for _, w := range workers {
		wg.Go(func() {
			h := new(histogram)
			var firstErr error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if gate != nil && gate(gctx) != nil {
					break
				}
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				t := time.Now()
				err := w(octx)
				lat := time.Since(t)
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					errs.Add(1)
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				ops.Add(1)
				h.add(lat)
			}
			mu.Lock()
			defer mu.Unlock()
			res.hist.merge(h)
			if firstErr != nil && res.firstErr == "" {
				res.firstErr = firstErr.Error()
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	stop()
	res.ops, res.errors = ops.Load(), errs.Load()
	return res
}

// startProgress writes "bench: NAME  ELAPSED/TOTAL  STATUS" to w every
// second until the returned function is called (TOTAL only if not 0). A nil
// w writes nothing.
func startProgress(name string, start time.Time, total time.Duration, w io.Writer, status func() string) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				limit := ""
				if total > 0 {
					limit = fmt.Sprintf("/%.0fs", total.Seconds())
				}
				fmt.Fprintf(w, "bench: %-22s %4.0fs%s  %s\n", name, time.Since(start).Seconds(), limit, status())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
