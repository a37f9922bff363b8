package mediator_test

import (
	"crypto/ed25519"
	"flag"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/mediator"
)

var auditMillion = flag.Bool("audit.million", false, "run TestAuditMillion: audit a mirrored log of 1,000,000 entries (a few minutes)")

// cpuTime returns the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// auditDir writes a data directory holding one mirrored log of n
// entries and returns it with the time to audit at and the raw Ed25519
// verifications per second of CPU time, measured on the same envelopes.
func auditDir(tb testing.TB, dir string, n int) (time.Time, float64) {
	d := newDiskNet(tb)
	entries := d.exchange(tb, n)
	d.writeDir(tb, dir, map[string][][]byte{"alpha": entries}, nil)

	p, err := envelope.Parse(entries[0])
	if err != nil {
		tb.Fatal(err)
	}
	pub := d.signers["alpha"].priv.Public().(ed25519.PublicKey)
	pae := envelope.PAE(p.Envelope.PayloadType, p.Envelope.Payload)
	sig := p.Envelope.Signatures[0].Sig
	// As many goroutines as the audit's verifiers, so that both share the
	// cores alike (on hyperthreaded cores one thread alone is faster).
	workers := runtime.GOMAXPROCS(0)
	const verifies = 20000
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	bad := make(chan struct{}, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range verifies / workers {
				if !ed25519.Verify(pub, pae, sig) {
					bad <- struct{}{}
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		tb.Fatal("signature does not verify")
	}
	return d.base.AddDate(1, 0, 0), verifies / (cpuTime() - cpu0).Seconds()
}

// audit audits dir and checks that all n entries verified.
func audit(tb testing.TB, dir string, now time.Time, n int) {
	rep, err := mediator.AuditDir(dir, now)
	if err != nil {
		tb.Fatal(err)
	}
	if rep.Entries != n || rep.Misbehaviour {
		tb.Fatalf("audited %d entries (misbehaviour %v), want %d and none", rep.Entries, rep.Misbehaviour, n)
	}
	for _, f := range rep.Feeds {
		if f.Refused+f.BadSignatures+f.Gaps+f.Equivocations > 0 {
			tb.Fatalf("feed %s: %+v, want every entry accepted", f.Sender, f)
		}
	}
}

// TestAuditMillion audits a mirrored log of 1,000,000 signed entries
// (notifications, each receipted by both counterparts) and reports the
// time, entries/s per core and raw Ed25519 verifications/s per core from
// the same run. Opt in with -audit.million.
func TestAuditMillion(t *testing.T) {
	if !*auditMillion {
		t.Skip("opt in with -audit.million")
	}
	const n = 1_000_000
	dir := t.TempDir()
	now, edPerCore := auditDir(t, dir, n)
	runtime.GC()
	cpu0, t0 := cpuTime(), time.Now()
	audit(t, dir, now, n)
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	perCore := n / cpu.Seconds()
	t.Logf("audited %d entries in %s (CPU %s) on %d cores: %.0f entries/s per core; raw Ed25519 %.0f verifications/s per core; ratio %.2f",
		n, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), runtime.GOMAXPROCS(0), perCore, edPerCore, perCore/edPerCore)
}

// BenchmarkAudit audits a mirrored log of 30,000 entries (read from disk,
// every signature and feed verified, rules evaluated) per iteration, and
// reports entries/s per core of CPU time next to raw Ed25519
// verifications/s per core measured in the same run.
func BenchmarkAudit(b *testing.B) {
	const n = 30000
	dir := b.TempDir()
	now, edPerCore := auditDir(b, dir, n)
	runtime.GC()
	b.ResetTimer()
	cpu0, iters := cpuTime(), 0
	for b.Loop() {
		audit(b, dir, now, n)
		iters++
	}
	perCore := float64(n*iters) / (cpuTime() - cpu0).Seconds()
	b.ReportMetric(perCore, "entries/s/core")
	b.ReportMetric(edPerCore, "ed25519/s/core")
	b.ReportMetric(perCore/edPerCore, "ratio")
}
