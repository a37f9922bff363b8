package e2e_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/localnet"
)

// BenchmarkDurableAppend measures submissions through a node over gRPC
// (mTLS, Submit: sign, verify, sequence, append to the Tessera log and wait
// for a durable index) from 1, 16 and 64 concurrent submitters, with the
// node, a mediator's witness and the client in this process (the other
// parties' nodes down, so no peer receives and receipts the entries on the
// same CPUs). It reports appends/s and the p50 and p99 time from sending
// Submit to its answer, which the node gives once the entry's index is
// durable.
//
//	go test ./internal/e2e -run '^$' -bench DurableAppend
func BenchmarkDurableAppend(b *testing.B) {
	net := startAlone(b, localnet.Options{CheckpointInterval: time.Second}, "alpha")
	c := operator(b, net, "alpha")
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			lat := make([][]time.Duration, conc)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			began := time.Now()
			for w := range conc {
				wg.Go(func() {
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						t0 := time.Now()
						if _, err := c.Notify(context.Background(), notification(int(i))); err != nil {
							b.Errorf("Notify: %v", err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(began)
			b.StopTimer()
			all := slices.Concat(lat...)
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "appends/s")
			b.ReportMetric(percentile(all, 50), "p50-ms")
			b.ReportMetric(percentile(all, 99), "p99-ms")
		})
	}
}

// BenchmarkWitnessedPublication measures, for submissions from 4
// concurrent submitters to a node alone with its witness (as in
// BenchmarkDurableAppend), the time from sending Submit until a checkpoint
// that covers the entry is published, cosigned by the mediator's witness
// (quorum 1 of 1) and verified by the client, with checkpoint intervals of
// 200ms and 1s. Publication is observed by polling GetCheckpoint every 5ms,
// which adds up to 5ms. It also reports the time to a durable index.
// Publication latency needs many samples at once; run it as
//
//	go test ./internal/e2e -run '^$' -bench WitnessedPublication -benchtime=300x
func BenchmarkWitnessedPublication(b *testing.B) {
	for _, interval := range []time.Duration{200 * time.Millisecond, time.Second} {
		net := startAlone(b, localnet.Options{CheckpointInterval: interval}, "alpha")
		c := operator(b, net, "alpha")
		b.Run(fmt.Sprintf("interval=%v", interval), func(b *testing.B) {
			benchPublication(b, c, net.LogKeys("alpha"))
		})
	}
}

func benchPublication(b *testing.B, c *client.Client, keys client.LogKeys) {
	const submitters = 4
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start, _, err := c.Checkpoint(ctx, keys)
	if err != nil {
		b.Fatal(err)
	}

	// The poller records when each checkpoint size was first seen.
	type seen struct {
		size uint64
		at   time.Time
	}
	var (
		mu    sync.Mutex
		sizes = []seen{{start.Size, time.Now()}}
	)
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cp, _, err := c.Checkpoint(ctx, keys)
			if err != nil {
				continue
			}
			mu.Lock()
			if cp.Size > sizes[len(sizes)-1].size {
				sizes = append(sizes, seen{cp.Size, time.Now()})
			}
			mu.Unlock()
		}
	}()

	type sample struct {
		index     uint64
		sent      time.Time
		toDurable time.Duration
	}
	samples := make([][]sample, submitters)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range submitters {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				t0 := time.Now()
				e, err := c.Notify(ctx, notification(int(i)))
				if err != nil {
					b.Errorf("Notify: %v", err)
					return
				}
				samples[w] = append(samples[w], sample{e.GetIndex(), t0, time.Since(t0)})
			}
		})
	}
	wg.Wait()
	all := slices.Concat(samples...)
	var last uint64
	for _, s := range all {
		last = max(last, s.index)
	}
	// Wait for the publication of the last entry.
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		top := sizes[len(sizes)-1].size
		mu.Unlock()
		if top > last {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("no checkpoint covered index %d within a minute", last)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-pollDone

	var durable, published []time.Duration
	for _, s := range all {
		durable = append(durable, s.toDurable)
		i, _ := slices.BinarySearchFunc(sizes, s.index+1, func(x seen, size uint64) int {
			return cmp.Compare(x.size, size)
		})
		published = append(published, sizes[i].at.Sub(s.sent))
	}
	b.ReportMetric(percentile(durable, 50), "durable-p50-ms")
	b.ReportMetric(percentile(durable, 99), "durable-p99-ms")
	b.ReportMetric(percentile(published, 50), "published-p50-ms")
	b.ReportMetric(percentile(published, 99), "published-p99-ms")
}

// percentile returns the p-th percentile of ds in milliseconds (nearest
// rank).
func percentile(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	i = min(max(i, 1), len(s)) - 1
	return float64(s[i]) / float64(time.Millisecond)
}
