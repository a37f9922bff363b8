package tlog

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// MaxEntrySize is the largest entry, in bytes, that the log accepts
// (the C2SP tlog-tiles limit, as entry bundles use a 16-bit length prefix).
const MaxEntrySize = tessera.DefaultEntrySizeLimit

// Defaults for the optional fields of [Config] and [WitnessConfig].
const (
	DefaultCheckpointInterval = time.Second
	DefaultBatchMaxAge        = time.Millisecond
	DefaultShutdownTimeout    = 10 * time.Second
	DefaultWitnessTimeout     = tessera.DefaultWitnessTimeout
)

const (
	// minCheckpointInterval is the smallest interval the POSIX driver accepts.
	minCheckpointInterval = 100 * time.Millisecond
	// batchMaxSize is the most entries the integrator hands Tessera at a
	// time, and Tessera's batch size: four full entry bundles. Tessera's
	// cost is per batch (its synced file replacements), so a log taking
	// more than a bundle per gathering (1,024 entries/s with
	// integrateGatherStream) gets larger batches: in the node's acceptance
	// profile Tessera fell from 7.6 % to 4.7 % of the CPU against batches of
	// one bundle.
	batchMaxSize = 4 * layout.EntryBundleWidth
	// walBatchMax is the most entries written to the write-ahead log at a time.
	walBatchMax = 4096
	// maxPending is the most entries durable in the write-ahead log and not
	// yet in the tree; past it, appends wait for the integrator.
	maxPending = 16384
	// dedupEntries is how many recently appended entries the log remembers,
	// so that appending the same bytes again returns the first index.
	dedupEntries = 4 * tessera.DefaultPushbackMaxOutstanding
	// publicationPoll is how often AwaitPublished looks for a new checkpoint.
	publicationPoll = 50 * time.Millisecond
)

var (
	// ErrClosed is returned by Append after Close has been called.
	ErrClosed = errors.New("log is closed")
	// ErrPushback is wrapped by Append's error when too many entries are in
	// flight; the caller should slow down and retry (e.g. gRPC Unavailable).
	ErrPushback = tessera.ErrPushback
)

// Config configures a [Log].
type Config struct {
	// Dir is the directory that holds the log; it is created if missing.
	// Required. The public tlog-tiles files live at its top (checkpoint,
	// tile/...), Tessera's private state in Dir/.state.
	Dir string
	// Origin is the checkpoint origin line agreed for this node's log.
	// Required; it must equal Signer.Name().
	Origin string
	// Signer signs checkpoints (Ed25519 note signer, see [NewSigner]).
	// Required.
	Signer note.Signer
	// CheckpointInterval bounds how long a durable entry waits for a
	// published checkpoint that covers it, while the witnesses answer
	// (plus their round trip; below 200ms, 200ms). Checkpoints are published
	// at most twice per interval, and only when the log has grown. Optional,
	// default DefaultCheckpointInterval, at least 100ms.
	CheckpointInterval time.Duration
	// BatchMaxAge is how long Tessera waits, after the first entry of a
	// batch is handed to it, for the rest of the batch. The integrator
	// hands a batch over in one burst, so this only needs to cover the
	// burst; it delays publication, not Append, which waits only for the
	// write-ahead log. Optional, default DefaultBatchMaxAge.
	BatchMaxAge time.Duration
	// ShutdownTimeout bounds how long Close waits for a checkpoint that
	// covers every appended entry. Optional, default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Witnesses, when set, makes every published checkpoint carry
	// cosignatures of a quorum of witnesses. Optional.
	Witnesses *WitnessConfig
	// Logger receives the log's own messages. Optional, default slog.Default().
	// (Tessera itself logs through klog.)
	Logger *slog.Logger
}

// WitnessConfig lists the witnesses (the mediators) that must cosign a
// checkpoint, through the C2SP tlog-witness protocol, before it is published.
type WitnessConfig struct {
	// Witnesses are the witness endpoints and keys. Required, non-empty; no
	// two may share a URL or a key name.
	Witnesses []Witness
	// Quorum is how many distinct witnesses must cosign a checkpoint before
	// it is published. Required, 1 ≤ Quorum ≤ len(Witnesses).
	Quorum int
	// Client sends the witness requests; it carries the node's mTLS client
	// certificate and the mediators' CAs. Required.
	Client *http.Client
	// Timeout bounds one round of requests to the witnesses. If the quorum
	// is not met in time the checkpoint is not published and Tessera tries
	// again at the next interval. Optional, default DefaultWitnessTimeout.
	Timeout time.Duration
}

// Witness is one witness endpoint.
type Witness struct {
	// URL is the witness's https base URL; checkpoints are posted to
	// URL/add-checkpoint.
	URL string
	// VerifierKey is the witness's cosignature/v1 verifier key (note vkey of
	// type 0x04). A plain Ed25519 note vkey (type 0x01) is accepted and read
	// as the cosignature/v1 key of the same Ed25519 key.
	VerifierKey string
}

// Log is a node's exchange log. Its methods are safe for concurrent use.
type Log struct {
	logger *slog.Logger

	appender *tessera.Appender
	reader   tessera.LogReader
	awaiter  *tessera.PublicationAwaiter
	shutdown func(context.Context) error
	cancel   context.CancelFunc
	root     *os.Root // Dir, for TileHandler
	wal      *wal     // appended to by the committer only
	timeout  time.Duration

	mu     sync.RWMutex // guards closed against Appends being queued
	closed bool

	// Group commit: Appends queue their entries and one committer writes
	// them to the write-ahead log a batch at a time.
	qmu       sync.Mutex
	queue     []*appendReq
	inflight  map[string]*appendReq // by identity: queued or being written
	recent    map[string]uint64     // by identity: the index of a recent entry
	ring      []string              // recent's keys, oldest first once full
	ringNext  int
	wake      chan struct{} // buffered: one pending wake-up
	quit      chan struct{} // closed by Close once no Append can queue
	committed chan struct{} // closed when the committer has drained the queue

	// Entries durable in the write-ahead log that the tree lacks. Only the
	// committer appends to pending and only the integrator takes from it.
	pmu     sync.Mutex
	tree    uint64         // the tree's size: entries Tessera integrated
	pending []pendingEntry // the entries at indexes tree, tree+1, ...
	failed  error          // set once the log can take no more entries
	iwake   chan struct{}  // buffered: wakes the integrator
	room    chan struct{}  // buffered: wakes a committer waiting for room
	drain   chan struct{}  // closed after the committer: integrate the rest and stop
	idle    chan struct{}  // closed when the integrator has stopped
}

// pendingEntry is an entry durable in the write-ahead log that the tree
// lacks. Entries reads raw, never the Tessera entry, which Tessera writes
// to while it integrates it.
type pendingEntry struct {
	raw   []byte
	entry *tessera.Entry
}

// appendReq is one queued Append.
type appendReq struct {
	raw      []byte
	entry    *tessera.Entry
	id       string
	enqueued bool          // by Enqueue, and no Append has claimed it yet
	done     chan struct{} // closed once index or err is set
	index    uint64
	err      error
}

// Open opens the log in cfg.Dir, creating it if needed, and starts the
// background tasks that publish checkpoints. ctx bounds Open only; the
// background tasks run until Close.
//
// Open returns once the log has a published checkpoint. A new log publishes
// its empty checkpoint during Open, so with witnesses configured a quorum of
// them must be reachable to create a log; otherwise Open fails (within about
// two checkpoint intervals plus the witness timeout) and can be retried. If
// Dir already holds a log, its checkpoint origin must be cfg.Origin.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("couldn't open log: %w", err)
	}
	logger := cfg.Logger.With("dir", cfg.Dir, "origin", cfg.Origin)

	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("couldn't create log directory: %w", err)
	}
	if err := checkOrigin(cfg.Dir, cfg.Origin); err != nil {
		return nil, fmt.Errorf("couldn't open log: %w", err)
	}

	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(cfg.Signer).
		WithCheckpointInterval(publishEvery(cfg.CheckpointInterval)).
		WithBatching(batchMaxSize, cfg.BatchMaxAge).
		WithShutdownTimeout(cfg.ShutdownTimeout)
	// No antispam: the integrator needs Tessera to give every entry it
	// hands over the next index (the log deduplicates before that).
	var (
		httpClient     *http.Client
		witnessTimeout time.Duration
	)
	if wc := cfg.Witnesses; wc != nil {
		group, err := wc.group()
		if err != nil {
			return nil, fmt.Errorf("couldn't configure witnesses: %w", err)
		}
		witnessTimeout = cmp.Or(wc.Timeout, DefaultWitnessTimeout)
		opts.WithWitnesses(group, &tessera.WitnessOptions{Timeout: witnessTimeout})
		httpClient = wc.Client
	}

	driver, err := posix.New(ctx, posix.Config{Path: cfg.Dir, HTTPClient: httpClient})
	if err != nil {
		return nil, fmt.Errorf("couldn't create posix driver: %w", err)
	}
	// Background tasks keep ctx's values but not its cancellation.
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	appender, shutdown, reader, err := tessera.NewAppender(bg, driver, opts)
	if err != nil {
		cancel()
		// A new log fails here if its first checkpoint can't be witnessed.
		return nil, fmt.Errorf("couldn't start appender: %w", err)
	}
	root, err := os.OpenRoot(cfg.Dir)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("couldn't open log directory: %w", err)
	}
	tree, err := reader.IntegratedSize(ctx)
	if err != nil {
		cancel()
		_ = root.Close()
		return nil, fmt.Errorf("couldn't read the tree's size: %w", err)
	}
	w, recs, held, err := openWAL(filepath.Join(cfg.Dir, walDirName), tree)
	if err != nil {
		cancel()
		_ = root.Close()
		return nil, fmt.Errorf("couldn't open log: %w", err)
	}
	l := &Log{
		logger:   logger,
		appender: appender,
		reader:   reader,
		awaiter:  tessera.NewPublicationAwaiter(bg, reader.ReadCheckpoint, publicationPoll),
		shutdown: shutdown,
		cancel:   cancel,
		root:     root,
		wal:      w,
		timeout:  cfg.ShutdownTimeout,

		inflight:  map[string]*appendReq{},
		recent:    map[string]uint64{},
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		committed: make(chan struct{}),

		tree:  tree,
		iwake: make(chan struct{}, 1),
		room:  make(chan struct{}, 1),
		drain: make(chan struct{}),
		idle:  make(chan struct{}),
	}
	for _, r := range recs {
		l.pending = append(l.pending, pendingEntry{raw: r.data, entry: tessera.NewEntry(r.data)})
	}
	if err := l.checkIntegrated(ctx, held); err != nil {
		cancel()
		_ = root.Close()
		_ = w.close()
		return nil, fmt.Errorf("couldn't open log: %w", err)
	}
	if len(recs) > 0 {
		logger.InfoContext(ctx, "integrating entries from the write-ahead log", "entries", len(recs), "tree_size", tree)
	}
	go l.commit(bg)
	go l.integrate(bg)
	if err := l.awaitFirstCheckpoint(ctx, 2*cfg.CheckpointInterval+witnessTimeout); err != nil {
		_ = l.Close()
		return nil, err
	}
	size, err := l.DurableSize(ctx)
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	witnesses := 0
	if cfg.Witnesses != nil {
		witnesses = len(cfg.Witnesses.Witnesses)
	}
	logger.InfoContext(ctx, "opened log", "size", size, "witnesses", witnesses)
	return l, nil
}

// publishEvery is the minimum age of a published checkpoint before Tessera
// replaces it, for a log whose entries must be published within interval.
//
// Tessera's POSIX publisher tries after every integration but skips while
// the published checkpoint is younger than its interval, and after a skip
// waits until the next integration or a whole interval from the skip. An
// entry integrated just after a publication is then published only at the
// first integration after the interval, or an interval after the last
// integration that was skipped: with Tessera's interval equal to ours, an
// entry followed shortly by others (its receipts) waited about interval +
// their delay. With half our interval, the last skipped attempt for an
// entry comes at most half an interval after the publication before it, so
// the entry is published at most one interval after that publication.
func publishEvery(interval time.Duration) time.Duration {
	return max(interval/2, minCheckpointInterval)
}

// awaitFirstCheckpoint waits, at most for wait, until a checkpoint is
// published. Tessera publishes a new log's first checkpoint while starting,
// but a log whose first publication failed (no witness quorum) gets it from
// the background task.
func (l *Log) awaitFirstCheckpoint(ctx context.Context, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(publicationPoll)
	defer t.Stop()
	for {
		_, err := l.reader.ReadCheckpoint(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("couldn't read checkpoint: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("couldn't publish the log's first checkpoint: %w", ctx.Err())
		case <-t.C:
		}
	}
}

func (c *Config) setDefaults() error {
	switch {
	case c.Dir == "":
		return errors.New("no log directory (Dir)")
	case c.Origin == "":
		return errors.New("no checkpoint origin (Origin)")
	case c.Signer == nil:
		return errors.New("no checkpoint signer (Signer)")
	case c.Signer.Name() != c.Origin:
		return fmt.Errorf("checkpoint signer name %q must equal the origin %q", c.Signer.Name(), c.Origin)
	case c.CheckpointInterval < 0, c.BatchMaxAge < 0, c.ShutdownTimeout < 0:
		return errors.New("durations must not be negative")
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.CheckpointInterval < minCheckpointInterval {
		return fmt.Errorf("checkpoint interval %v is below the minimum of %v", c.CheckpointInterval, minCheckpointInterval)
	}
	if c.BatchMaxAge == 0 {
		c.BatchMaxAge = DefaultBatchMaxAge
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// group turns the configuration into Tessera's witness policy: a group of
// Quorum out of the witnesses.
func (wc *WitnessConfig) group() (tessera.WitnessGroup, error) {
	switch {
	case len(wc.Witnesses) == 0:
		return tessera.WitnessGroup{}, errors.New("no witnesses listed")
	case wc.Quorum < 1 || wc.Quorum > len(wc.Witnesses):
		return tessera.WitnessGroup{}, fmt.Errorf("quorum %d must be between 1 and the %d witnesses", wc.Quorum, len(wc.Witnesses))
	case wc.Client == nil:
		return tessera.WitnessGroup{}, errors.New("an HTTP client is required")
	case wc.Timeout < 0:
		return tessera.WitnessGroup{}, errors.New("timeout must not be negative")
	}
	g := tessera.WitnessGroup{N: wc.Quorum}
	urls := make(map[string]bool)
	names := make(map[string]bool)
	for i, w := range wc.Witnesses {
		u, err := url.Parse(w.URL)
		if err != nil {
			return tessera.WitnessGroup{}, fmt.Errorf("witness %d: couldn't parse URL: %w", i, err)
		}
		if u.Scheme != "https" || u.Host == "" {
			return tessera.WitnessGroup{}, fmt.Errorf("witness %d: URL %q must be an absolute https URL", i, w.URL)
		}
		tw, err := tessera.NewWitness(w.VerifierKey, u)
		if err != nil {
			return tessera.WitnessGroup{}, fmt.Errorf("witness %d: couldn't parse verifier key: %w", i, err)
		}
		// Tessera counts a quorum per component, so two entries with one key
		// would let one witness count twice.
		if urls[tw.URL] || names[tw.Key.Name()] {
			return tessera.WitnessGroup{}, fmt.Errorf("witness %d: duplicate URL %q or key name %q", i, w.URL, tw.Key.Name())
		}
		urls[tw.URL], names[tw.Key.Name()] = true, true
		g.Components = append(g.Components, tw)
	}
	return g, nil
}

// checkOrigin refuses a directory whose published checkpoint names another
// origin.
func checkOrigin(dir, origin string) error {
	raw, err := os.ReadFile(filepath.Join(dir, layout.CheckpointPath))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("couldn't read checkpoint: %w", err)
	}
	cp, err := parseUnverified(raw)
	if err != nil {
		return err
	}
	if cp.Origin != origin {
		return fmt.Errorf("directory holds the log of origin %q, want %q", cp.Origin, origin)
	}
	return nil
}

// parseUnverified parses the body of a checkpoint without checking its
// signatures. Use it only on checkpoints this node wrote itself.
func parseUnverified(raw []byte) (log.Checkpoint, error) {
	body, _, ok := bytes.Cut(raw, []byte("\n\n"))
	if !ok {
		return log.Checkpoint{}, errors.New("couldn't parse checkpoint: no signature block")
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal(append(body, '\n')); err != nil {
		return log.Checkpoint{}, fmt.Errorf("couldn't parse checkpoint: %w", err)
	}
	return cp, nil
}

// Append adds raw as the next leaf and returns its index once it is durable
// (see the package documentation): written to the write-ahead log and
// synced, readable with Entries, but not necessarily in the tree yet nor
// published; use AwaitPublished for that. Concurrent Appends are batched
// together; their order in the log is not their call order.
//
// Appends are group-committed: while one batch is written, the entries
// appended meanwhile wait in a queue, and when the write ends they are
// written together as the next batch. A lone entry is written at once, and
// under load a batch carries everything that arrived during the previous
// write.
//
// Appending bytes identical to an entry appended recently by this process
// returns that entry's index instead of adding a second leaf. If ctx ends
// first, Append returns its error and the entry may or may not be in the log;
// retrying with the same bytes is safe.
func (l *Log) Append(ctx context.Context, raw []byte) (uint64, error) {
	if len(raw) > MaxEntrySize {
		return 0, fmt.Errorf("couldn't append entry: %d bytes is over the limit of %d", len(raw), MaxEntrySize)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("couldn't append entry: %w", context.Cause(ctx))
	}
	req, index, err := l.queueEntry(raw, false)
	if err != nil || req == nil {
		return index, err
	}
	return req.wait(ctx)
}

// wait waits until req is durable and returns its index, or until ctx ends.
func (req *appendReq) wait(ctx context.Context) (uint64, error) {
	select {
	case <-req.done:
		if req.err != nil {
			return 0, fmt.Errorf("couldn't append entry: %w", req.err)
		}
		return req.index, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("couldn't append entry: %w", context.Cause(ctx))
	}
}

// Enqueue queues raw to be appended and returns without waiting; the next
// Append of the same bytes waits for that entry instead of queueing it
// again. Entries become durable in the order they were enqueued (or
// together): an entry is never durable while an entry enqueued before it is
// not. A caller that decides an order, such as a feed's seqs, enqueues
// under its own lock and appends outside it. Enqueue refuses an entry over
// MaxEntrySize, and one enqueued already and not yet appended.
//
// The returned Queued waits for the entry as that Append would, without
// hashing the bytes again to find it: a caller that keeps it calls
// [Queued.Wait] instead of Append. (Unlike Append, Wait leaves the entry
// enqueued: the same bytes are refused by Enqueue until they are durable.)
func (l *Log) Enqueue(raw []byte) (Queued, error) {
	if len(raw) > MaxEntrySize {
		return Queued{}, fmt.Errorf("couldn't enqueue entry: %d bytes is over the limit of %d", len(raw), MaxEntrySize)
	}
	req, index, err := l.queueEntry(raw, true)
	if err != nil {
		return Queued{}, err
	}
	return Queued{l: l, req: req, index: index}, nil
}

// Queued is an entry queued by [Log.Enqueue].
type Queued struct {
	l   *Log
	req *appendReq // nil if the bytes were appended recently already
	// index is then their index.
	index uint64
}

// Wait is Append of the enqueued bytes: it waits until the entry is
// durable and returns its index, or returns ctx's error first (the entry
// may or may not be in the log then).
func (q Queued) Wait(ctx context.Context) (uint64, error) {
	if q.l == nil {
		return 0, errors.New("couldn't append entry: it was never enqueued")
	}
	if q.req == nil {
		return q.index, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("couldn't append entry: %w", context.Cause(ctx))
	}
	return q.req.wait(ctx)
}

// queueEntry queues raw for the committer and returns its request, or,
// when the same bytes are queued already, that request (claiming it if
// Enqueue queued it), or, when they were appended recently, their index and
// no request.
func (l *Log) queueEntry(raw []byte, enqueue bool) (*appendReq, uint64, error) {
	// The entry's hashes are computed here, outside the committer.
	data := bytes.Clone(raw)
	e := tessera.NewEntry(data)
	id := string(e.Identity())
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, 0, ErrClosed
	}
	l.qmu.Lock()
	if req, ok := l.inflight[id]; ok {
		if req.enqueued {
			if enqueue {
				l.qmu.Unlock()
				return nil, 0, errors.New("couldn't enqueue entry: it is enqueued already")
			}
			req.enqueued = false
		}
		l.qmu.Unlock()
		return req, 0, nil
	}
	if index, ok := l.recent[id]; ok {
		l.qmu.Unlock()
		return nil, index, nil
	}
	req := &appendReq{raw: data, entry: e, id: id, enqueued: enqueue, done: make(chan struct{})}
	l.queue = append(l.queue, req)
	l.inflight[id] = req
	l.qmu.Unlock()
	signal(l.wake)
	return req, 0, nil
}

// signal wakes the receiver of c, a channel of capacity one, without
// waiting.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// commit writes the queued entries to the write-ahead log, one batch at a
// time, until Close; then it writes what is still queued and returns.
func (l *Log) commit(ctx context.Context) {
	defer close(l.committed)
	inflight := 0 // entries written by the last write plus those queued meanwhile
	var took time.Duration
	for {
		if inflight > 1 {
			l.linger(inflight, min(took, maxLinger))
		}
		if batch := l.take(); len(batch) > 0 {
			start := time.Now()
			l.write(ctx, batch)
			took = time.Since(start)
			inflight = len(batch) + l.queued()
			continue
		}
		inflight = 0
		select {
		case <-l.wake:
		case <-l.quit:
			// No Append can queue any more.
			for batch := l.take(); len(batch) > 0; batch = l.take() {
				l.write(ctx, batch)
			}
			return
		}
	}
}

// maxLinger bounds how long the committer waits for the callers of the last
// write to append again (see linger).
const maxLinger = 2 * time.Millisecond

// linger waits, at most for max, until want entries are queued. Callers
// that append one entry after another (a client waiting for each answer)
// come back just after a write ends; without waiting for them, they would
// miss the next write, and the callers would settle into two groups taking
// turns, each write carrying half of them and each append waiting for two
// writes. An idle log (want ≤ 1) does not linger.
func (l *Log) linger(want int, max time.Duration) {
	want = min(want, walBatchMax)
	if max <= 0 || l.queued() >= want {
		return
	}
	t := time.NewTimer(max)
	defer t.Stop()
	for l.queued() < want {
		select {
		case <-l.wake:
		case <-t.C:
			return
		case <-l.quit:
			return
		}
	}
}

// queued is how many entries wait for the next write.
func (l *Log) queued() int {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return len(l.queue)
}

// take empties the queue, at most walBatchMax entries at a time.
func (l *Log) take() []*appendReq {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	n := min(len(l.queue), walBatchMax)
	batch := l.queue[:n:n]
	if n == len(l.queue) {
		l.queue = nil
	} else {
		l.queue = l.queue[n:]
	}
	return batch
}

// write gives the entries of batch the next indexes, in queue order, writes
// them to the write-ahead log and syncs it, hands them to the integrator
// and answers their Appends.
func (l *Log) write(ctx context.Context, batch []*appendReq) {
	first, err := l.awaitRoom(ctx, len(batch))
	if err == nil {
		recs := make([]walRecord, len(batch))
		for i, r := range batch {
			recs[i] = walRecord{index: first + uint64(i), data: r.raw}
		}
		if err = l.wal.append(recs); err != nil {
			// What reached the disk is unknown: no entry may follow.
			l.fail(fmt.Errorf("%w; restart the node (the write-ahead log is read back, and a torn end cut off, when it opens)", err))
		} else {
			l.pmu.Lock()
			for _, r := range batch {
				l.pending = append(l.pending, pendingEntry{raw: r.raw, entry: r.entry})
			}
			l.pmu.Unlock()
			signal(l.iwake)
		}
	}
	l.qmu.Lock()
	for i, r := range batch {
		if err != nil {
			r.err = err
		} else {
			r.index = first + uint64(i)
			l.remember(r.id, r.index)
		}
		delete(l.inflight, r.id)
		close(r.done)
	}
	l.qmu.Unlock()
}

// remember notes the index of an entry for deduplication, forgetting the
// oldest once dedupEntries are noted. Callers hold qmu.
func (l *Log) remember(id string, index uint64) {
	if len(l.ring) < dedupEntries {
		l.ring = append(l.ring, id)
	} else {
		delete(l.recent, l.ring[l.ringNext])
		l.ring[l.ringNext] = id
		l.ringNext = (l.ringNext + 1) % dedupEntries
	}
	l.recent[id] = index
}

// awaitRoom waits until the tree lags the write-ahead log by fewer than
// maxPending entries (or by none, for a batch larger than that), and returns
// the index the next entry written gets.
func (l *Log) awaitRoom(ctx context.Context, n int) (uint64, error) {
	for {
		l.pmu.Lock()
		next, pending, err := l.tree+uint64(len(l.pending)), len(l.pending), l.failed
		l.pmu.Unlock()
		if err != nil {
			return 0, err
		}
		if pending == 0 || pending+n <= maxPending {
			return next, nil
		}
		select {
		case <-l.room:
		case <-ctx.Done():
			return 0, fmt.Errorf("log stopped: %w", ctx.Err())
		}
	}
}

// fail stops the log taking entries, for good: appends return err.
func (l *Log) fail(err error) {
	l.pmu.Lock()
	first := l.failed == nil
	if first {
		l.failed = err
	}
	l.pmu.Unlock()
	if first {
		l.logger.Error("the log takes no more entries", "err", err)
	}
	signal(l.room)
}

// How long the integrator lets a partial batch gather before it hands it
// to Tessera. Gathering delays publication by as much, and spares
// Tessera's cost per batch, which is most of its cost: each batch rewrites
// the partial entry bundle and a partial tile at every level of the tree,
// each a new file written, synced and renamed into place.
//
//   - A log that has been idle gathers for integrateGather only, so that a
//     lone entry is published soon.
//   - One that handed a batch over less than integrateGatherRecent ago (an
//     entry and then its receipts, say) gathers for that long.
//   - One taking a stream of entries, whose last batch carried at least
//     streamBatch entries and was handed over less than
//     integrateGatherStream ago, gathers for that long: its batches are
//     then whole entry bundles from 1,024 entries/s on, as a node
//     exchanging with its peers takes them, and ten times fewer than with
//     integrateGather. (In the exchange phase of parley bench, Tessera fell
//     from 6–8 % of each node's CPU to about 4 % against gathering 100 ms.)
const (
	integrateGather       = 25 * time.Millisecond
	integrateGatherRecent = 100 * time.Millisecond
	integrateGatherStream = 250 * time.Millisecond
	streamBatch           = 32
)

// gatherFor returns how long a partial batch gathers when the last batch,
// of lastSize entries, was handed over at last (zero if none was).
func gatherFor(last time.Time, lastSize int, now time.Time) time.Duration {
	if last.IsZero() {
		return integrateGather
	}
	switch since := now.Sub(last); {
	case since < integrateGatherStream && lastSize >= streamBatch:
		return integrateGatherStream
	case since < integrateGatherRecent:
		return integrateGatherRecent
	}
	return integrateGather
}

// closed reports whether c is closed.
func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// errMisplaced means Tessera put an entry at an index other than the one
// the write-ahead log gave it.
var errMisplaced = errors.New("the tree and the write-ahead log disagree")

// integrate hands the entries of the write-ahead log to Tessera, at most a
// Tessera batch at a time, in order, until Close has drained the committer
// and nothing is left (or the log fails, or ctx ends). Once Tessera has
// integrated them, Entries reads them from the tree and the write-ahead log
// segments that hold only such entries are deleted.
func (l *Log) integrate(ctx context.Context) {
	defer close(l.idle)
	retry := time.Duration(0)
	var (
		gather   *time.Timer // running while a partial batch gathers
		gathered bool        // it has gathered long enough
		handed   time.Time   // when the last batch was handed over
		size     int         // and how many entries it carried
	)
	defer func() {
		if gather != nil {
			gather.Stop()
		}
	}()
	for {
		l.pmu.Lock()
		tree, batch, failed := l.tree, l.pending[:min(len(l.pending), batchMaxSize)], l.failed
		l.pmu.Unlock()
		if failed != nil && errors.Is(failed, errMisplaced) {
			return
		}
		if n := len(batch); n > 0 && n < batchMaxSize && !gathered && !closed(l.drain) {
			// Tessera's cost is per batch (about six synced file
			// replacements): let a partial batch gather for a moment.
			if gather == nil {
				gather = time.NewTimer(gatherFor(handed, size, time.Now()))
			}
			select {
			case <-gather.C:
				gather, gathered = nil, true
			case <-l.iwake:
			case <-l.drain:
			case <-ctx.Done():
				return
			}
			continue
		}
		if gather != nil {
			gather.Stop()
			gather = nil
		}
		gathered = false
		if len(batch) == 0 {
			select {
			case <-l.iwake:
				continue
			case <-l.drain:
				l.pmu.Lock()
				left := len(l.pending)
				l.pmu.Unlock()
				if left == 0 {
					return
				}
				continue
			case <-ctx.Done():
				return
			}
		}
		handed, size = time.Now(), len(batch)
		n, err := l.toTree(ctx, tree, batch)
		if n > 0 {
			l.pmu.Lock()
			l.tree += uint64(n)
			if l.pending = l.pending[n:]; len(l.pending) == 0 {
				l.pending = nil
			}
			tree = l.tree
			l.pmu.Unlock()
			signal(l.room)
			if err := l.wal.release(tree); err != nil {
				l.logger.Warn("couldn't delete integrated write-ahead log segments; retrying later", "err", err)
			}
			retry = 0
		}
		if err == nil {
			continue
		}
		if errors.Is(err, errMisplaced) {
			l.fail(err)
			return
		}
		retry = min(max(2*retry, 50*time.Millisecond), 5*time.Second)
		l.logger.Warn("couldn't integrate entries into the tree; retrying", "tree_size", tree, "retry_in", retry, "err", err)
		select {
		case <-time.After(retry):
		case <-ctx.Done():
			return
		}
	}
}

// toTree hands batch, the entries from index tree on, to Tessera and
// waits for them. It returns how many of them, from the first, Tessera
// integrated at the index the write-ahead log gave them. Tessera cuts a
// batch that takes longer than Config.BatchMaxAge to hand over, and writes
// the parts in order; should one part fail and a later one succeed, the
// later entries land at indexes that belong to others: errMisplaced.
func (l *Log) toTree(ctx context.Context, tree uint64, batch []pendingEntry) (int, error) {
	futures := make([]tessera.IndexFuture, len(batch))
	for i, e := range batch {
		futures[i] = l.appender.Add(ctx, e.entry)
	}
	ok := 0
	var firstErr error
	for i, f := range futures {
		idx, err := f()
		switch {
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		case idx.Index != tree+uint64(i) || idx.IsDup:
			return ok, fmt.Errorf("%w: Tessera integrated the entry of index %d at index %d (duplicate %v); the node must stop and its log be examined", errMisplaced, tree+uint64(i), idx.Index, idx.IsDup)
		case firstErr == nil:
			ok++
		default:
			return ok, fmt.Errorf("%w: Tessera integrated the entry of index %d after failing an earlier one (%v)", errMisplaced, idx.Index, firstErr)
		}
	}
	return ok, firstErr
}

// checkIntegrated checks that the tree holds, at their indexes, the entries
// the write-ahead log still holds below the tree's size. It is only not so
// if Tessera misplaced entries (see toTree) before the last stop.
func (l *Log) checkIntegrated(ctx context.Context, held []walDigest) error {
	if len(held) == 0 {
		return nil
	}
	raws, err := l.treeEntries(ctx, held[0].index, len(held), l.tree)
	if err != nil {
		return fmt.Errorf("couldn't compare the tree with the write-ahead log: %w", err)
	}
	for i, d := range held {
		if i >= len(raws) || sha256.Sum256(raws[i]) != d.sum {
			return fmt.Errorf("%w: the tree's entry at index %d is not the one the write-ahead log holds; the log must be examined", errMisplaced, d.index)
		}
	}
	return nil
}

// AwaitPublished waits until a published checkpoint covers index, that is
// its size is greater than index, and returns that checkpoint (a signed note,
// with the witnesses' cosignatures when witnessing is configured). index must
// already be in the log, as returned by Append.
func (l *Log) AwaitPublished(ctx context.Context, index uint64) ([]byte, error) {
	size, err := l.DurableSize(ctx)
	if err != nil {
		return nil, err
	}
	if index >= size {
		return nil, fmt.Errorf("couldn't await publication: index %d is beyond the log size %d", index, size)
	}
	_, cp, err := l.awaiter.Await(ctx, func() (tessera.Index, error) {
		return tessera.Index{Index: index}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't await publication of index %d: %w", index, err)
	}
	return cp, nil
}

// Checkpoint returns the latest published checkpoint, a signed note with
// the witnesses' cosignatures when witnessing is configured.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	cp, err := l.reader.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't read checkpoint: %w", err)
	}
	return cp, nil
}

// Size returns the tree size of the latest published checkpoint.
func (l *Log) Size(ctx context.Context) (uint64, error) {
	raw, err := l.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	cp, err := parseUnverified(raw)
	if err != nil {
		return 0, err
	}
	return cp.Size, nil
}

// DurableSize returns the number of durable entries: every index
// Append returned is below it, and Entries reads them all. It is at least
// Size and is what the state store reconciles to; entries beyond Size are
// not yet committed to by a published checkpoint, and the newest of them
// may not be in the tree yet (see TreeSize).
func (l *Log) DurableSize(context.Context) (uint64, error) {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	return l.tree + uint64(len(l.pending)), nil
}

// TreeSize returns the size of the Merkle tree: the entries Tessera has
// integrated, over which proofs can be built and checkpoints published.
func (l *Log) TreeSize() uint64 {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	return l.tree
}

// Entries returns up to count leaves starting at index start: fewer if the
// log (its durable entries) ends first, none if start is at or beyond its
// end. The caller bounds count.
func (l *Log) Entries(ctx context.Context, start uint64, count int) ([][]byte, error) {
	if count < 0 {
		return nil, fmt.Errorf("couldn't read entries: negative count %d", count)
	}
	l.pmu.Lock()
	tree, pending := l.tree, l.pending
	l.pmu.Unlock()
	// pending is not changed in place: the integrator reslices it and the
	// committer only appends past its end.
	out, err := l.treeEntries(ctx, start, count, tree)
	if err != nil {
		return nil, err
	}
	for i := max(start, tree); len(out) < count && i < tree+uint64(len(pending)); i++ {
		out = append(out, pending[i-tree].raw)
	}
	return out, nil
}

// treeEntries reads up to count leaves starting at index start from the
// entry bundles of a tree of size tree.
func (l *Log) treeEntries(ctx context.Context, start uint64, count int, tree uint64) ([][]byte, error) {
	var out [][]byte
	for ri := range layout.Range(start, uint64(count), tree) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("couldn't read entries: %w", err)
		}
		raw, err := l.reader.ReadEntryBundle(ctx, ri.Index, ri.Partial)
		if err != nil {
			return nil, fmt.Errorf("couldn't read entry bundle %d: %w", ri.Index, err)
		}
		var b api.EntryBundle
		if err := b.UnmarshalText(raw); err != nil {
			return nil, fmt.Errorf("couldn't parse entry bundle %d: %w", ri.Index, err)
		}
		if uint(len(b.Entries)) < ri.First+ri.N {
			return nil, fmt.Errorf("couldn't read entries: bundle %d holds %d entries, want at least %d", ri.Index, len(b.Entries), ri.First+ri.N)
		}
		if out == nil {
			out = make([][]byte, 0, count)
		}
		out = append(out, b.Entries[ri.First:ri.First+ri.N]...)
	}
	return out, nil
}

// InclusionProof returns the RFC 6962 inclusion proof of the leaf at index
// in the tree of size treeSize, which must not exceed the integrated size.
func (l *Log) InclusionProof(ctx context.Context, index, treeSize uint64) ([][]byte, error) {
	if index >= treeSize {
		return nil, fmt.Errorf("couldn't build inclusion proof: index %d is not below tree size %d", index, treeSize)
	}
	if err := l.checkTreeSize(ctx, treeSize); err != nil {
		return nil, fmt.Errorf("couldn't build inclusion proof: %w", err)
	}
	pb, err := client.NewProofBuilder(ctx, treeSize, l.reader.ReadTile)
	if err != nil {
		return nil, fmt.Errorf("couldn't build inclusion proof: %w", err)
	}
	p, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("couldn't build inclusion proof: %w", err)
	}
	return p, nil
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of sizes from and to; from ≤ to, and to must not exceed the integrated size.
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	if from > to {
		return nil, fmt.Errorf("couldn't build consistency proof: from %d is above to %d", from, to)
	}
	if err := l.checkTreeSize(ctx, to); err != nil {
		return nil, fmt.Errorf("couldn't build consistency proof: %w", err)
	}
	pb, err := client.NewProofBuilder(ctx, to, l.reader.ReadTile)
	if err != nil {
		return nil, fmt.Errorf("couldn't build consistency proof: %w", err)
	}
	p, err := pb.ConsistencyProof(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("couldn't build consistency proof: %w", err)
	}
	return p, nil
}

func (l *Log) checkTreeSize(_ context.Context, treeSize uint64) error {
	if size := l.TreeSize(); treeSize > size {
		return fmt.Errorf("tree size %d is beyond the tree's size %d", treeSize, size)
	}
	return nil
}

// Close stops accepting appends, waits for appends in flight, waits (at most
// Config.ShutdownTimeout) for a published checkpoint that covers every entry
// appended, and stops the background tasks. If no such checkpoint is
// published in time, for example because the witnesses are unreachable,
// Close returns an error; the entries are durable all the same and are
// published after the next Open. Close after Close returns nil.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()

	// Write what is queued; no Append can queue any more. Then let the
	// integrator hand the rest to Tessera: what it has not when the time
	// is up stays in the write-ahead log, for the next Open.
	close(l.quit)
	<-l.committed
	close(l.drain)
	t := time.NewTimer(l.timeout)
	select {
	case <-l.idle:
	case <-t.C:
		l.logger.Warn("closing with entries not yet in the tree; they are in the write-ahead log and are integrated when the log opens again", "tree_size", l.TreeSize())
	}
	t.Stop()
	err := l.shutdown(context.Background())
	l.cancel()
	// A Tessera that stopped with entries queued never answers for them:
	// do not wait long for an integrator stuck there.
	t = time.NewTimer(time.Second)
	select {
	case <-l.idle:
	case <-t.C:
	}
	t.Stop()
	if err != nil {
		err = fmt.Errorf("couldn't publish a checkpoint covering every entry before closing: %w", err)
		l.logger.Warn("closed log without a final checkpoint", "err", err)
	}
	if werr := l.wal.close(); werr != nil {
		err = errors.Join(err, werr)
	}
	if cerr := l.root.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("couldn't close log directory: %w", cerr))
	}
	if err == nil {
		l.logger.Info("closed log")
	}
	return err
}
