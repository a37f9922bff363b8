package tlog

import (
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// latencies collects durations from concurrent goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// report adds p50 and p99 (in milliseconds) to the benchmark's output.
func (l *latencies) report(b *testing.B, what string) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	q := func(p float64) float64 {
		return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-"+what+"-ms")
	b.ReportMetric(q(0.99), "p99-"+what+"-ms")
}

// benchEntry returns a distinct 1 KiB entry (the log deduplicates identical ones).
func benchEntry(n uint64) []byte {
	e := make([]byte, 1024)
	binary.BigEndian.PutUint64(e, n)
	return e
}

// BenchmarkAppend measures durable appends: each op is one Append, timed
// until the index is fsynced and integrated.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name        string
		batchMaxAge time.Duration
		parallelism int // goroutines per GOMAXPROCS; 0 is sequential
	}{
		{"sequential", DefaultBatchMaxAge, 0},
		{"sequential-age10ms", 10 * time.Millisecond, 0},
		{"parallel-x16", DefaultBatchMaxAge, 16},
		{"parallel-x128", DefaultBatchMaxAge, 128},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, _ := testKey(b)
			cfg := testConfig(b, b.TempDir(), s)
			cfg.CheckpointInterval = DefaultCheckpointInterval
			cfg.BatchMaxAge = bc.batchMaxAge
			l := openLog(b, cfg)
			var (
				n   atomic.Uint64
				lat latencies
			)
			appendOne := func() {
				e := benchEntry(n.Add(1))
				start := time.Now()
				if _, err := l.Append(b.Context(), e); err != nil {
					b.Error(err)
					return
				}
				lat.add(time.Since(start))
			}
			b.SetBytes(1024)
			b.ResetTimer()
			if bc.parallelism == 0 {
				for range b.N {
					appendOne()
				}
			} else {
				b.SetParallelism(bc.parallelism)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						appendOne()
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			lat.report(b, "durable")
		})
	}
}

// BenchmarkPublication measures the time from Append to a published
// checkpoint covering the entry, with the default 1s checkpoint interval
// and no witnesses. Run with a small -benchtime such as 20x.
func BenchmarkPublication(b *testing.B) {
	s, _ := testKey(b)
	cfg := testConfig(b, b.TempDir(), s)
	cfg.CheckpointInterval = DefaultCheckpointInterval
	cfg.BatchMaxAge = DefaultBatchMaxAge
	l := openLog(b, cfg)
	var lat latencies
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		idx, err := l.Append(b.Context(), benchEntry(uint64(i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.AwaitPublished(b.Context(), idx); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(start))
	}
	b.StopTimer()
	lat.report(b, "published")
}

// BenchmarkEntries measures reading the log back in chunks of 16384 entries,
// as the state store's Reconcile does on start-up. The log holds 51,200
// entries of 1 KiB (200 full entry bundles); each op reads all of them.
func BenchmarkEntries(b *testing.B) {
	const size, chunk = 51_200, 16384
	s, _ := testKey(b)
	l := openLog(b, testConfig(b, b.TempDir(), s))
	var wg sync.WaitGroup
	var n atomic.Uint64
	for range 256 {
		wg.Go(func() {
			for i := n.Add(1); i <= size; i = n.Add(1) {
				if _, err := l.Append(b.Context(), benchEntry(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ResetTimer()
	for range b.N {
		for start := uint64(0); start < size; start += chunk {
			if _, err := l.Entries(b.Context(), start, chunk); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
