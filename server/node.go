package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/transparency-dev/tessera/api/layout"
	"google.golang.org/grpc/health"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/server/state"
	"github.com/parley-dev/parley/server/tlog"
	"github.com/parley-dev/parley/verifier"
	"github.com/parley-dev/parley/verifier/rules"
)

// Node is one party's node. It is safe for concurrent use.
type Node struct {
	cfg   Config
	log   *slog.Logger
	party string
	keyID string
	// ownKeys are the agreement's entries (validity windows) for keyID.
	ownKeys []*agreement.Key
	ver     *verifier.Verifier
	engine  *rules.Engine
	tlog    *tlog.Log
	store   *state.Store
	hub     *hub
	exch    *exchange
	health  *health.Server
	ops     // metrics, health, limits, reloads and shutdown (ops.go)

	failOnce sync.Once
	failed   chan struct{}
	failErr  error

	// mu guards the feed heads and the pending entries: every sequence
	// decision is taken under it, so two entries can never take one seq.
	mu      sync.Mutex
	heads   map[string]verifier.FeedState
	pending map[feedKey]pendingEntry

	// findingsMu serialises rule evaluations; cacheMu guards
	// findingsCache, the last evaluation, so that reading it never waits
	// for one in progress. The node keeps no statements in memory: each
	// evaluation reads them from the log (findings.go).
	findingsMu    sync.Mutex
	cacheMu       sync.Mutex
	findingsCache findingsCache
	// pagesCache is the last evaluation for a ListFindings page token:
	// the list the token pins, which the later pages read again.
	pagesCache findingsCache
	// countsCache is the last evaluation of a metrics scrape, which only
	// counts the findings.
	countsCache findingsCache
	// refreshing is set while a scrape's background evaluation runs.
	refreshing atomic.Bool
	// spillDir holds the files of long lists of findings, and spillRun
	// is how many findings a list holds in memory (findlist.go).
	spillDir string
	spillRun int
}

type feedKey struct {
	sender string
	seq    uint64
}

// pendingEntry is an entry whose seq is taken but whose log index is not
// yet durable.
type pendingEntry struct {
	state verifier.FeedState
	done  chan struct{}
}

// New opens (or creates) the node's log and state under cfg.DataDir,
// reconciles the state from the log, and returns a node ready to serve.
//
// A new log publishes its first, empty checkpoint while it is created, and
// when the agreement has a witness quorum that checkpoint must be cosigned
// by it like every other: New then waits, retrying and logging a warning,
// until enough witnesses answer or ctx ends. An existing log opens without
// contacting the witnesses; while they are unreachable its entries are still
// appended durably, and only publication of new checkpoints waits.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("invalid node config: %w", err)
	}
	a := cfg.Agreement.Agreement
	party, _ := a.Party(cfg.Party)
	pub, err := cfg.Signer.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("couldn't read the signer's public key: %w", err)
	}
	keyID, err := keys.KeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("couldn't compute the signer's key id: %w", err)
	}
	var own []*agreement.Key // the agreement's entries for the signing key
	for i := range party.Keys {
		if party.Keys[i].ID == keyID {
			own = append(own, &party.Keys[i])
		}
	}
	if len(own) == 0 {
		return nil, fmt.Errorf("signing key %s is not one of party %q's keys in the agreement", keyID, cfg.Party)
	}
	if cfg.CheckpointSigner.Name() != party.LogOrigin && party.LogOrigin != "" {
		cfg.Logger.Warn("checkpoint key name differs from the agreement's log origin", "key", cfg.CheckpointSigner.Name(), "origin", party.LogOrigin)
	}
	ver, err := verifier.New(a)
	if err != nil {
		return nil, fmt.Errorf("couldn't build the verifier: %w", err)
	}
	engine, err := rules.New(rulesConfig(a))
	if err != nil {
		return nil, fmt.Errorf("couldn't build the rule engine: %w", err)
	}
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger.With("party", cfg.Party),
		party:   cfg.Party,
		keyID:   keyID,
		ownKeys: own,
		ver:     ver,
		engine:  engine,
		hub:     newHub(),
		health:  health.NewServer(),
		failed:  make(chan struct{}),
		heads:   map[string]verifier.FeedState{},
		pending: map[feedKey]pendingEntry{},
	}
	n.initOps()
	witnesses, err := witnessConfig(a, n.cfg.WitnessClient)
	if err != nil {
		return nil, err
	}
	n.tlog, err = openLog(ctx, tlog.Config{
		Dir:                filepath.Join(cfg.DataDir, "log"),
		Origin:             party.LogOrigin,
		Signer:             cfg.CheckpointSigner,
		CheckpointInterval: cfg.CheckpointInterval,
		Witnesses:          witnesses,
		Logger:             n.log,
	}, n.log)
	if err != nil {
		return nil, fmt.Errorf("couldn't open the exchange log: %w", err)
	}
	n.store, err = state.Open(filepath.Join(cfg.DataDir, "state.db"))
	if err != nil {
		_ = n.tlog.Close()
		return nil, fmt.Errorf("couldn't open the state store: %w", err)
	}
	// Lists of findings are unlinked as they are made; anything found here
	// was left by a crash between creating and unlinking one.
	n.spillDir = filepath.Join(cfg.DataDir, "findings")
	n.spillRun = cmp.Or(int(spillRunSet.Load()), spillRun)
	if err := os.RemoveAll(n.spillDir); err != nil {
		_ = n.Close()
		return nil, fmt.Errorf("couldn't clear the directory of spilled findings: %w", err)
	}
	if err := os.MkdirAll(n.spillDir, 0o700); err != nil {
		_ = n.Close()
		return nil, fmt.Errorf("couldn't create the directory of spilled findings: %w", err)
	}
	if err := n.reconcile(ctx); err != nil {
		_ = n.Close()
		return nil, err
	}
	if n.exch, err = newExchange(n); err != nil {
		_ = n.Close()
		return nil, err
	}
	if err := n.exch.start(); err != nil {
		_ = n.Close()
		return nil, err
	}
	n.reconciled()
	return n, nil
}

// openLogRetry is how long openLog waits between attempts to create a log
// whose first checkpoint could not be witnessed.
const openLogRetry = time.Second

// tesseraTreeState is where, in the log directory, Tessera's POSIX driver
// keeps the tree state it writes when it creates a log (before publishing
// its first checkpoint): its presence tells a witness failure from a
// failure to create the log at all (bad configuration, permissions).
const tesseraTreeState = ".state/treeState"

// openLog opens the exchange log. Creating a log needs a witness quorum (see
// New), so while a new log's first checkpoint is not published yet, a failed
// attempt is retried until ctx ends. Tessera writes the empty tree state on
// the first attempt, so later attempts only wait for its publication.
func openLog(ctx context.Context, cfg tlog.Config, logger *slog.Logger) (*tlog.Log, error) {
	for attempt := 1; ; attempt++ {
		l, err := tlog.Open(ctx, cfg)
		if err == nil {
			return l, nil
		}
		if cfg.Witnesses == nil || ctx.Err() != nil {
			return nil, err
		}
		if _, serr := os.Stat(filepath.Join(cfg.Dir, layout.CheckpointPath)); serr == nil {
			return nil, err // an existing log: its failure has another cause
		}
		if _, serr := os.Stat(filepath.Join(cfg.Dir, tesseraTreeState)); serr != nil {
			return nil, err // failed before creating the tree: not the witnesses
		}
		logger.WarnContext(ctx, "waiting for a witness quorum to cosign the new log's first checkpoint",
			"quorum", cfg.Witnesses.Quorum, "witnesses", len(cfg.Witnesses.Witnesses), "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (gave up waiting for the witnesses: %w)", err, context.Cause(ctx))
		case <-time.After(openLogRetry):
		}
	}
}

// reconcile brings the state store and the in-memory indexes up to the log,
// which is the source of truth.
func (n *Node) reconcile(ctx context.Context) error {
	size, err := n.tlog.DurableSize(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the log size: %w", err)
	}
	parse := func(raw []byte) (state.Record, error) {
		p, err := envelope.Parse(raw)
		if err != nil {
			return state.Record{}, err
		}
		h := p.Statement.GetHeader()
		return state.Record{Sender: h.GetSender(), Seq: h.GetSeq(), Digest: p.Digest, PayloadDigest: p.PayloadDigest}, nil
	}
	if err := n.store.Reconcile(ctx, size, n.tlog.Entries, parse); err != nil {
		return fmt.Errorf("couldn't reconcile the state store with the log: %w", err)
	}
	heads, err := n.store.Heads()
	if err != nil {
		return fmt.Errorf("couldn't read feed heads: %w", err)
	}
	for sender, h := range heads {
		n.heads[sender] = verifier.FeedState{Seq: h.Seq, Digest: h.Digest, PayloadDigest: h.PayloadDigest}
	}
	n.log.Info("reconciled state from the log", "entries", size, "feeds", len(heads))
	return nil
}

// Close stops the node's exchange with its peers (writing the receipt of
// what it acknowledged last), then its log and store.
func (n *Node) Close() error {
	var errs []error
	if n.exch != nil {
		n.exch.stop() // writes the last receipt, so before the log closes
	}
	if n.tlog != nil {
		errs = append(errs, n.tlog.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	n.hub.close()
	return errors.Join(errs...)
}

// accepted is the outcome of accepting an envelope.
type accepted struct {
	entry     *parleyv1.LogEntry
	duplicate bool
}

// lookup returns the stored entry of (sender, seq) for the verifier's
// duplicate and equivocation checks. Callers hold n.mu.
func (n *Node) lookup(ctx context.Context, sender string) func(seq uint64) (verifier.FeedState, bool) {
	return func(seq uint64) (verifier.FeedState, bool) {
		if p, ok := n.pending[feedKey{sender, seq}]; ok {
			return p.state, true
		}
		ref, ok, err := n.store.Lookup(sender, seq)
		if err != nil || !ok {
			return verifier.FeedState{}, false
		}
		raws, err := n.tlog.Entries(ctx, ref.Index, 1)
		if err != nil || len(raws) != 1 {
			return verifier.FeedState{}, false
		}
		return verifier.FeedState{Seq: seq, Digest: ref.Digest, PayloadDigest: ref.PayloadDigest, Raw: raws[0]}, true
	}
}

// admission is an entry that passed verification and holds its seq.
type admission struct {
	res     verifier.Result
	raw     []byte
	key     feedKey
	pending pendingEntry
	// queued waits for the entry in the log (not for a duplicate).
	queued    tlog.Queued
	duplicate bool
	source    string
}

// accept verifies raw against the sender's feed and logs it. It returns only
// once the entry's index is durable. source names where it came from (for
// evidence and logs).
func (n *Node) accept(ctx context.Context, raw []byte, source string) (accepted, error) {
	auth, err := n.authenticateEntry(raw, source)
	if err != nil {
		return accepted{}, err
	}
	n.mu.Lock()
	adm, err := n.admitAuthenticatedLocked(ctx, auth, raw, source)
	n.mu.Unlock()
	if err != nil {
		return accepted{}, err
	}
	return n.finish(ctx, adm)
}

// admitLocked verifies raw and, if it is the sender's next entry, takes its
// seq. Callers hold n.mu.
func (n *Node) admitLocked(ctx context.Context, raw []byte, source string) (admission, error) {
	auth, err := n.authenticateEntry(raw, source)
	if err != nil {
		return admission{}, err
	}
	return n.admitAuthenticatedLocked(ctx, auth, raw, source)
}

// authenticateEntry runs the checks of an entry that depend on no feed, the
// signature's above all (verifier.Authenticate), and counts a refusal.
// It needs no lock: callers run it before they take n.mu, so that
// signatures are verified while other entries are admitted, and then
// admit the entry with admitAuthenticatedLocked.
func (n *Node) authenticateEntry(raw []byte, source string) (*verifier.Authenticated, error) {
	auth, err := n.ver.Authenticate(raw)
	if err != nil {
		n.metrics.entryRejected(err, source)
		return nil, err
	}
	return auth, nil
}

// admitAuthenticatedLocked places auth, raw authenticated, in its sender's
// feed and, if it is the sender's next entry, takes its seq. Callers hold
// n.mu.
func (n *Node) admitAuthenticatedLocked(ctx context.Context, auth *verifier.Authenticated, raw []byte, source string) (_ admission, err error) {
	defer func() {
		if err != nil {
			n.metrics.entryRejected(err, source)
		}
	}()
	res, err := n.place(ctx, auth)
	if err != nil {
		var eq *verifier.EquivocationError
		if errors.As(err, &eq) {
			n.keepEquivocation(eq, source)
		}
		return admission{}, err
	}
	key := feedKey{res.Sender(), res.Seq()}
	if res.Outcome == verifier.Duplicate {
		p := n.pending[key]
		return admission{res: res, raw: raw, key: key, pending: p, duplicate: true, source: source}, nil
	}
	return n.take(res, raw, source)
}

// take makes res, a verified entry that is its sender's next, the head of
// its feed, pending until finish makes it durable. Callers hold n.mu.
func (n *Node) take(res verifier.Result, raw []byte, source string) (admission, error) {
	key := feedKey{res.Sender(), res.Seq()}
	if err := n.checkIssuedAt(res.Parsed.Statement.GetHeader().GetIssuedAt().AsTime()); err != nil {
		return admission{}, err
	}
	// Queued for the log in admission order, which is seq order within a
	// feed: seq s+1 never becomes durable without seq s, even if the node
	// crashes while both are being written (finish waits for it).
	queued, err := n.tlog.Enqueue(raw)
	if err != nil {
		return admission{}, fmt.Errorf("couldn't queue entry %s/%d for the log: %w", key.sender, key.seq, err)
	}
	fs := verifier.FeedState{Seq: key.seq, Digest: res.Parsed.Digest, PayloadDigest: res.Parsed.PayloadDigest, Raw: raw}
	p := pendingEntry{state: fs, done: make(chan struct{})}
	n.pending[key] = p
	n.heads[key.sender] = fs
	return admission{res: res, raw: raw, key: key, pending: p, queued: queued, source: source}, nil
}

// checkIssuedAt refuses a new entry dated outside the agreement's effective
// dates (the verifier's rule, which Check applies too; the node's own
// statements skip Check), or further ahead of this node's clock than the
// agreed clock skew, which only a node with a clock can judge: an
// agreement without an end date would otherwise let an entry claim any
// date up to the year 9999, and the rules would judge it there.
func (n *Node) checkIssuedAt(issued time.Time) error {
	if err := n.ver.CheckEffective(issued); err != nil {
		return err
	}
	const layout = time.RFC3339
	now, skew := n.cfg.Now(), n.cfg.Agreement.Agreement.Rules.ClockSkew()
	if issued.After(now.Add(skew)) {
		return fmt.Errorf("%w: issued_at %s is in the future: more than the agreed clock skew of %s ahead of this node's clock (%s)",
			verifier.ErrInvalid, issued.UTC().Format(layout), skew, now.UTC().Format(layout))
	}
	return nil
}

// finish makes an admitted entry durable (or, for a duplicate, finds the
// logged copy).
func (n *Node) finish(ctx context.Context, adm admission) (accepted, error) {
	sender, seq := adm.key.sender, adm.key.seq
	if adm.duplicate {
		if adm.pending.done != nil {
			select {
			case <-adm.pending.done:
			case <-ctx.Done():
				return accepted{}, ctx.Err()
			}
		}
		ref, ok, err := n.store.Lookup(sender, seq)
		if err != nil || !ok {
			return accepted{}, fmt.Errorf("couldn't find the logged copy of duplicate %s/%d: %w", sender, seq, err)
		}
		n.metrics.entryAccepted(sender, adm.source, true)
		return accepted{entry: &parleyv1.LogEntry{Index: ref.Index, Envelope: adm.raw, Digest: ref.Digest[:], Sender: sender, Seq: seq}, duplicate: true}, nil
	}
	fs := adm.pending.state
	// Once a seq is taken the entry must be logged even if the caller
	// goes away (a peer's stream breaking): a failed append stops the node.
	index, err := adm.queued.Wait(context.WithoutCancel(ctx))
	settle := func(err error) {
		n.mu.Lock()
		delete(n.pending, adm.key)
		n.mu.Unlock()
		close(adm.pending.done)
		if err != nil {
			// The seq is taken in memory but the entry is not durable, or
			// not indexed: the node can no longer promise a gapless feed,
			// so it must restart and reconcile from the log.
			n.log.Error("couldn't log an accepted entry; the node must restart", "sender", sender, "seq", seq, "err", err)
			n.fail(err)
		}
	}
	if err != nil {
		settle(err)
		return accepted{}, fmt.Errorf("couldn't log entry %s/%d: %w", sender, seq, err)
	}
	// The entry is durable in the log, the source of truth: answer without
	// waiting for the state store, which indexes it in the background (one
	// commit for all entries recorded meanwhile) and after a crash
	// reconciles it from the log. Until it is indexed, the pending entry
	// answers lookups of (sender, seq), and duplicates wait for it.
	n.store.RecordLater([]state.Record{{Sender: sender, Seq: seq, Digest: fs.Digest, PayloadDigest: fs.PayloadDigest, Index: index}}, settle)
	entry := &parleyv1.LogEntry{Index: index, Envelope: adm.raw, Digest: fs.Digest[:], Sender: sender, Seq: seq}
	n.hub.publish()
	n.metrics.entryAccepted(sender, adm.source, false)
	n.exch.accepted(entry, adm.res.Parsed)
	// Debug, even for the party's own statements: a line per entry cost
	// about 6 % of the node's CPU under load. The log itself is the record.
	// (Checked first: boxing the arguments allocates even when disabled.)
	if n.log.Enabled(ctx, slog.LevelDebug) {
		n.log.DebugContext(ctx, "accepted entry", "sender", sender, "seq", seq, "index", index, "source", adm.source)
	}
	return accepted{entry: entry}, nil
}

// place runs the rest of the verifier's checks on auth against the current
// heads. Callers hold n.mu.
func (n *Node) place(ctx context.Context, auth *verifier.Authenticated) (verifier.Result, error) {
	return n.ver.Place(auth, func(sender string) verifier.FeedState { return n.heads[sender] }, func(sender string, seq uint64) (verifier.FeedState, bool) {
		return n.lookup(ctx, sender)(seq)
	})
}

func (n *Node) keepEquivocation(eq *verifier.EquivocationError, source string) {
	ev := &parleyv1.Evidence{Kind: &parleyv1.Evidence_Equivocation{Equivocation: &parleyv1.Equivocation{
		Sender: eq.Sender, Seq: eq.Seq, First: eq.First, Second: eq.Second, Source: source,
	}}}
	key := fmt.Sprintf("%s/%d/%x", eq.Sender, eq.Seq, envelope.Digest(eq.Second))
	if err := n.store.AddEvidence("equivocation", key, mustMarshal(ev)); err != nil {
		n.log.Error("couldn't keep equivocation evidence", "sender", eq.Sender, "seq", eq.Seq, "err", err)
	}
	n.log.Warn("equivocation", "sender", eq.Sender, "seq", eq.Seq, "source", source)
	n.hub.publishEvidence()
}

// submit signs body as this party's next entry and accepts it. Signing
// happens under n.mu so that two submissions never sign one seq: this node
// must never equivocate, even by accident. Everything that does not depend
// on the seq (encoding the body and checking that the encoding is
// canonical) happens before, outside the lock.
//
// A body submitted by an operator, signed in process with an Ed25519 key,
// is admitted without running the verifier over the envelope just made:
//   - it is not parsed again: the node built the envelope and the
//     statement it carries, and signStatement checks what envelope.Parse
//     would (size, canonical encoding; see canonicalBody) and gives the
//     same Parsed (TestSignStatementMatchesEnvelope);
//   - its signature is not verified again: Ed25519 signing is
//     deterministic (RFC 8032) and done here by crypto/ed25519 with the
//     private key whose public key New found among the party's keys in the
//     agreement, so it cannot produce a signature that key rejects; the
//     check cost more CPU than the signing. Other signers (a KMS, or an
//     ECDSA key) are remote or randomised, and their entries go through
//     the full check, as the node's own receipts do;
//   - its body is not validated again: the validation interceptor has
//     checked the SubmitRequest carrying it with verifier.ValidateBody,
//     which is held equal to the schema, and no rule of the schema depends
//     on the time (TestSubmittedBodyRules), so the verifier's validation
//     as of issued_at gives the same verdict;
//   - its header is the one built here: this agreement, this party, the
//     next seq chained to the head.
//
// Its issued_at is still checked against the agreement's dates.
func (n *Node) submit(ctx context.Context, body *parleyv1.Body) (accepted, error) {
	_, inProcess := n.cfg.Signer.(*signature.ED25519Signer)
	trusted := inProcess && body.GetReceipt() == nil
	bodyRaw, err := canonicalBody(body)
	if err != nil {
		n.metrics.entryRejected(err, "submission")
		return accepted{}, err
	}
	n.mu.Lock()
	head := n.heads[n.party]
	h := &parleyv1.Header{
		AgreementId: n.cfg.Agreement.Agreement.ID,
		Sender:      n.party,
		Seq:         head.Seq + 1,
		IssuedAt:    timestamppb.New(n.cfg.Now().UTC()),
	}
	if head.Seq > 0 {
		h.Prev = bytes.Clone(head.Digest[:])
	}
	p, err := n.signStatement(ctx, h, body, bodyRaw)
	if err != nil {
		n.mu.Unlock()
		return accepted{}, fmt.Errorf("couldn't sign the statement: %w", err)
	}
	var adm admission
	if trusted {
		adm, err = n.admitSigned(p)
	} else {
		adm, err = n.admitLocked(ctx, p.Raw, "submission")
	}
	n.mu.Unlock()
	if err != nil {
		return accepted{}, err
	}
	return n.finish(ctx, adm)
}

// deterministic is the encoding of every envelope and statement
// (envelope.Sign's).
var deterministic = proto.MarshalOptions{Deterministic: true}

// canonicalBody returns b's deterministic encoding, which is the body's
// part of the statement's encoding. It refuses, as envelope.Parse would
// refuse the signed envelope, a body whose encoding does not decode to
// itself: one with unknown fields (from a newer client), which decoding
// drops. The caller must not change b afterwards: the admitted entry keeps
// it as its parsed body.
func canonicalBody(b *parleyv1.Body) ([]byte, error) {
	raw, err := deterministic.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("%w: couldn't encode the body: %w", envelope.ErrMalformed, err)
	}
	// The encoding keeps the unknown fields b was decoded with; the
	// canonical walk refuses them.
	if !envelope.IsCanonical(b, raw) {
		return nil, fmt.Errorf("%w: the body has fields unknown to this node's schema", envelope.ErrNonCanonical)
	}
	return raw, nil
}

// signStatement signs the statement of header h and body b, whose
// canonical encoding is bodyRaw (from canonicalBody), as envelope.Sign
// would, and returns the envelope as envelope.Parse would return it,
// without parsing it again: the payload is the deterministic encoding of
// the statement, and the envelope that of an Envelope built here, so both
// are canonical. What remains of Parse's checks, the size limit and a
// non-empty signature, is checked here. Callers hold n.mu.
func (n *Node) signStatement(ctx context.Context, h *parleyv1.Header, b *parleyv1.Body, bodyRaw []byte) (*envelope.Parsed, error) {
	hdr, err := deterministic.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode the header: %w", err)
	}
	// Statement is header (field 1) and body (field 2), both messages:
	// exactly what proto's deterministic Marshal writes for it.
	payload := make([]byte, 0, 2*(1+binary.MaxVarintLen64)+len(hdr)+len(bodyRaw))
	payload = protowire.AppendTag(payload, 1, protowire.BytesType)
	payload = protowire.AppendBytes(payload, hdr)
	payload = protowire.AppendTag(payload, 2, protowire.BytesType)
	payload = protowire.AppendBytes(payload, bodyRaw)
	sig, err := n.cfg.Signer.SignMessage(bytes.NewReader(envelope.PAE(envelope.PayloadType, payload)), options.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if len(sig) == 0 {
		return nil, fmt.Errorf("%w: the signer returned an empty signature", envelope.ErrMalformed)
	}
	env := &parleyv1.Envelope{
		Payload:     payload,
		PayloadType: envelope.PayloadType,
		Signatures:  []*parleyv1.Signature{{Sig: sig, Keyid: n.keyID}},
	}
	raw, err := deterministic.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode the envelope: %w", err)
	}
	if len(raw) > envelope.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, want at most %d", envelope.ErrTooLarge, len(raw), envelope.MaxSize)
	}
	return &envelope.Parsed{
		Raw:           raw,
		Digest:        sha256.Sum256(raw),
		Envelope:      env,
		Statement:     &parleyv1.Statement{Header: h, Body: b},
		PayloadDigest: sha256.Sum256(payload),
	}, nil
}

// admitSigned takes the next seq of this party's feed for p, the envelope
// submit has just signed, without verifying it (see submit). Callers hold
// n.mu.
func (n *Node) admitSigned(p *envelope.Parsed) (_ admission, err error) {
	defer func() {
		if err != nil {
			n.metrics.entryRejected(err, "submission")
		}
	}()
	// The signature is not verified again, but every other verifier will
	// check the key's validity window: past it (a rotation the operator
	// missed), refuse rather than log an entry no one would accept.
	issued := p.Statement.GetHeader().GetIssuedAt().AsTime()
	if !slices.ContainsFunc(n.ownKeys, func(k *agreement.Key) bool { return k.ValidAt(issued) }) {
		return admission{}, fmt.Errorf("%w: this node's signing key %s is outside its validity window in the agreement at %s; install the party's current key",
			verifier.ErrKeyNotValid, n.keyID, issued.UTC().Format(time.RFC3339))
	}
	return n.take(verifier.Result{Parsed: p, Outcome: verifier.Accepted, KeyID: n.keyID}, p.Raw, "submission")
}
