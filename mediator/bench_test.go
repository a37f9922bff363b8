package mediator_test

import (
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/mediator"
)

var (
	auditMillion = flag.Bool("audit.million", false, "run TestAuditMillion: audit a mirrored log of 1,000,000 entries (a few minutes)")
	auditProfile = flag.String("audit.cpuprofile", "", "with -audit.million, write a CPU profile of the audit alone (not the setup) to this file")
)

// cpuTime returns the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// auditDir writes a data directory holding one mirrored log of n
// entries and returns the time to audit it at and two functions that
// measure verifications per second of CPU time on the same envelopes: raw
// Ed25519 (see rawEd25519) and the audit's own verification call (see
// ownEd25519). On a shared machine the load changes from one minute to
// the next: measure them next to the audit, not once.
func auditDir(tb testing.TB, dir string, n int) (time.Time, func() float64, func() float64) {
	d := newDiskNet(tb)
	entries := d.exchange(tb, n)
	d.writeDir(tb, dir, map[string][][]byte{"alpha": entries}, nil)
	return d.base.AddDate(1, 0, 0), func() float64 { return rawEd25519(tb, d, entries) }, func() float64 { return ownEd25519(tb, d, entries) }
}

// rawEd25519 verifies the signature of every entry once with
// ed25519.Verify, on as many goroutines as the audit's verifiers (so that
// both share the cores alike: on hyperthreaded cores one thread alone is
// faster), and returns the verifications per second of CPU time. Only the
// verifications are timed: the envelopes are parsed and their PAE built
// beforehand, a chunk at a time.
func rawEd25519(tb testing.TB, d *diskNet, entries [][]byte) float64 {
	pubs := map[string]ed25519.PublicKey{}
	for id, s := range d.signers {
		pubs[id] = s.priv.Public().(ed25519.PublicKey)
	}
	type job struct {
		pub      ed25519.PublicKey
		msg, sig []byte
	}
	return verificationsPerCore(tb, entries, func(chunk [][]byte) func(i int) bool {
		jobs := make([]job, len(chunk))
		for i, raw := range chunk {
			p := mustParse(tb, raw)
			jobs[i] = job{pubs[p.Statement.GetHeader().GetSender()], envelope.PAE(p.Envelope.PayloadType, p.Envelope.Payload), p.Envelope.Signatures[0].Sig}
		}
		return func(i int) bool { return ed25519.Verify(jobs[i].pub, jobs[i].msg, jobs[i].sig) }
	})
}

// ownEd25519 is rawEd25519 through envelope.VerifySignature, the call the
// audit verifies with (each key's point cached, and its table of
// multiples once it has verified a few signatures): what the audit's
// verification alone costs, to tell it from the rest of the audit.
func ownEd25519(tb testing.TB, d *diskNet, entries [][]byte) float64 {
	verifiers := map[string]signature.Verifier{}
	for _, s := range d.signers {
		v, err := signature.LoadED25519Verifier(s.priv.Public().(ed25519.PublicKey))
		if err != nil {
			tb.Fatal(err)
		}
		verifiers[s.keyID] = v
	}
	return verificationsPerCore(tb, entries, func(chunk [][]byte) func(i int) bool {
		parsed := make([]*envelope.Parsed, len(chunk))
		for i, raw := range chunk {
			parsed[i] = mustParse(tb, raw)
		}
		return func(i int) bool {
			_, err := envelope.VerifySignature(parsed[i], verifiers)
			return err == nil
		}
	})
}

// verificationsPerCore verifies every entry, a chunk of 50,000 at a time:
// prepare(chunk), untimed, returns the verification of the chunk's i-th
// entry, which runs on GOMAXPROCS goroutines. It returns the
// verifications per second of CPU time.
func verificationsPerCore(tb testing.TB, entries [][]byte, prepare func(chunk [][]byte) func(i int) bool) float64 {
	workers := runtime.GOMAXPROCS(0)
	var cpu time.Duration
	for lo := 0; lo < len(entries); lo += 50000 {
		chunk := entries[lo:min(lo+50000, len(entries))]
		verify := prepare(chunk)
		runtime.GC()
		cpu0 := cpuTime()
		var (
			next atomic.Int64
			bad  atomic.Bool
			wg   sync.WaitGroup
		)
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(chunk) {
						return
					}
					if !verify(i) {
						bad.Store(true)
					}
				}
			})
		}
		wg.Wait()
		cpu += cpuTime() - cpu0
		if bad.Load() {
			tb.Fatal("a signature does not verify")
		}
	}
	return float64(len(entries)) / cpu.Seconds()
}

// mustParse parses an envelope the test signed.
func mustParse(tb testing.TB, raw []byte) *envelope.Parsed {
	p, err := envelope.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return p
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
	mediator.WithoutReplayCheck(t)
	const n = 1_000_000
	dir := t.TempDir()
	now, raw, own := auditDir(t, dir, n)
	before, ownBefore := raw(), own()
	resetPeakRSS()
	if *auditProfile != "" {
		f, err := os.Create(*auditProfile)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	cpu0, t0 := cpuTime(), time.Now()
	audit(t, dir, now, n)
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	if *auditProfile != "" {
		pprof.StopCPUProfile()
	}
	peak := peakRSS()
	// Raw Ed25519 before and after the audit, on the same entries and
	// cores: the mean is what the audit's verifications cost meanwhile.
	edPerCore := (before + raw()) / 2
	ownPerCore := (ownBefore + own()) / 2
	perCore := n / cpu.Seconds()
	t.Logf("audited %d entries in %s (CPU %s) on %d cores: %.0f entries/s per core; raw Ed25519 (crypto/ed25519.Verify) %.0f verifications/s per core; ratio %.2f; peak RSS during the audit %d MiB",
		n, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), runtime.GOMAXPROCS(0), perCore, edPerCore, perCore/edPerCore, peak>>20)
	t.Logf("the audit's own verification call (envelope.VerifySignature) %.0f verifications/s per core: the audit runs at %.2f of it, the rest of the audit costing %.0f%% of its CPU",
		ownPerCore, perCore/ownPerCore, 100*(1-perCore/ownPerCore))
}

// resetPeakRSS returns what the setup left to the OS and resets the
// process's peak resident set size (VmHWM), so that peakRSS measures what
// follows.
func resetPeakRSS() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns the process's peak resident set size (VmHWM), or 0.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkAudit audits a mirrored log of 30,000 entries (read from disk,
// every signature and feed verified, rules evaluated) per iteration, and
// reports entries/s per core of CPU time next to raw Ed25519
// verifications/s per core measured in the same run.
func BenchmarkAudit(b *testing.B) {
	mediator.WithoutReplayCheck(b)
	const n = 30000
	dir := b.TempDir()
	now, raw, _ := auditDir(b, dir, n)
	var (
		cpu   time.Duration
		iters int
		ed    float64
		peak  int64
	)
	for b.Loop() {
		b.StopTimer()
		resetPeakRSS()
		b.StartTimer()
		cpu0 := cpuTime()
		audit(b, dir, now, n)
		cpu += cpuTime() - cpu0
		peak = max(peak, peakRSS())
		iters++
		// Raw Ed25519 after each audit, so that both see the same load.
		b.StopTimer()
		ed += raw()
		b.StartTimer()
	}
	perCore := float64(n*iters) / cpu.Seconds()
	edPerCore := ed / float64(iters)
	b.ReportMetric(perCore, "entries/s/core")
	b.ReportMetric(edPerCore, "ed25519/s/core")
	b.ReportMetric(perCore/edPerCore, "ratio")
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
}

// BenchmarkMirrorMemory mirrors 200,000 entries of 400 bytes in batches of
// 1,000, as the mediator's sync appends them, and reports the Go heap the
// open mirror holds per entry.
func BenchmarkMirrorMemory(b *testing.B) {
	const n, batch = 200000, 1000
	raws := make([][]byte, batch)
	for b.Loop() {
		ml, err := mediator.OpenMirrorLog(b.TempDir(), true)
		if err != nil {
			b.Fatal(err)
		}
		before := heapInUse()
		for i := 0; i < n; i += batch {
			for j := range raws {
				raws[j] = []byte(fmt.Sprintf("%0400d", i+j))
			}
			if err := ml.Append(raws); err != nil {
				b.Fatal(err)
			}
		}
		clear(raws)
		b.ReportMetric(float64(heapInUse()-before)/n, "heap-B/entry")
		ml.Close()
	}
}

// heapInUse returns the live Go heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
