package mediator

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

// testLog is a party node's log as the witness sees it: a checkpoint key
// and a Merkle tree whose checkpoints it signs.
type testLog struct {
	origin   string
	signer   note.Signer
	verifier note.Verifier
	tree     *testonly.Tree
}

// newTestLog returns a log with a fresh Ed25519 checkpoint key named after
// its origin, as Tessera's WithCheckpointSigner expects, and size leaves.
func newTestLog(t testing.TB, origin string, size int) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{origin: origin, signer: s, verifier: v, tree: testonly.New(rfc6962.DefaultHasher)}
	l.grow(size)
	return l
}

// grow appends n leaves to the log's tree.
func (l *testLog) grow(n int) {
	for range n {
		l.tree.AppendData(fmt.Appendf(nil, "%s leaf %d", l.origin, l.tree.Size()))
	}
}

// fork returns a log with the same key whose tree shares the first common
// leaves of l's and then has different ones, up to size leaves.
func (l *testLog) fork(common, size int) *testLog {
	f := &testLog{origin: l.origin, signer: l.signer, verifier: l.verifier, tree: testonly.New(rfc6962.DefaultHasher)}
	for i := range common {
		f.tree.Append(l.tree.LeafHash(uint64(i)))
	}
	for f.tree.Size() < uint64(size) {
		f.tree.AppendData(fmt.Appendf(nil, "%s forked leaf %d", l.origin, f.tree.Size()))
	}
	return f
}

// checkpoint returns the log's signed checkpoint at the given size.
func (l *testLog) checkpoint(t testing.TB, size uint64) []byte {
	t.Helper()
	return signCheckpoint(t, flog.Checkpoint{Origin: l.origin, Size: size, Hash: l.tree.HashAt(size)}.Marshal(), l.signer)
}

// proof returns the consistency proof between two sizes of the log.
func (l *testLog) proof(t testing.TB, from, to uint64) [][]byte {
	t.Helper()
	p, err := l.tree.ConsistencyProof(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signCheckpoint signs a checkpoint text with the given signers.
func signCheckpoint(t testing.TB, text []byte, signers ...note.Signer) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: string(text)}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// formatRequest encodes an add-checkpoint request body as a client does
// (c2sp.org/tlog-witness, add-checkpoint).
func formatRequest(old uint64, proof [][]byte, checkpoint []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(checkpoint)
	return b.Bytes()
}

// testWitness is a Witness served by an httptest server.
type testWitness struct {
	*Witness
	srv      *httptest.Server
	verifier note.Verifier // the cosignature/v1 verifier of the witness key
	skey     string
	vkey     string
	dbPath   string
}

// testClientHeader marks requests from an authorized client in tests, in
// place of a node's client certificate.
const testClientHeader = "X-Test-Client"

// testNow is the fixed clock of test witnesses.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newTestWitness starts a witness for the given logs with a fresh
// cosigning key and database, admitting only requests with
// testClientHeader.
func newTestWitness(t testing.TB, logs ...*testLog) *testWitness {
	t.Helper()
	skey, vkey, err := GenerateCosigningKey("parley.example/mediator/un")
	if err != nil {
		t.Fatal(err)
	}
	return openTestWitness(t, skey, vkey, filepath.Join(t.TempDir(), "witness.db"), logs...)
}

// openTestWitness starts a witness with the given key and database.
func openTestWitness(t testing.TB, skey, vkey, dbPath string, logs ...*testLog) *testWitness {
	t.Helper()
	signer, err := NewCosigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := WitnessConfig{
		Signer: signer,
		DBPath: dbPath,
		Authorize: func(r *http.Request) error {
			if r.Header.Get(testClientHeader) == "" {
				return fmt.Errorf("no %s header", testClientHeader)
			}
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return testNow },
	}
	for _, l := range logs {
		cfg.Logs = append(cfg.Logs, WitnessedLog{Origin: l.origin, Verifier: l.verifier})
	}
	w, err := NewWitness(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	tw := &testWitness{Witness: w, srv: srv, verifier: verifier, skey: skey, vkey: vkey, dbPath: dbPath}
	t.Cleanup(tw.close)
	return tw
}

// close stops the server and closes the witness; it may be called more
// than once.
func (tw *testWitness) close() {
	if tw.srv == nil {
		return
	}
	tw.srv.Close()
	tw.srv = nil
	tw.Witness.Close()
}

// response is an HTTP response as a test sees it.
type response struct {
	status      int
	contentType string
	body        []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d (%s) %q", r.status, r.contentType, r.body)
}

// post sends body to the witness's add-checkpoint endpoint as an
// authorized client.
func (tw *testWitness) post(t testing.TB, body []byte) response {
	t.Helper()
	return tw.do(t, http.MethodPost, body, true)
}

// do sends a request to the witness's add-checkpoint endpoint.
func (tw *testWitness) do(t testing.TB, method string, body []byte, authorized bool) response {
	t.Helper()
	req, err := http.NewRequest(method, tw.srv.URL+AddCheckpointPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authorized {
		req.Header.Set(testClientHeader, "alpha node")
	}
	resp, err := tw.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: b}
}

// mustCosign submits a checkpoint and fails the test unless the witness
// cosigns it with a valid cosignature.
func (tw *testWitness) mustCosign(t testing.TB, old uint64, proof [][]byte, cp []byte) {
	t.Helper()
	r := tw.post(t, formatRequest(old, proof, cp))
	if r.status != http.StatusOK {
		t.Fatalf("add-checkpoint old %d: got %v, want 200", old, r)
	}
	tw.checkCosignature(t, cp, r.body)
}

// checkCosignature checks that body is a cosignature by the witness's key
// on checkpoint cp, and nothing else, as Tessera's witness client does:
// appended to the checkpoint, it must verify as a note signature.
func (tw *testWitness) checkCosignature(t testing.TB, cp, body []byte) {
	t.Helper()
	if !bytes.HasPrefix(body, []byte("— ")) || !bytes.HasSuffix(body, []byte("\n")) || bytes.Count(body, []byte("\n")) != 1 {
		t.Fatalf("got cosignature %q, want one line \"— <name> <base64>\\n\"", body)
	}
	n, err := note.Open(append(bytes.Clone(cp), body...), note.VerifierList(tw.verifier))
	if err != nil {
		t.Fatalf("cosignature %q doesn't verify with the witness's key: %v", body, err)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != tw.verifier.Name() {
		t.Fatalf("got verified signatures %+v, want one by %s", n.Sigs, tw.verifier.Name())
	}
	ts, err := fnote.CoSigV1Timestamp(n.Sigs[0])
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(ts); d < -time.Minute || d > time.Minute {
		t.Errorf("got cosignature time %v, want about now", ts)
	}
}

// latestSize returns the size of the latest checkpoint the witness
// cosigned for a log, checking it carries the log's signature and the
// witness's cosignature.
func (tw *testWitness) latestSize(t testing.TB, l *testLog) uint64 {
	t.Helper()
	b, err := tw.Latest(l.origin)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(b, note.VerifierList(l.verifier, tw.verifier))
	if err != nil {
		t.Fatalf("latest checkpoint doesn't verify: %v\n%s", err, b)
	}
	if len(n.Sigs) != 2 || len(n.UnverifiedSigs) != 0 {
		t.Fatalf("latest checkpoint has signatures %+v and unverified %+v, want exactly the log's and the witness's", n.Sigs, n.UnverifiedSigs)
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size
}

// testWriter sends log output to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
