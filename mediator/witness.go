package mediator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// AddCheckpointPath is the path, under the witness's submission prefix, of
// the tlog-witness add-checkpoint call served by [Witness.Handler].
const AddCheckpointPath = "/add-checkpoint"

// sizeContentType is the Content-Type of a "409 Conflict" answer that
// carries the size of the latest cosigned checkpoint
// (c2sp.org/tlog-witness, add-checkpoint).
const sizeContentType = "text/x.tlog.size"

// maxRequestBytes bounds an add-checkpoint request body: 63 proof lines and
// a checkpoint with its text and signatures take a few KiB; the rest is
// room for other witnesses' cosignatures the client may include.
const maxRequestBytes = 256 << 10

var (
	// ErrUnknownOrigin is returned, wrapped, for a log origin the witness is
	// not configured to witness.
	ErrUnknownOrigin = errors.New("unknown log origin")
	// ErrNoCheckpoint is returned by [Witness.Latest] for a log the witness
	// has not cosigned any checkpoint of yet.
	ErrNoCheckpoint = errors.New("no checkpoint cosigned yet")
)

// Errors of an add-checkpoint request other than ErrUnknownOrigin, each
// answered with its own HTTP status (see Witness.serveAddCheckpoint).
var (
	errForbidden           = errors.New("client is not allowed to submit checkpoints")
	errMalformedCheckpoint = errors.New("malformed checkpoint")
	errNotSigned           = errors.New("checkpoint has no valid signature by the log's key")
	errOldSizeTooLarge     = errors.New("old size is larger than the checkpoint size")
	errRootMismatch        = errors.New("checkpoint has the size of the cosigned checkpoint but a different root hash")
	errInconsistent        = errors.New("consistency proof does not verify")
)

// staleOldSizeError is returned when the request's old size is not the size
// of the latest checkpoint the witness cosigned for the log.
type staleOldSizeError struct {
	old, cosigned uint64
}

func (e *staleOldSizeError) Error() string {
	return fmt.Sprintf("old size %d is not the size of the latest cosigned checkpoint (%d)", e.old, e.cosigned)
}

// WitnessConfig configures a [Witness].
type WitnessConfig struct {
	// Signer makes the witness's cosignatures. Required. It must be an
	// Ed25519 cosignature/v1 signer (c2sp.org/tlog-cosignature), as
	// [NewCosigner] returns; its verifier key is the mediator's
	// cosigning_key in the agreement.
	Signer note.Signer
	// DBPath is the path of the witness's bbolt database, created if it
	// does not exist. Required. It holds the latest cosigned checkpoint of
	// every log and the fork evidence; only one process may open it.
	DBPath string
	// Logs are the logs the witness cosigns: one per party node, as the
	// agreement lists them. At least one; origins must be unique.
	Logs []WitnessedLog
	// Authorize decides whether the client of a request may submit
	// checkpoints, typically from its TLS client certificate (a party's
	// node). A non-nil error is answered with "403 Forbidden" before the
	// body is read. Optional: nil admits every client that reached the
	// handler, which then relies on the checkpoint signature alone, as
	// c2sp.org/tlog-witness does.
	Authorize func(r *http.Request) error
	// Logger receives the witness's logs. Optional: nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxEvidence is how many fork evidence records the witness keeps per
	// log. Optional: default 64. Any holder of a log's checkpoint key (its
	// node) can submit any number of validly signed checkpoints with
	// failing proofs, so at the cap the newest record replaces the oldest
	// one whose checkpoints differ in size; a pair of one size with two
	// roots proves a fork by itself and is never replaced (see
	// [Witness.Evidence]).
	MaxEvidence int
	// Now is the clock for the times recorded with cosigned checkpoints and
	// fork evidence. Optional: nil means time.Now. (The timestamp inside a
	// cosignature is the Signer's business.)
	Now func() time.Time
}

// WitnessedLog is a log whose checkpoints the witness cosigns.
type WitnessedLog struct {
	// Origin is the log's checkpoint origin line, without the newline
	// (the agreement's log_origin). Required.
	Origin string
	// Verifier verifies the log's checkpoint signatures (built from the
	// agreement's checkpoint_key with note.NewVerifier). Required. Other
	// signatures on a submitted checkpoint are ignored.
	Verifier note.Verifier
}

// defaultMaxEvidence is the default of WitnessConfig.MaxEvidence.
const defaultMaxEvidence = 64

// ForkEvidence is a checkpoint a log signed that is not consistent with
// the checkpoint the witness had cosigned for it: evidence that the log
// forked, shown to third parties.
//
// If both checkpoints have the same size, they are a self-contained proof
// of a fork: two root hashes for one tree size, both signed by the log.
// Otherwise Proof is the consistency proof the client sent, which did not
// verify; an auditor confirms the fork with a consistency proof between the
// two sizes from the log or a mirror (a client could also have sent a wrong
// proof for a consistent checkpoint).
type ForkEvidence struct {
	// Origin is the log's origin.
	Origin string `json:"origin"`
	// Cosigned is the checkpoint the witness had cosigned, with the log's
	// signature and the witness's cosignature.
	Cosigned []byte `json:"cosigned"`
	// Rejected is the new checkpoint, with the log's signature (other
	// signatures the client sent are dropped).
	Rejected []byte `json:"rejected"`
	// Proof is the consistency proof sent with Rejected, from the size of
	// Cosigned to the size of Rejected.
	Proof [][]byte `json:"proof"`
	// At is when the witness first received Rejected with Proof.
	At time.Time `json:"at"`
}

// Witness is a C2SP tlog-witness for the party nodes' logs. It is safe for
// concurrent use: requests for one log are serialised, requests for
// different logs are not.
type Witness struct {
	signer    note.Signer
	store     *store
	logs      map[string]*witnessedLog
	authorize func(*http.Request) error
	log       *slog.Logger
	now       func() time.Time
	// maxEvidence is the cap of fork evidence records per origin.
	maxEvidence int
}

// witnessedLog is a configured log and the lock that makes checking and
// updating its state atomic (c2sp.org/tlog-witness, add-checkpoint: "checking
// the old size against the latest checkpoint and persisting the new
// checkpoint must be performed atomically").
type witnessedLog struct {
	WitnessedLog
	mu sync.Mutex
}

// NewWitness checks cfg and opens the witness's database. The caller must
// call [Witness.Close] when done.
func NewWitness(cfg WitnessConfig) (*Witness, error) {
	if cfg.Signer == nil {
		return nil, errors.New("invalid witness config: missing Signer")
	}
	if !validKeyName(cfg.Signer.Name()) {
		return nil, fmt.Errorf("invalid witness config: Signer name %q is not a valid key name", cfg.Signer.Name())
	}
	if cfg.DBPath == "" {
		return nil, errors.New("invalid witness config: missing DBPath")
	}
	if cfg.MaxEvidence < 0 {
		return nil, fmt.Errorf("invalid witness config: MaxEvidence %d is negative", cfg.MaxEvidence)
	}
	maxEvidence := cfg.MaxEvidence
	if maxEvidence == 0 {
		maxEvidence = defaultMaxEvidence
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("invalid witness config: no Logs to witness")
	}
	logs := make(map[string]*witnessedLog, len(cfg.Logs))
	for i, l := range cfg.Logs {
		switch {
		case l.Origin == "" || strings.ContainsAny(l.Origin, "\n"):
			return nil, fmt.Errorf("invalid witness config: Logs[%d]: origin %q is empty or not one line", i, l.Origin)
		case l.Verifier == nil:
			return nil, fmt.Errorf("invalid witness config: Logs[%d] (%s): missing Verifier", i, l.Origin)
		case logs[l.Origin] != nil:
			return nil, fmt.Errorf("invalid witness config: Logs[%d]: duplicate origin %q", i, l.Origin)
		}
		logs[l.Origin] = &witnessedLog{WitnessedLog: l}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	st, err := openStore(cfg.DBPath)
	if err != nil {
		return nil, err
	}
	if cfg.Authorize == nil {
		logger.Warn("witness accepts checkpoints from any client: no Authorize configured")
	}
	return &Witness{
		signer:      cfg.Signer,
		store:       st,
		logs:        logs,
		authorize:   cfg.Authorize,
		log:         logger.With("witness", cfg.Signer.Name()),
		now:         now,
		maxEvidence: maxEvidence,
	}, nil
}

// Close closes the witness's database. The handler must not be serving.
func (w *Witness) Close() error {
	return w.store.close()
}

// Handler returns the HTTP handler of the witness's submission prefix:
// it serves POST [AddCheckpointPath] (c2sp.org/tlog-witness, add-checkpoint).
// The prefix is the mediator's witness_endpoint in the agreement, to which
// Tessera appends "/add-checkpoint"; mount the handler there with
// http.StripPrefix if it is not the root. The caller runs the server, with
// TLS 1.3 and client certificates.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+AddCheckpointPath, w.serveAddCheckpoint)
	return mux
}

// Latest returns the latest checkpoint the witness cosigned for the log
// with the given origin: the checkpoint with the log's signature followed by
// the witness's cosignature. It returns an error wrapping
// [ErrUnknownOrigin] or [ErrNoCheckpoint] if there is none.
func (w *Witness) Latest(origin string) ([]byte, error) {
	if _, ok := w.logs[origin]; !ok {
		return nil, fmt.Errorf("couldn't get latest checkpoint: %w %q", ErrUnknownOrigin, origin)
	}
	c, err := w.store.latest(origin)
	if err != nil {
		return nil, fmt.Errorf("couldn't get latest checkpoint: %w", err)
	}
	if c == nil {
		return nil, fmt.Errorf("couldn't get latest checkpoint of %q: %w", origin, ErrNoCheckpoint)
	}
	return c.signed(), nil
}

// Evidence returns all fork evidence the witness has recorded, oldest first:
// at most WitnessConfig.MaxEvidence records per log.
func (w *Witness) Evidence() ([]ForkEvidence, error) {
	return w.store.evidence()
}

// serveAddCheckpoint serves the add-checkpoint call, mapping errors to the
// HTTP status codes c2sp.org/tlog-witness prescribes.
func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	log := w.log.With("remote", r.RemoteAddr)
	if w.authorize != nil {
		if err := w.authorize(r); err != nil {
			log.WarnContext(ctx, "refused add-checkpoint from unauthorized client", "err", err)
			http.Error(rw, errForbidden.Error(), http.StatusForbidden)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxRequestBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(rw, fmt.Sprintf("request body is larger than %d bytes", maxRequestBytes), http.StatusRequestEntityTooLarge)
			return
		}
		log.InfoContext(ctx, "couldn't read add-checkpoint request", "err", err)
		http.Error(rw, "couldn't read request body", http.StatusBadRequest)
		return
	}
	req, err := parseAddCheckpointRequest(body)
	var cosig []byte
	if err == nil {
		// The origin the client claims, for the logs.
		origin, _, _ := bytes.Cut(req.Checkpoint, []byte("\n"))
		log = log.With("origin", string(truncate(origin)), "old", req.OldSize)
		cosig, err = w.addCheckpoint(ctx, log, req)
	}
	if err != nil {
		writeError(ctx, log, rw, err)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.Write(cosig)
}

// writeError answers a failed add-checkpoint request with the status
// c2sp.org/tlog-witness prescribes for err and a one-line explanation.
func writeError(ctx context.Context, log *slog.Logger, rw http.ResponseWriter, err error) {
	if stale, ok := errors.AsType[*staleOldSizeError](err); ok {
		// "The response body MUST consist of the tree size of the latest
		// cosigned checkpoint in decimal, followed by a newline (U+000A).
		// The response MUST have a Content-Type of text/x.tlog.size."
		log.InfoContext(ctx, "rejected add-checkpoint request", "status", http.StatusConflict, "err", err)
		rw.Header().Set("Content-Type", sizeContentType)
		rw.Header().Set("X-Content-Type-Options", "nosniff")
		rw.WriteHeader(http.StatusConflict)
		io.WriteString(rw, strconv.FormatUint(stale.cosigned, 10)+"\n")
		return
	}
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		log.ErrorContext(ctx, "couldn't process add-checkpoint request", "err", err)
		http.Error(rw, "internal error", status)
		return
	}
	log.InfoContext(ctx, "rejected add-checkpoint request", "status", status, "err", err)
	http.Error(rw, err.Error(), status)
}

// statusOf maps an addCheckpoint error to its HTTP status
// (c2sp.org/tlog-witness, add-checkpoint).
func statusOf(err error) int {
	switch {
	case errors.Is(err, errMalformedRequest), errors.Is(err, errMalformedCheckpoint),
		errors.Is(err, errOldSizeTooLarge):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnknownOrigin):
		return http.StatusNotFound
	case errors.Is(err, errNotSigned):
		return http.StatusForbidden
	case errors.Is(err, errRootMismatch):
		return http.StatusConflict
	case errors.Is(err, errInconsistent):
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}

// addCheckpoint checks the request as c2sp.org/tlog-witness prescribes, in
// the order it states the checks, records fork evidence, and on success
// persists the checkpoint and returns the witness's cosignature line(s).
func (w *Witness) addCheckpoint(ctx context.Context, log *slog.Logger, req *addCheckpointRequest) ([]byte, error) {
	origin, _, ok := bytes.Cut(req.Checkpoint, []byte("\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no origin line", errMalformedCheckpoint)
	}
	// "If the checkpoint origin is unknown, the witness MUST respond with a
	// "404 Not Found" HTTP status code."
	l, ok := w.logs[string(origin)]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownOrigin, truncate(origin))
	}
	// "The witness MUST verify the checkpoint signature against the public
	// key(s) it trusts for the checkpoint origin, and it MUST ignore
	// signatures from unknown keys. [...] If none of the signatures verify
	// against a trusted public key, the witness MUST respond with a "403
	// Forbidden" HTTP status code."
	n, err := note.Open(req.Checkpoint, note.VerifierList(l.Verifier))
	if err != nil {
		_, unverified := errors.AsType[*note.UnverifiedNoteError](err)
		_, invalid := errors.AsType[*note.InvalidSignatureError](err)
		if unverified || invalid {
			return nil, fmt.Errorf("%w: %w", errNotSigned, err)
		}
		return nil, fmt.Errorf("%w: %w", errMalformedCheckpoint, err)
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		return nil, err
	}
	log = log.With("size", cp.Size)

	// "The old size MUST be equal to or lower than the checkpoint size.
	// Otherwise, the witness MUST respond with a "400 Bad Request" HTTP
	// status code."
	if req.OldSize > cp.Size {
		return nil, fmt.Errorf("%w: old size %d, checkpoint size %d", errOldSizeTooLarge, req.OldSize, cp.Size)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	prev, err := w.store.latest(cp.Origin)
	if err != nil {
		return nil, err
	}
	// "The witness MUST check that the old size matches the size of the
	// latest checkpoint it cosigned for the checkpoint's origin (or zero if
	// it never cosigned a checkpoint for that origin). If it doesn't match,
	// the witness MUST respond with a "409 Conflict" HTTP status code."
	var prevSize uint64
	prevRoot := rfc6962.DefaultHasher.EmptyRoot()
	if prev != nil {
		prevSize, prevRoot = prev.Size, prev.Root
	}
	if req.OldSize != prevSize {
		return nil, &staleOldSizeError{old: req.OldSize, cosigned: prevSize}
	}

	// The empty tree has one root hash (c2sp.org/tlog-checkpoint, via RFC
	// 6962); a size-zero checkpoint with any other cannot be consistent
	// with anything.
	if cp.Size == 0 && !bytes.Equal(cp.Hash, rfc6962.DefaultHasher.EmptyRoot()) {
		return nil, fmt.Errorf("%w: size 0 checkpoint with a root hash other than the empty tree's", errInconsistent)
	}
	// The checkpoint as the log signed it, to keep whether cosigned or not.
	cpNote := verifiedNote(n)
	// "If the old size matches the checkpoint size, the witness MUST check
	// that the root hashes are also identical. If they don't match, the
	// witness MUST respond with a "409 Conflict" HTTP status code."
	if cp.Size == prevSize && !bytes.Equal(cp.Hash, prevRoot) {
		w.recordFork(ctx, log, cp.Origin, prev, cpNote, req.Proof)
		return nil, errRootMismatch
	}
	// "The consistency proof lines MUST encode a Merkle Consistency Proof
	// from the old size to the checkpoint size [...]. The proof MUST be
	// empty if the old size is zero. If the Merkle Consistency Proof doesn't
	// verify, the witness MUST respond with a "422 Unprocessable Entity"
	// HTTP status code."
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, prevSize, cp.Size, req.Proof, prevRoot, cp.Hash); err != nil {
		// "If the origin is known, and the signature is valid, the witness
		// MAY log the request even if the consistency proof doesn't verify
		// (but MUST NOT cosign the checkpoint) as it might be proof of log
		// misbehavior." A proof from a non-empty tree to a larger one that
		// fails is kept; a malformed proof from or to the same size is not
		// evidence of anything.
		if prevSize > 0 && cp.Size > prevSize {
			w.recordFork(ctx, log, cp.Origin, prev, cpNote, req.Proof)
		}
		return nil, fmt.Errorf("%w: %w", errInconsistent, err)
	}

	// "If all the checks above pass, the witness MUST update its record of
	// the latest cosigned checkpoint and respond with a "200 Success" HTTP
	// status code. [...] The witness MUST persist the new checkpoint before
	// responding."
	cosig, err := w.cosign(n.Text)
	if err != nil {
		return nil, err
	}
	err = w.store.setLatest(cp.Origin, &cosignedCheckpoint{
		Checkpoint:  cpNote,
		Cosignature: cosig,
		Size:        cp.Size,
		Root:        cp.Hash,
		At:          w.now().UTC(),
	})
	if err != nil {
		return nil, err
	}
	log.InfoContext(ctx, "cosigned checkpoint")
	return cosig, nil
}

// cosign returns the witness's cosignature line(s) on a checkpoint text:
// note signature lines, each "— <name> <base64>\n" (c2sp.org/signed-note),
// which the client appends to its checkpoint.
func (w *Witness) cosign(text string) ([]byte, error) {
	signed, err := note.Sign(&note.Note{Text: text}, w.signer)
	if err != nil {
		return nil, fmt.Errorf("couldn't cosign checkpoint: %w", err)
	}
	// note.Sign returns the text, a blank line, then the signature lines.
	return signed[len(text)+1:], nil
}

// recordFork durably records that the log signed rejected, which is not
// consistent with prev by proof. Failing to record it is logged, not
// returned: the client gets the protocol's answer either way.
func (w *Witness) recordFork(ctx context.Context, log *slog.Logger, origin string, prev *cosignedCheckpoint, rejected []byte, proof [][]byte) {
	e := &ForkEvidence{
		Origin:   origin,
		Cosigned: prev.signed(),
		Rejected: rejected,
		Proof:    proof,
		At:       w.now().UTC(),
	}
	out, err := w.store.addEvidence(e, w.maxEvidence)
	switch {
	case err != nil:
		log.ErrorContext(ctx, "couldn't record fork evidence", "cosigned_size", prev.Size, "err", err)
	case out == evidenceAdded:
		log.WarnContext(ctx, "log checkpoint is inconsistent with the cosigned one: fork evidence recorded", "cosigned_size", prev.Size)
	case out == evidenceKnown:
		log.InfoContext(ctx, "log checkpoint is inconsistent with the cosigned one: fork evidence already recorded", "cosigned_size", prev.Size)
	case out == evidenceReplaced:
		log.WarnContext(ctx, "log checkpoint is inconsistent with the cosigned one: fork evidence recorded; the log is at its cap of fork evidence records, the oldest one without a same-size proof was dropped",
			"cosigned_size", prev.Size, "cap", w.maxEvidence)
	default:
		log.WarnContext(ctx, "log checkpoint is inconsistent with the cosigned one: fork evidence not recorded, the log is at its cap of fork evidence records, all of them same-size proofs of a fork",
			"cosigned_size", prev.Size, "cap", w.maxEvidence)
	}
}

// parseCheckpoint parses the text of a checkpoint note strictly
// (c2sp.org/tlog-checkpoint): origin, size in canonical decimal, and a
// 32-byte root hash in canonical base64, each on its own line, then any
// extension lines.
func parseCheckpoint(text string) (*flog.Checkpoint, error) {
	var cp flog.Checkpoint
	if _, err := cp.Unmarshal([]byte(text)); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformedCheckpoint, err)
	}
	if len(cp.Hash) != hashSize {
		return nil, fmt.Errorf("%w: root hash is %d bytes, want %d", errMalformedCheckpoint, len(cp.Hash), hashSize)
	}
	if !strings.HasPrefix(text, string(cp.Marshal())) {
		return nil, fmt.Errorf("%w: size or root hash is not canonically encoded", errMalformedCheckpoint)
	}
	return &cp, nil
}

// verifiedNote returns the note n with only its verified signatures: the
// exact text and signature lines the log produced, without whatever else
// the client sent along.
func verifiedNote(n *note.Note) []byte {
	var b bytes.Buffer
	b.WriteString(n.Text)
	b.WriteString("\n")
	for _, s := range n.Sigs {
		fmt.Fprintf(&b, "\u2014 %s %s\n", s.Name, s.Base64)
	}
	return b.Bytes()
}
