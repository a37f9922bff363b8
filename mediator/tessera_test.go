package mediator

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// TestTesseraWitnessesThroughHandler runs a Tessera POSIX log, as a party
// node does, configured with the witness as its only witness and a quorum
// of one: Tessera publishes a checkpoint only once the witness handler has
// cosigned it, so every published checkpoint must carry a cosignature that
// verifies with the witness's vkey. It exercises Tessera's own witness
// client: the size-zero checkpoint, growth with consistency proofs built
// from the log's tiles, and recovery from "409 Conflict" when the witness
// lost its state.
func TestTesseraWitnessesThroughHandler(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Tessera log")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	alpha := newTestLog(t, alphaOrigin, 0) // the key; Tessera keeps the tree
	w := newTestWitness(t, alpha)
	var current atomic.Pointer[testWitness]
	current.Store(w)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		current.Load().Handler().ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)

	// The node's HTTP client: in production it carries the node's client
	// certificate for mTLS; here a header stands in for it.
	client := srv.Client()
	client.Transport = addHeader{client.Transport}
	witnessURL, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	witness, err := tessera.NewWitness(w.vkey, witnessURL)
	if err != nil {
		t.Fatal(err)
	}
	driver, err := posix.New(ctx, posix.Config{Path: t.TempDir(), HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(alpha.signer).
		WithBatching(4, 50*time.Millisecond).
		WithCheckpointInterval(100*time.Millisecond).
		WithWitnesses(tessera.NewWitnessGroup(1, witness), &tessera.WitnessOptions{Timeout: 10 * time.Second})
	appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("couldn't shut down the Tessera appender: %v", err)
		}
	})
	await := tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 20*time.Millisecond)

	entries := 0
	for _, round := range []struct {
		name         string
		entries      int
		freshWitness bool // the witness lost its database
	}{
		{name: "first entries", entries: 3},
		{name: "growth", entries: 9},
		{name: "more growth", entries: 1},
		{name: "witness lost its state", entries: 5, freshWitness: true},
		{name: "growth after recovery", entries: 7},
	} {
		if round.freshWitness {
			w = openTestWitness(t, w.skey, w.vkey, filepath.Join(t.TempDir(), "witness.db"), alpha)
			current.Store(w)
		}
		futures := make([]tessera.IndexFuture, round.entries)
		for i := range futures {
			futures[i] = appender.Add(ctx, tessera.NewEntry(fmt.Appendf(nil, "entry %d", entries)))
			entries++
		}
		var cp []byte
		for i, f := range futures {
			var err error
			if _, cp, err = await.Await(ctx, f); err != nil {
				t.Fatalf("%s: couldn't publish entry %d: %v", round.name, i, err)
			}
		}
		n, err := note.Open(cp, note.VerifierList(alpha.verifier, w.verifier))
		if err != nil {
			t.Fatalf("%s: published checkpoint doesn't verify: %v\n%s", round.name, err, cp)
		}
		if len(n.Sigs) != 2 {
			t.Fatalf("%s: published checkpoint has verified signatures %+v, want the log's and the witness's\n%s", round.name, n.Sigs, cp)
		}
		published, err := parseCheckpoint(n.Text)
		if err != nil {
			t.Fatal(err)
		}
		if published.Size < uint64(entries) {
			t.Fatalf("%s: published size %d, want at least %d", round.name, published.Size, entries)
		}
		if got := w.latestSize(t, alpha); got < published.Size {
			t.Errorf("%s: witness's latest cosigned size %d, want at least the published %d", round.name, got, published.Size)
		}
	}
	if ev, err := w.Evidence(); err != nil || len(ev) != 0 {
		t.Errorf("Evidence: got %d records, %v; want none", len(ev), err)
	}
}

// addHeader marks requests as coming from an authorized client.
type addHeader struct{ next http.RoundTripper }

func (a addHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(testClientHeader, "tessera")
	return a.next.RoundTrip(r)
}
