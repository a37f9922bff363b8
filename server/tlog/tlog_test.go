package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/parley-dev/parley/envelope"
)

const testOrigin = "example.org/parley/alpha"

// testKey returns a checkpoint signer and verifier for testOrigin.
func testKey(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	skey, _, err := GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, v, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func testConfig(t testing.TB, dir string, s note.Signer) Config {
	t.Helper()
	return Config{
		Dir:                dir,
		Origin:             testOrigin,
		Signer:             s,
		CheckpointInterval: 100 * time.Millisecond,
		BatchMaxAge:        5 * time.Millisecond,
		Logger:             slog.New(slog.DiscardHandler),
	}
}

func openLog(t testing.TB, cfg Config) *Log {
	t.Helper()
	l, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func leaf(i int) []byte { return fmt.Appendf(nil, "envelope %d", i) }

// appendAll appends leaves concurrently and returns them by index.
func appendAll(t testing.TB, l *Log, leaves [][]byte) map[uint64][]byte {
	t.Helper()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		got  = make(map[uint64][]byte)
		errs []error
	)
	for _, e := range leaves {
		wg.Go(func() {
			i, err := l.Append(t.Context(), e)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			got[i] = e
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(got) != len(leaves) {
		t.Fatalf("got %d distinct indexes, want %d", len(got), len(leaves))
	}
	return got
}

func leaves(from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, leaf(i))
	}
	return out
}

// published waits for a checkpoint covering size-1 and verifies it.
func published(t testing.TB, l *Log, v note.Verifier, size uint64) (log.Checkpoint, []byte) {
	t.Helper()
	raw, err := l.AwaitPublished(t.Context(), size-1)
	if err != nil {
		t.Fatalf("AwaitPublished: %v", err)
	}
	cp, err := VerifyCheckpoint(raw, testOrigin, v)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size < size {
		t.Fatalf("got checkpoint size %d, want ≥ %d", cp.Size, size)
	}
	return cp, raw
}

func TestAppendAndEntries(t *testing.T) {
	s, _ := testKey(t)
	l := openLog(t, testConfig(t, t.TempDir(), s))
	const n = 600 // spans two full entry bundles and a partial one
	byIndex := appendAll(t, l, leaves(0, n))
	for i := range uint64(n) {
		if _, ok := byIndex[i]; !ok {
			t.Fatalf("index %d was not assigned", i)
		}
	}
	size, err := l.DurableSize(t.Context())
	if err != nil || size != n {
		t.Fatalf("DurableSize: got %d, %v, want %d", size, err, n)
	}

	for _, tc := range []struct {
		name        string
		start       uint64
		count, want int
	}{
		{"first", 0, 1, 1},
		{"all", 0, n, n},
		{"across bundle", 250, 20, 20},
		{"partial bundle", 512, 88, 88},
		{"past the end", 590, 50, 10},
		{"at the end", n, 5, 0},
		{"zero count", 3, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := l.Entries(t.Context(), tc.start, tc.count)
			if err != nil {
				t.Fatalf("Entries: %v", err)
			}
			if len(got) != tc.want {
				t.Fatalf("got %d entries, want %d", len(got), tc.want)
			}
			for j, e := range got {
				if want := byIndex[tc.start+uint64(j)]; !bytes.Equal(e, want) {
					t.Errorf("entry %d: got %q, want %q", tc.start+uint64(j), e, want)
				}
			}
		})
	}
}

func TestAppendDuplicateReturnsSameIndex(t *testing.T) {
	s, _ := testKey(t)
	l := openLog(t, testConfig(t, t.TempDir(), s))
	first, err := l.Append(t.Context(), leaf(1))
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.Append(t.Context(), leaf(1))
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("got index %d for the same bytes, want %d", again, first)
	}
}

func TestAppendErrors(t *testing.T) {
	s, _ := testKey(t)
	l := openLog(t, testConfig(t, t.TempDir(), s))
	if _, err := l.Append(t.Context(), make([]byte, MaxEntrySize+1)); err == nil {
		t.Error("Append of an oversized entry: got nil error")
	}
	if _, err := l.AwaitPublished(t.Context(), 0); err == nil {
		t.Error("AwaitPublished of an index beyond the log: got nil error")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Append(ctx, leaf(2)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context: got %v, want context.Canceled", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), leaf(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: got %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}

// TestEnqueueKeepsOrder enqueues entries one after the other while batches
// are being written and waits for them in any order, half through their
// Queued and half by appending the same bytes: the log holds them in the
// order they were enqueued, so none became durable before an earlier one.
func TestEnqueueKeepsOrder(t *testing.T) {
	s, _ := testKey(t)
	l := openLog(t, testConfig(t, t.TempDir(), s))
	const n = 600
	idx := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		q, err := l.Enqueue(leaf(i))
		if err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
		if i == 5 {
			if _, err := l.Enqueue(leaf(i)); err == nil {
				t.Error("Enqueue of bytes enqueued already: got nil error")
			}
		}
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				idx[i], err = q.Wait(t.Context())
			} else {
				idx[i], err = l.Append(t.Context(), leaf(i))
			}
			if err != nil {
				t.Errorf("entry %d: %v", i, err)
			}
		})
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // let batches be cut
		}
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if idx[i] <= idx[i-1] {
			t.Fatalf("entry %d is at index %d, entry %d at %d: want enqueue order", i-1, idx[i-1], i, idx[i])
		}
	}
}

// TestQueuedWait covers what a Queued answers besides a fresh entry: the
// index of bytes appended already, and an error for one never enqueued (a
// failed Enqueue's) or a context ended first.
func TestQueuedWait(t *testing.T) {
	s, _ := testKey(t)
	l := openLog(t, testConfig(t, t.TempDir(), s))
	ctx := t.Context()
	first, err := l.Append(ctx, leaf(1))
	if err != nil {
		t.Fatal(err)
	}
	q, err := l.Enqueue(leaf(1))
	if err != nil {
		t.Fatalf("Enqueue of bytes appended already: %v", err)
	}
	if got, err := q.Wait(ctx); err != nil || got != first {
		t.Errorf("Wait for bytes appended already = %d, %v; want %d, nil", got, err, first)
	}
	if _, err := (Queued{}).Wait(ctx); err == nil || !strings.Contains(err.Error(), "never enqueued") {
		t.Errorf("Wait of a zero Queued: got %v, want an error saying it was never enqueued", err)
	}
	big, err := l.Enqueue(make([]byte, MaxEntrySize+1))
	if err == nil {
		t.Fatal("Enqueue over MaxEntrySize: got nil error")
	}
	if got, err := big.Wait(ctx); err == nil {
		t.Errorf("Wait after a failed Enqueue = %d, nil; want an error", got)
	}
	q, err = l.Enqueue(leaf(2))
	if err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := q.Wait(ended); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with an ended context: got %v, want context.Canceled", err)
	}
	second, err := q.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if second != first+1 {
		t.Errorf("second entry at %d, want %d", second, first+1)
	}
	if got, err := l.Append(ctx, leaf(2)); err != nil || got != second {
		t.Errorf("Append of the same bytes = %d, %v; want %d, nil", got, err, second)
	}
}

// TestCloseDrainsAppends closes the log while appends are queued behind a
// write: each either gets an index that the reopened log holds, or ErrClosed.
func TestCloseDrainsAppends(t *testing.T) {
	s, _ := testKey(t)
	cfg := testConfig(t, t.TempDir(), s)
	l, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	type result struct {
		leaf []byte
		idx  uint64
		err  error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			e := leaf(i)
			idx, err := l.Append(t.Context(), e)
			results <- result{e, idx, err}
		}()
	}
	time.Sleep(2 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := make([]result, 0, n)
	for range n {
		got = append(got, <-results)
	}
	l = openLog(t, cfg)
	appended := 0
	for _, r := range got {
		if errors.Is(r.err, ErrClosed) {
			continue
		}
		if r.err != nil {
			t.Fatalf("Append: got %v, want an index or ErrClosed", r.err)
		}
		appended++
		e, err := l.Entries(t.Context(), r.idx, 1)
		if err != nil || len(e) != 1 || !bytes.Equal(e[0], r.leaf) {
			t.Errorf("reopened log at index %d: got %q, %v, want %q", r.idx, e, err, r.leaf)
		}
	}
	size, err := l.DurableSize(t.Context())
	if err != nil || size != uint64(appended) {
		t.Errorf("reopened log size: got %d, %v, want the %d appends that returned an index", size, err, appended)
	}
}

func TestInclusionProof(t *testing.T) {
	s, v := testKey(t)
	l := openLog(t, testConfig(t, t.TempDir(), s))
	const n = 300
	byIndex := appendAll(t, l, leaves(0, n))
	cp, _ := published(t, l, v, n)

	for _, i := range []uint64{0, 1, 127, 255, 256, n - 1} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p, err := l.InclusionProof(t.Context(), i, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			lh := rfc6962.DefaultHasher.HashLeaf(byIndex[i])
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, lh, p, cp.Hash); err != nil {
				t.Errorf("VerifyInclusion: %v", err)
			}
		})
	}

	for _, tc := range []struct {
		name            string
		index, treeSize uint64
	}{
		{"index at size", n, n},
		{"beyond log", 0, n + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.InclusionProof(t.Context(), tc.index, tc.treeSize); err == nil {
				t.Error("got nil error")
			}
		})
	}
}

func TestConsistencyProof(t *testing.T) {
	s, v := testKey(t)
	l := openLog(t, testConfig(t, t.TempDir(), s))
	appendAll(t, l, leaves(0, 100))
	cp1, _ := published(t, l, v, 100)
	appendAll(t, l, leaves(100, 400))
	cp2, _ := published(t, l, v, 400)

	p, err := l.ConsistencyProof(t.Context(), cp1.Size, cp2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp1.Size, cp2.Size, p, cp1.Hash, cp2.Hash); err != nil {
		t.Errorf("VerifyConsistency: %v", err)
	}

	for _, tc := range []struct {
		name     string
		from, to uint64
	}{
		{"from above to", 10, 5},
		{"beyond log", 1, cp2.Size + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.ConsistencyProof(t.Context(), tc.from, tc.to); err == nil {
				t.Error("got nil error")
			}
		})
	}
}

func TestReopenContinuesLog(t *testing.T) {
	s, v := testKey(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, s)

	l, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := appendAll(t, l, leaves(0, 50))
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	l = openLog(t, cfg)
	size, err := l.Size(t.Context())
	if err != nil || size != 50 {
		t.Fatalf("Size after reopen: got %d, %v, want 50", size, err)
	}
	raw, err := l.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cp1, err := VerifyCheckpoint(raw, testOrigin, v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Entries(t.Context(), 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got {
		if !bytes.Equal(e, first[uint64(i)]) {
			t.Errorf("entry %d after reopen: got %q, want %q", i, e, first[uint64(i)])
		}
	}

	second := appendAll(t, l, leaves(50, 80))
	for i := range second {
		if i < 50 {
			t.Errorf("got index %d after reopen, want ≥ 50", i)
		}
	}
	cp2, _ := published(t, l, v, 80)
	p, err := l.ConsistencyProof(t.Context(), cp1.Size, cp2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp1.Size, cp2.Size, p, cp1.Hash, cp2.Hash); err != nil {
		t.Errorf("checkpoints before and after reopen are not consistent: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	s, _ := testKey(t)
	otherSkey, _, err := GenerateKey("example.org/parley/bravo")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := NewSigner(otherSkey)
	if err != nil {
		t.Fatal(err)
	}
	_, wvkey, err := GenerateKey("mediator-1")
	if err != nil {
		t.Fatal(err)
	}
	witness := Witness{URL: "https://mediator.example", VerifierKey: wvkey}

	for _, tc := range []struct {
		name   string
		modify func(*Config)
	}{
		{"no dir", func(c *Config) { c.Dir = "" }},
		{"no origin", func(c *Config) { c.Origin = "" }},
		{"no signer", func(c *Config) { c.Signer = nil }},
		{"signer for another origin", func(c *Config) { c.Signer = other }},
		{"interval too short", func(c *Config) { c.CheckpointInterval = time.Millisecond }},
		{"negative batch age", func(c *Config) { c.BatchMaxAge = -1 }},
		{"no witnesses", func(c *Config) {
			c.Witnesses = &WitnessConfig{Quorum: 1, Client: http.DefaultClient}
		}},
		{"quorum zero", func(c *Config) {
			c.Witnesses = &WitnessConfig{Witnesses: []Witness{witness}, Client: http.DefaultClient}
		}},
		{"quorum above witnesses", func(c *Config) {
			c.Witnesses = &WitnessConfig{Witnesses: []Witness{witness}, Quorum: 2, Client: http.DefaultClient}
		}},
		{"no client", func(c *Config) {
			c.Witnesses = &WitnessConfig{Witnesses: []Witness{witness}, Quorum: 1}
		}},
		{"plain http", func(c *Config) {
			w := witness
			w.URL = "http://mediator.example"
			c.Witnesses = &WitnessConfig{Witnesses: []Witness{w}, Quorum: 1, Client: http.DefaultClient}
		}},
		{"bad key", func(c *Config) {
			w := witness
			w.VerifierKey = "mediator-1+00000000+AAAA"
			c.Witnesses = &WitnessConfig{Witnesses: []Witness{w}, Quorum: 1, Client: http.DefaultClient}
		}},
		{"duplicate witness key", func(c *Config) {
			w := witness
			w.URL = "https://other.example"
			c.Witnesses = &WitnessConfig{Witnesses: []Witness{witness, w}, Quorum: 2, Client: http.DefaultClient}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir(), s)
			tc.modify(&cfg)
			if l, err := Open(t.Context(), cfg); err == nil {
				_ = l.Close()
				t.Error("got nil error")
			}
		})
	}
}

func TestOpenRefusesOtherOrigin(t *testing.T) {
	s, _ := testKey(t)
	dir := t.TempDir()
	l, err := Open(t.Context(), testConfig(t, dir, s))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	skey, _, err := GenerateKey("example.org/parley/bravo")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir, other)
	cfg.Origin = other.Name()
	if l, err := Open(t.Context(), cfg); err == nil {
		_ = l.Close()
		t.Error("Open of another origin's directory: got nil error")
	}
}

func TestVerifyCheckpoint(t *testing.T) {
	s, v := testKey(t)
	_, otherV := func() (note.Signer, note.Verifier) {
		skey, _, err := GenerateKey(testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		s, v, err := NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		return s, v
	}()
	l := openLog(t, testConfig(t, t.TempDir(), s))
	raw, err := l.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCheckpoint(raw, testOrigin, v); err != nil {
		t.Errorf("good checkpoint: %v", err)
	}
	for _, tc := range []struct {
		name   string
		raw    []byte
		origin string
		v      note.Verifier
	}{
		{"wrong origin", raw, "example.org/other", v},
		{"wrong key", raw, testOrigin, otherV},
		{"tampered", bytes.Replace(raw, []byte("\n0\n"), []byte("\n1\n"), 1), testOrigin, v},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyCheckpoint(tc.raw, tc.origin, tc.v); err == nil {
				t.Error("got nil error")
			}
		})
	}
}

func TestTileHandler(t *testing.T) {
	s, v := testKey(t)
	l := openLog(t, testConfig(t, t.TempDir(), s))
	const n = 300
	byIndex := appendAll(t, l, leaves(0, n))
	published(t, l, v, n)
	srv := httptest.NewServer(http.StripPrefix("/log", l.TileHandler()))
	t.Cleanup(srv.Close)

	// Read the log through HTTP with Tessera's own client, as a mirror would.
	u, err := url.Parse(srv.URL + "/log/")
	if err != nil {
		t.Fatal(err)
	}
	f, err := client.NewHTTPFetcher(u, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	cp, _, _, err := client.FetchCheckpoint(t.Context(), f.ReadCheckpoint, v, testOrigin)
	if err != nil {
		t.Fatalf("FetchCheckpoint: %v", err)
	}
	pb, err := client.NewProofBuilder(t.Context(), cp.Size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	const i = 260
	p, err := pb.InclusionProof(t.Context(), i)
	if err != nil {
		t.Fatalf("InclusionProof over HTTP: %v", err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, rfc6962.DefaultHasher.HashLeaf(byIndex[i]), p, cp.Hash); err != nil {
		t.Errorf("VerifyInclusion over HTTP: %v", err)
	}
	bundle, err := client.GetEntryBundle(t.Context(), f.ReadEntryBundle, 1, cp.Size)
	if err != nil {
		t.Fatalf("GetEntryBundle over HTTP: %v", err)
	}
	if got, want := bundle.Entries[i-256], byIndex[i]; !bytes.Equal(got, want) {
		t.Errorf("bundle entry %d: got %q, want %q", i, got, want)
	}

	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"checkpoint", http.MethodGet, "/log/checkpoint", http.StatusOK},
		{"head checkpoint", http.MethodHead, "/log/checkpoint", http.StatusOK},
		{"full tile", http.MethodGet, "/log/tile/0/000", http.StatusOK},
		{"full bundle", http.MethodGet, "/log/tile/entries/000", http.StatusOK},
		{"missing tile", http.MethodGet, "/log/tile/0/x001/000", http.StatusNotFound},
		{"post", http.MethodPost, "/log/checkpoint", http.StatusMethodNotAllowed},
		{"state dir", http.MethodGet, "/log/.state/treeState", http.StatusNotFound},
		{"dot dot", http.MethodGet, "/log/tile/../.state/treeState", http.StatusNotFound},
		{"dot dot to checkpoint", http.MethodGet, "/log/tile/0/../../checkpoint", http.StatusNotFound},
		{"escaped dot dot", http.MethodGet, "/log/tile/%2e%2e/%2e%2e/etc/passwd", http.StatusNotFound},
		{"temp-like name", http.MethodGet, "/log/checkpoint123", http.StatusNotFound},
		{"non-canonical index", http.MethodGet, "/log/tile/0/0", http.StatusNotFound},
		{"root", http.MethodGet, "/log/", http.StatusNotFound},
		{"tile dir", http.MethodGet, "/log/tile/0", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: got status %d, want %d (%q)", tc.method, tc.path, resp.StatusCode, tc.want, body)
			}
		})
	}
}

func TestPublicPath(t *testing.T) {
	for _, tc := range []struct {
		path      string
		ok, immut bool
	}{
		{"checkpoint", true, false},
		{"tile/0/000", true, true},
		{"tile/3/x001/x234/067.p/8", true, true},
		{"tile/entries/x001/234", true, true},
		{"tile/entries/000.p/255", true, true},
		{"tile/entries/000.p/256", false, true},
		{"tile/64/000", false, true},
		{"tile/0/x000/001", false, true},
		{"tile/0/001.p/0", false, true},
		{"tile/0/..", false, true},
		{"tile/0/000/", false, true},
		{"tile//000", false, true},
		{".state/version", false, false},
		{"/checkpoint", false, false},
		{"", false, false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			immut, ok := publicPath(tc.path)
			if ok != tc.ok || (ok && immut != tc.immut) {
				t.Errorf("publicPath(%q): got %v, %v, want %v, %v", tc.path, immut, ok, tc.immut, tc.ok)
			}
		})
	}
}

func FuzzPublicPath(f *testing.F) {
	for _, p := range []string{"checkpoint", "tile/0/000", "tile/entries/x001/234.p/5", "tile/1/../x"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if _, ok := publicPath(p); ok {
			if strings.Contains(p, "..") || strings.HasPrefix(p, ".") || filepath.Clean(p) != p {
				t.Errorf("publicPath accepted %q", p)
			}
		}
	})
}

// TestEnvelopeFitsInLog pins that every envelope the verifier accepts can be
// appended to the log.
func TestEnvelopeFitsInLog(t *testing.T) {
	if envelope.MaxSize > MaxEntrySize {
		t.Fatalf("envelope.MaxSize %d exceeds the log's MaxEntrySize %d", envelope.MaxSize, MaxEntrySize)
	}
}
