package verifier

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
)

// TestSpans checks the precomputed key spans against agreement.Key.ValidAt
// for random key windows, at every window edge and around it.
func TestSpans(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return base.Add(time.Duration(n) * 24 * time.Hour) }
	for round := range 200 {
		p := &party{id: "alpha"}
		var probes []time.Time
		for i := range 1 + rng.IntN(4) {
			k := agreement.Key{NotBefore: day(rng.IntN(10))}
			if rng.IntN(3) > 0 {
				k.NotAfter = k.NotBefore.Add(time.Duration(1+rng.IntN(5)) * 24 * time.Hour)
			}
			p.keys = append(p.keys, partyKey{id: fmt.Sprint("key", i), key: k})
			for _, e := range []time.Time{k.NotBefore, k.NotAfter} {
				if !e.IsZero() {
					probes = append(probes, e, e.Add(-time.Nanosecond), e.Add(time.Nanosecond))
				}
			}
		}
		probes = append(probes, time.Time{}, day(-100), day(100))
		p.buildSpans()
		for _, at := range probes {
			sp := p.spanAt(at)
			for _, k := range p.keys {
				_, valid := sp.valid[k.id]
				_, other := sp.other[k.id]
				if want := k.key.ValidAt(at); valid != want || other == want {
					t.Fatalf("round %d: key %s [%v, %v] at %v: got valid %v other %v, want valid %v",
						round, k.id, k.key.NotBefore, k.key.NotAfter, at, valid, other, want)
				}
			}
		}
	}
}
