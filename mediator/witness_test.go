package mediator

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

const (
	alphaOrigin = "parley.example/alpha"
	bravoOrigin = "parley.example/bravo"
)

func TestAddCheckpoint(t *testing.T) {
	// step is one add-checkpoint request, which must be cosigned.
	type step struct {
		old, size uint64
		noProof   bool // send no proof even though old > 0
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{
			name:  "first checkpoint",
			steps: []step{{old: 0, size: 5}},
		},
		{
			name:  "growth with consistency proofs",
			steps: []step{{old: 0, size: 5}, {old: 5, size: 12}, {old: 12, size: 13}, {old: 13, size: 64}},
		},
		{
			name:  "same checkpoint again",
			steps: []step{{old: 0, size: 5}, {old: 5, size: 5}, {old: 5, size: 5}},
		},
		{
			name:  "empty log first, as Tessera starts",
			steps: []step{{old: 0, size: 0}, {old: 0, size: 0}, {old: 0, size: 3}, {old: 3, size: 9}},
		},
		{
			name:  "first checkpoint of size one",
			steps: []step{{old: 0, size: 1}, {old: 1, size: 2}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alpha := newTestLog(t, alphaOrigin, 64)
			bravo := newTestLog(t, bravoOrigin, 3)
			w := newTestWitness(t, alpha, bravo)
			if _, err := w.Latest(alpha.origin); !errors.Is(err, ErrNoCheckpoint) {
				t.Fatalf("Latest before any checkpoint: got %v, want ErrNoCheckpoint", err)
			}
			for _, s := range tc.steps {
				var proof [][]byte
				if !s.noProof && s.old > 0 {
					proof = alpha.proof(t, s.old, s.size)
				}
				w.mustCosign(t, s.old, proof, alpha.checkpoint(t, s.size))
				if got, want := w.latestSize(t, alpha), s.size; got != want {
					t.Fatalf("latest cosigned size: got %d, want %d", got, want)
				}
			}
			if _, err := w.Latest(bravo.origin); !errors.Is(err, ErrNoCheckpoint) {
				t.Errorf("Latest of another log: got %v, want ErrNoCheckpoint", err)
			}
			if ev, err := w.Evidence(); err != nil || len(ev) != 0 {
				t.Errorf("Evidence: got %d records, %v; want none", len(ev), err)
			}
		})
	}
}

func TestAddCheckpointKeepsOtherSignatures(t *testing.T) {
	// A checkpoint may carry other signatures (another log key, other
	// witnesses' cosignatures): they are ignored, and not kept.
	alpha := newTestLog(t, alphaOrigin, 8)
	other := newTestLog(t, "other.example/witness", 0)
	w := newTestWitness(t, alpha)
	text := flog.Checkpoint{Origin: alpha.origin, Size: 8, Hash: alpha.tree.HashAt(8)}.Marshal()
	cp := signCheckpoint(t, text, other.signer, alpha.signer)
	w.mustCosign(t, 0, nil, cp)
	latest, err := w.Latest(alpha.origin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(latest, []byte(other.origin)) {
		t.Errorf("latest checkpoint kept an unverified signature:\n%s", latest)
	}
}

func TestAddCheckpointErrors(t *testing.T) {
	alpha := newTestLog(t, alphaOrigin, 16)
	bravo := newTestLog(t, bravoOrigin, 16)
	stranger := newTestLog(t, "parley.example/charlie", 16)
	impostor := newTestLog(t, alphaOrigin, 16) // alpha's origin and key name, another key
	forked := alpha.fork(9, 16)                // alpha's key, a different leaf 9 onwards

	// All cases start from a witness that cosigned alpha at size 10 and
	// nothing of bravo.
	const cosigned = 10
	badSig := alpha.checkpoint(t, 12)
	badSig[len(badSig)-4] ^= 'A' ^ 'B' // inside the base64 of the signature
	for _, tc := range []struct {
		name         string
		method       string // default POST
		unauthorized bool
		body         []byte
		wantStatus   int
		wantBody     string // checked if set
		wantType     string // checked if set
		wantEvidence bool
	}{
		{
			name:       "unknown origin",
			body:       formatRequest(0, nil, stranger.checkpoint(t, 5)),
			wantStatus: http.StatusNotFound,
		},
		{
			name:       "signed by another key with the log's name",
			body:       formatRequest(cosigned, alpha.proof(t, cosigned, 12), impostor.checkpoint(t, 12)),
			wantStatus: http.StatusForbidden,
		},
		{
			name:       "invalid signature by the log's key",
			body:       formatRequest(cosigned, alpha.proof(t, cosigned, 12), badSig),
			wantStatus: http.StatusForbidden,
		},
		{
			name:         "client not authorized",
			unauthorized: true,
			body:         formatRequest(cosigned, alpha.proof(t, cosigned, 12), alpha.checkpoint(t, 12)),
			wantStatus:   http.StatusForbidden,
		},
		{
			name:       "unsigned checkpoint",
			body:       formatRequest(cosigned, alpha.proof(t, cosigned, 12), flog.Checkpoint{Origin: alpha.origin, Size: 12, Hash: alpha.tree.HashAt(12)}.Marshal()),
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "malformed request",
			body:       []byte("old 10\nnot base64\n\n" + string(alpha.checkpoint(t, 12))),
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "non-canonical checkpoint size",
			body:       formatRequest(cosigned, alpha.proof(t, cosigned, 12), signCheckpoint(t, []byte(alpha.origin+"\n012\n"+b64(alpha.tree.HashAt(12))+"\n"), alpha.signer)),
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "short root hash",
			body:       formatRequest(cosigned, alpha.proof(t, cosigned, 12), signCheckpoint(t, []byte(alpha.origin+"\n12\n"+b64(alpha.tree.HashAt(12)[:20])+"\n"), alpha.signer)),
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "old size larger than checkpoint size",
			body:       formatRequest(cosigned, nil, alpha.checkpoint(t, 8)),
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "stale old size",
			body:       formatRequest(5, alpha.proof(t, 5, 12), alpha.checkpoint(t, 12)),
			wantStatus: http.StatusConflict,
			wantType:   "text/x.tlog.size",
			wantBody:   "10\n",
		},
		{
			name:       "old size zero after a cosigned checkpoint",
			body:       formatRequest(0, nil, alpha.checkpoint(t, 12)),
			wantStatus: http.StatusConflict,
			wantType:   "text/x.tlog.size",
			wantBody:   "10\n",
		},
		{
			name:       "smaller checkpoint than cosigned",
			body:       formatRequest(0, nil, alpha.checkpoint(t, 8)),
			wantStatus: http.StatusConflict,
			wantType:   "text/x.tlog.size",
			wantBody:   "10\n",
		},
		{
			name:       "old size ahead of the witness",
			body:       formatRequest(12, alpha.proof(t, 12, 14), alpha.checkpoint(t, 14)),
			wantStatus: http.StatusConflict,
			wantType:   "text/x.tlog.size",
			wantBody:   "10\n",
		},
		{
			name:         "fork: proof from the forked tree",
			body:         formatRequest(cosigned, forked.proof(t, cosigned, 12), forked.checkpoint(t, 12)),
			wantStatus:   http.StatusUnprocessableEntity,
			wantEvidence: true,
		},
		{
			name:         "fork: proof of the cosigned tree",
			body:         formatRequest(cosigned, alpha.proof(t, cosigned, 12), forked.checkpoint(t, 12)),
			wantStatus:   http.StatusUnprocessableEntity,
			wantEvidence: true,
		},
		{
			name:         "wrong proof for a consistent checkpoint",
			body:         formatRequest(cosigned, alpha.proof(t, cosigned, 13), alpha.checkpoint(t, 12)),
			wantStatus:   http.StatusUnprocessableEntity,
			wantEvidence: true,
		},
		{
			name:         "missing proof",
			body:         formatRequest(cosigned, nil, alpha.checkpoint(t, 12)),
			wantStatus:   http.StatusUnprocessableEntity,
			wantEvidence: true,
		},
		{
			name:         "fork: same size, different root",
			body:         formatRequest(cosigned, nil, forked.checkpoint(t, cosigned)),
			wantStatus:   http.StatusConflict,
			wantEvidence: true,
		},
		{
			name:       "same checkpoint with a proof",
			body:       formatRequest(cosigned, alpha.proof(t, 5, cosigned), alpha.checkpoint(t, cosigned)),
			wantStatus: http.StatusUnprocessableEntity,
		},
		{
			name:       "proof with old size zero",
			body:       formatRequest(0, bravo.proof(t, 1, 5), bravo.checkpoint(t, 5)),
			wantStatus: http.StatusUnprocessableEntity,
		},
		{
			name:       "size zero checkpoint with a non-empty root",
			body:       formatRequest(0, nil, signCheckpoint(t, flog.Checkpoint{Origin: bravo.origin, Size: 0, Hash: bravo.tree.HashAt(5)}.Marshal(), bravo.signer)),
			wantStatus: http.StatusUnprocessableEntity,
		},
		{
			name:       "body too large",
			body:       formatRequest(cosigned, nil, append(bytes.Repeat([]byte("x"), maxRequestBytes), '\n')),
			wantStatus: http.StatusRequestEntityTooLarge,
		},
		{
			name:       "GET",
			method:     http.MethodGet,
			wantStatus: http.StatusMethodNotAllowed,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newTestWitness(t, alpha, bravo)
			w.mustCosign(t, 0, nil, alpha.checkpoint(t, cosigned))
			before, err := w.Latest(alpha.origin)
			if err != nil {
				t.Fatal(err)
			}

			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			r := w.do(t, method, tc.body, !tc.unauthorized)
			if r.status != tc.wantStatus {
				t.Fatalf("got %v, want status %d", r, tc.wantStatus)
			}
			if tc.wantBody != "" && string(r.body) != tc.wantBody {
				t.Errorf("got body %q, want %q", r.body, tc.wantBody)
			}
			if tc.wantType != "" && r.contentType != tc.wantType {
				t.Errorf("got Content-Type %q, want %q", r.contentType, tc.wantType)
			}

			after, err := w.Latest(alpha.origin)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, before) {
				t.Errorf("latest checkpoint changed after a rejected request:\n%s\nwas\n%s", after, before)
			}
			if _, err := w.Latest(bravo.origin); !errors.Is(err, ErrNoCheckpoint) {
				t.Errorf("Latest(bravo): got %v, want ErrNoCheckpoint", err)
			}

			ev, err := w.Evidence()
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantEvidence {
				if len(ev) != 0 {
					t.Fatalf("got %d evidence records, want none", len(ev))
				}
				return
			}
			if len(ev) != 1 {
				t.Fatalf("got %d evidence records, want 1", len(ev))
			}
			req, err := parseAddCheckpointRequest(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			checkEvidence(t, w, alpha, ev[0], before, req.Checkpoint, req.Proof)
		})
	}
}

// checkEvidence checks that e is the evidence of rejecting checkpoint
// rejected, sent with proof, after cosigning cosigned, and that both its
// checkpoints verify with the log's key, as a third party would check.
func checkEvidence(t testing.TB, w *testWitness, l *testLog, e ForkEvidence, cosigned, rejected []byte, proof [][]byte) {
	t.Helper()
	if e.Origin != l.origin {
		t.Errorf("evidence origin: got %q, want %q", e.Origin, l.origin)
	}
	if !bytes.Equal(e.Cosigned, cosigned) {
		t.Errorf("evidence cosigned checkpoint:\n%s\nwant\n%s", e.Cosigned, cosigned)
	}
	if !bytes.Equal(e.Rejected, rejected) {
		t.Errorf("evidence rejected checkpoint:\n%s\nwant\n%s", e.Rejected, rejected)
	}
	if !reflect.DeepEqual(e.Proof, proof) {
		t.Errorf("evidence proof: got %x, want %x", e.Proof, proof)
	}
	if !e.At.Equal(testNow) {
		t.Errorf("evidence time: got %v, want %v", e.At, testNow)
	}
	if _, err := note.Open(e.Cosigned, note.VerifierList(l.verifier, w.verifier)); err != nil {
		t.Errorf("evidence cosigned checkpoint doesn't verify: %v", err)
	}
	if _, err := note.Open(e.Rejected, note.VerifierList(l.verifier)); err != nil {
		t.Errorf("evidence rejected checkpoint doesn't verify: %v", err)
	}
}

func TestPersistence(t *testing.T) {
	alpha := newTestLog(t, alphaOrigin, 32)
	forked := alpha.fork(11, 32)
	w := newTestWitness(t, alpha)
	w.mustCosign(t, 0, nil, alpha.checkpoint(t, 5))
	w.mustCosign(t, 5, alpha.proof(t, 5, 12), alpha.checkpoint(t, 12))
	fork := formatRequest(12, forked.proof(t, 12, 20), forked.checkpoint(t, 20))
	for range 2 { // the same evidence is recorded once
		if r := w.post(t, fork); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("forked checkpoint: got %v, want 422", r)
		}
	}
	latest, err := w.Latest(alpha.origin)
	if err != nil {
		t.Fatal(err)
	}
	evidence, err := w.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	if len(evidence) != 1 {
		t.Fatalf("got %d evidence records, want 1", len(evidence))
	}
	w.close()

	// Reopened, the witness has the same state and evidence, and goes on
	// from there.
	w = openTestWitness(t, w.skey, w.vkey, w.dbPath, alpha)
	if got, err := w.Latest(alpha.origin); err != nil || !bytes.Equal(got, latest) {
		t.Fatalf("latest checkpoint after reopening: got %v\n%s\nwant\n%s", err, got, latest)
	}
	if got, err := w.Evidence(); err != nil || !reflect.DeepEqual(got, evidence) {
		t.Fatalf("evidence after reopening: got %v %+v, want %+v", err, got, evidence)
	}
	if r := w.post(t, formatRequest(0, nil, alpha.checkpoint(t, 20))); r.status != http.StatusConflict || string(r.body) != "12\n" {
		t.Fatalf("old size 0 after reopening: got %v, want 409 \"12\\n\"", r)
	}
	if r := w.post(t, fork); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("forked checkpoint after reopening: got %v, want 422", r)
	}
	w.mustCosign(t, 12, alpha.proof(t, 12, 20), alpha.checkpoint(t, 20))
	if got := w.latestSize(t, alpha); got != 20 {
		t.Fatalf("latest size: got %d, want 20", got)
	}
	if got, err := w.Evidence(); err != nil || len(got) != 1 {
		t.Fatalf("evidence: got %d records, %v; want 1", len(got), err)
	}
}

// b64 encodes a hash for a hand-made checkpoint.
func b64(b []byte) string {
	return base64.StdEncoding.EncodeToString(b)
}

func TestConcurrentAddCheckpoint(t *testing.T) {
	// Requests that all extend the cosigned checkpoint race; the witness
	// must cosign exactly one, and tell the others the size it cosigned
	// (c2sp.org/tlog-witness: checking and persisting "must be performed
	// atomically").
	alpha := newTestLog(t, alphaOrigin, 40)
	w := newTestWitness(t, alpha)
	w.mustCosign(t, 0, nil, alpha.checkpoint(t, 10))

	var wg sync.WaitGroup
	results := make([]response, 30)
	for i := range results {
		size := uint64(11 + i)
		body := formatRequest(10, alpha.proof(t, 10, size), alpha.checkpoint(t, size))
		wg.Go(func() { results[i] = w.post(t, body) })
	}
	wg.Wait()

	winner := w.latestSize(t, alpha)
	cosigned := 0
	for i, r := range results {
		switch {
		case r.status == http.StatusOK:
			cosigned++
			if size := uint64(11 + i); size != winner {
				t.Errorf("cosigned size %d, but the latest cosigned is %d", size, winner)
			}
		case r.status == http.StatusConflict && string(r.body) == fmt.Sprintf("%d\n", winner):
		default:
			t.Errorf("request for size %d: got %v, want 200 or 409 with %d", 11+i, r, winner)
		}
	}
	if cosigned != 1 {
		t.Errorf("cosigned %d of the racing checkpoints, want 1", cosigned)
	}
}

func TestEvidenceCap(t *testing.T) {
	alpha := newTestLog(t, alphaOrigin, 64)
	w := newTestWitness(t, alpha)
	var logged bytes.Buffer
	w.log = slog.New(slog.NewTextHandler(&logged, nil))
	w.maxEvidence = 3
	const cosigned = 10
	w.mustCosign(t, 0, nil, alpha.checkpoint(t, 5))
	w.mustCosign(t, 5, alpha.proof(t, 5, cosigned), alpha.checkpoint(t, cosigned))

	// sizes returns the sizes of the rejected checkpoints kept, oldest
	// first, with "=" marking one of the cosigned size.
	sizes := func() string {
		t.Helper()
		ev, err := w.Evidence()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ev {
			cp, err := parseCheckpoint(string(noteText(e.Rejected)))
			if err != nil {
				t.Fatal(err)
			}
			mark := ""
			if cp.Size == cosigned {
				mark = "="
			}
			out = append(out, fmt.Sprintf("%s%d", mark, cp.Size))
		}
		return strings.Join(out, " ")
	}
	reject := func(req []byte) {
		t.Helper()
		if r := w.post(t, req); r.status != http.StatusUnprocessableEntity && r.status != http.StatusConflict {
			t.Fatalf("got %v, want 422 or 409", r)
		}
	}
	// A node may sign any number of checkpoints and send them with wrong
	// proofs: the newest three are kept.
	for size := uint64(11); size <= 16; size++ {
		reject(formatRequest(cosigned, nil, alpha.checkpoint(t, size)))
	}
	if got, want := sizes(), "14 15 16"; got != want {
		t.Errorf("after six unconfirmed: got %q, want %q", got, want)
	}
	if !strings.Contains(logged.String(), "cap of fork evidence records") || !strings.Contains(logged.String(), "cap=3") {
		t.Errorf("hitting the cap was not logged:\n%s", logged.String())
	}
	// The same checkpoint with another wrong proof is the same evidence.
	reject(formatRequest(cosigned, alpha.proof(t, 3, 16), alpha.checkpoint(t, 16)))
	if got, want := sizes(), "14 15 16"; got != want {
		t.Errorf("after a repeated checkpoint: got %q, want %q", got, want)
	}
	// Same-size forks prove themselves: they replace unconfirmed records
	// and are never replaced; once they fill the cap, more are dropped.
	for common := 1; common <= 4; common++ {
		reject(formatRequest(cosigned, nil, alpha.fork(common, 64).checkpoint(t, cosigned)))
	}
	if got, want := sizes(), "=10 =10 =10"; got != want {
		t.Errorf("after four same-size forks: got %q, want %q", got, want)
	}
	reject(formatRequest(cosigned, nil, alpha.checkpoint(t, 20)))
	if got, want := sizes(), "=10 =10 =10"; got != want {
		t.Errorf("after an unconfirmed one at a cap of proofs: got %q, want %q", got, want)
	}
	if !strings.Contains(logged.String(), "fork evidence not recorded") {
		t.Errorf("dropping evidence was not logged:\n%s", logged.String())
	}
}
