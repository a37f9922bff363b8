package state

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var benchSenders = []string{"alpha", "bravo", "charlie", "delta", "echo"}

// BenchmarkRecord records batches of 100 entries, one transaction each.
func BenchmarkRecord(b *testing.B) {
	s := tempStore(b)
	seqs := make(map[string]uint64)
	var index uint64
	batch := make([]Record, 100)
	b.ResetTimer()
	for range b.N {
		for i := range batch {
			sender := benchSenders[index%uint64(len(benchSenders))]
			seqs[sender]++
			batch[i] = rec(sender, seqs[sender], index)
			index++
		}
		if err := s.Record(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRecordParallel records one entry per call from many goroutines,
// as a node does after each Append; concurrent calls share transactions.
func BenchmarkRecordParallel(b *testing.B) {
	s := tempStore(b)
	var index atomic.Uint64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := index.Add(1)
			// One sender per entry keeps the benchmark free of seq bookkeeping.
			if err := s.Record([]Record{rec(fmt.Sprint("sender-", i), 1, i-1)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

const benchLogSize = 1_000_000

// BenchmarkReconcile measures start-up against a log of 1,000,000 synthetic
// entries: "full" replays all of them into an empty store; "tail" opens a
// store that already reflects all but the last 1,000 and replays those.
// Reading and parsing real envelopes is not included. Run with -benchtime 1x.
func BenchmarkReconcile(b *testing.B) {
	log := makeLog(benchLogSize, benchSenders...)

	b.Run("full", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			path := filepath.Join(b.TempDir(), "state.db")
			b.StartTimer()
			cpu := cpuTime(b)
			s, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Reconcile(b.Context(), benchLogSize, log.read, parseLeaf); err != nil {
				b.Fatal(err)
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric((cpuTime(b) - cpu).Seconds(), "cpu-s")
		}
		b.ReportMetric(float64(benchLogSize)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})

	b.Run("tail", func(b *testing.B) {
		const tail = 1000
		path := filepath.Join(b.TempDir(), "state.db")
		s, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Reconcile(b.Context(), benchLogSize-tail, log.read, parseLeaf); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			// Put the store back behind the log.
			cp := filepath.Join(b.TempDir(), "state.db")
			copyFile(b, path, cp)
			b.StartTimer()
			cpu := cpuTime(b)
			start := time.Now()
			s, err := Open(cp)
			if err != nil {
				b.Fatal(err)
			}
			opened := time.Since(start)
			if err := s.Reconcile(b.Context(), benchLogSize, log.read, parseLeaf); err != nil {
				b.Fatal(err)
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(opened.Microseconds())/1000, "open-ms")
			b.ReportMetric((cpuTime(b) - cpu).Seconds(), "cpu-s")
		}
	})
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// cpuTime returns the process's user and system CPU time, to tell the
// benchmark's own cost from waiting for other processes on a shared machine.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
