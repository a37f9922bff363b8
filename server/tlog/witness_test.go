package tlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// testWitness is a minimal C2SP tlog-witness for one log: it checks the
// log's signature and consistency with what it cosigned before, then
// cosigns with a cosignature/v1 key. The mediator's real witness lives
// elsewhere; this one only exercises the log's side of the protocol.
type testWitness struct {
	t      testing.TB
	logV   note.Verifier
	signer note.Signer
	vkey   string
	down   atomic.Bool

	mu   sync.Mutex
	size uint64
	root []byte
}

func newTestWitness(t testing.TB, name string, logV note.Verifier) *testWitness {
	t.Helper()
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testWitness{t: t, logV: logV, signer: s, vkey: vkey}
}

func (w *testWitness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if w.down.Load() {
		http.Error(rw, "down", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	br := bufio.NewReader(bytes.NewReader(body))
	line, err := br.ReadString('\n')
	old, perr := strconv.ParseUint(strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "old "), 10, 64)
	if err != nil || !strings.HasPrefix(line, "old ") || perr != nil {
		http.Error(rw, "bad old line", http.StatusBadRequest)
		return
	}
	var p [][]byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			http.Error(rw, "bad proof", http.StatusBadRequest)
			return
		}
		if line == "\n" {
			break
		}
		h, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(line, "\n"))
		if err != nil {
			http.Error(rw, "bad proof line", http.StatusBadRequest)
			return
		}
		p = append(p, h)
	}
	raw, _ := io.ReadAll(br)
	n, err := note.Open(raw, note.VerifierList(w.logV))
	if err != nil {
		http.Error(rw, "no trusted signature", http.StatusForbidden)
		return
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil || cp.Origin != w.logV.Name() {
		http.Error(rw, "unknown origin", http.StatusNotFound)
		return
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case old != w.size:
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", w.size)
		return
	case old > cp.Size:
		http.Error(rw, "old size above checkpoint size", http.StatusBadRequest)
		return
	case old == cp.Size && w.root != nil && !bytes.Equal(w.root, cp.Hash):
		http.Error(rw, "root differs", http.StatusConflict)
		return
	case old > 0 && old < cp.Size:
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, cp.Size, p, w.root, cp.Hash); err != nil {
			http.Error(rw, "bad consistency proof", http.StatusUnprocessableEntity)
			return
		}
	}
	signed, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	w.size, w.root = cp.Size, cp.Hash
	rw.Write(signed[len(n.Text)+1:])
}

func (w *testWitness) verifier(t testing.TB) note.Verifier {
	t.Helper()
	v, err := fnote.NewVerifierForCosignatureV1(w.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// cosigners returns how many of the witnesses cosigned raw.
func cosigners(t testing.TB, raw []byte, logV note.Verifier, ws []*testWitness) int {
	t.Helper()
	vs := []note.Verifier{logV}
	for _, w := range ws {
		vs = append(vs, w.verifier(t))
	}
	n, err := note.Open(raw, note.VerifierList(vs...))
	if err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	return len(n.Sigs) - 1
}

func TestWitnessedPublication(t *testing.T) {
	s, v := testKey(t)
	var (
		ws   []*testWitness
		list []Witness
		srv  *httptest.Server
	)
	for i := range 3 {
		w := newTestWitness(t, fmt.Sprintf("mediator-%d", i), v)
		srv = httptest.NewTLSServer(w)
		t.Cleanup(srv.Close)
		ws = append(ws, w)
		list = append(list, Witness{URL: srv.URL, VerifierKey: w.vkey})
	}
	cfg := testConfig(t, t.TempDir(), s)
	cfg.ShutdownTimeout = time.Second
	cfg.Witnesses = &WitnessConfig{
		Witnesses: list,
		Quorum:    2,
		Client:    srv.Client(), // httptest's TLS servers share one certificate
		Timeout:   time.Second,
	}
	ws[2].down.Store(true) // a quorum of 2 out of 3 is enough
	l := openLog(t, cfg)

	appendAll(t, l, leaves(0, 20))
	cp, raw := published(t, l, v, 20)
	if got := cosigners(t, raw, v, ws); got < 2 {
		t.Errorf("published checkpoint of size %d has %d cosignatures, want ≥ 2", cp.Size, got)
	}

	// Below quorum, appends stay durable but nothing new is published.
	ws[1].down.Store(true)
	idx, err := l.Append(t.Context(), leaf(100))
	if err != nil {
		t.Fatalf("Append with witnesses down: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := l.AwaitPublished(ctx, idx); err == nil {
		t.Error("AwaitPublished below quorum: got nil error")
	}
	if size, err := l.Size(t.Context()); err != nil || size > idx {
		t.Errorf("Size below quorum: got %d, %v, want ≤ %d", size, err, idx)
	}

	// Back to quorum: the pending entry gets published.
	ws[2].down.Store(false)
	_, raw = published(t, l, v, idx+1)
	if got := cosigners(t, raw, v, ws); got < 2 {
		t.Errorf("published checkpoint has %d cosignatures, want ≥ 2", got)
	}
}

func TestCloseWithoutQuorum(t *testing.T) {
	s, v := testKey(t)
	w := newTestWitness(t, "mediator", v)
	srv := httptest.NewTLSServer(w)
	t.Cleanup(srv.Close)
	cfg := testConfig(t, t.TempDir(), s)
	cfg.ShutdownTimeout = 300 * time.Millisecond
	cfg.Witnesses = &WitnessConfig{
		Witnesses: []Witness{{URL: srv.URL, VerifierKey: w.vkey}},
		Quorum:    1,
		Client:    srv.Client(),
	}
	l, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.down.Store(true)
	if _, err := l.Append(t.Context(), leaf(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err == nil {
		t.Error("Close without a witnessed final checkpoint: got nil error")
	}

	// The entry is durable; it is published once the witness is back.
	w.down.Store(false)
	l = openLog(t, cfg)
	published(t, l, v, 1)
}

func TestOpenNewLogNeedsQuorum(t *testing.T) {
	s, v := testKey(t)
	w := newTestWitness(t, "mediator", v)
	w.down.Store(true)
	srv := httptest.NewTLSServer(w)
	t.Cleanup(srv.Close)
	cfg := testConfig(t, t.TempDir(), s)
	cfg.Witnesses = &WitnessConfig{
		Witnesses: []Witness{{URL: srv.URL, VerifierKey: w.vkey}},
		Quorum:    1,
		Client:    srv.Client(),
		Timeout:   time.Second,
	}
	if l, err := Open(t.Context(), cfg); err == nil {
		_ = l.Close()
		t.Error("Open of a new log without a witness quorum: got nil error")
	}
	w.down.Store(false)
	l := openLog(t, cfg)
	raw, err := l.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := cosigners(t, raw, v, []*testWitness{w}); got != 1 {
		t.Errorf("first checkpoint has %d cosignatures, want 1", got)
	}
}
