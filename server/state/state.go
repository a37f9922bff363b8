// Package state is a node's state store: derived indexes and delivery state
// kept in one bbolt file.
//
// The exchange log (package tlog) is the source of truth. The store holds
// what can be recomputed from it (each sender's feed: (sender, seq) → log
// index and digests, and each sender's head) plus small operational state
// (per-peer delivery cursors, evidence, peers' last verified checkpoints).
// It tracks how many log entries it reflects (LogSize), so that after a
// crash, [Store.Reconcile] replays only the log's tail; it refuses a store
// that claims more entries than the log has.
//
// A Store is safe for concurrent use. bbolt allows one writer at a time;
// each write method is one transaction, fsynced before it returns.
package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// schemaVersion is the layout of the buckets below; Open refuses others.
const schemaVersion = 1

// Buckets. Integers are big-endian so keys sort numerically.
var (
	// metaBucket: "version" → uint64, "logsize" → uint64.
	metaBucket = []byte("meta")
	// feedsBucket: sender 0x00 seq → index | digest | payload digest.
	feedsBucket = []byte("feeds")
	// headsBucket: sender → seq | index | digest | payload digest.
	headsBucket = []byte("heads")
	// pendingBucket: log index → 1 for entries recorded beyond LogSize, i.e.
	// recorded while an earlier index was not yet.
	pendingBucket = []byte("pending")
	// cursorsBucket: peer → next log index to deliver.
	cursorsBucket = []byte("cursors")
	// evidenceBucket: one nested bucket per kind, key → data.
	evidenceBucket = []byte("evidence")
	// checkpointsBucket: origin → raw checkpoint.
	checkpointsBucket = []byte("checkpoints")

	versionKey = []byte("version")
	logSizeKey = []byte("logsize")
)

const (
	refSize  = 8 + 32 + 32
	headSize = 8 + refSize
	// reconcileBatch is how many log entries Reconcile records per transaction.
	reconcileBatch = 16384
)

var (
	// ErrAheadOfLog is returned by Reconcile when the store reflects log
	// entries that the log does not have: the store is from another log or
	// the log lost entries. The node must not start on such a store.
	ErrAheadOfLog = errors.New("state store is ahead of the log")
	// ErrConflict is wrapped by a *ConflictError.
	ErrConflict = errors.New("conflicting entries for one sender and seq")
)

// ConflictError reports a (sender, seq) that is already recorded with a
// different digest: the log holds two different entries for one place in a
// feed, which the verifier must have prevented. Recorded.Index and
// Got.Index locate both entries in the log, to be kept as evidence.
type ConflictError struct {
	Recorded Ref
	Got      Record
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: %s seq %d is recorded at log index %d with digest %x, but log index %d has digest %x",
		ErrConflict, e.Got.Sender, e.Got.Seq, e.Recorded.Index, e.Recorded.Digest, e.Got.Index, e.Got.Digest)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// Record is one log entry as the store indexes it.
type Record struct {
	Sender        string   // sender party id; non-empty, no NUL byte
	Seq           uint64   // position in the sender's feed, from 1
	Digest        [32]byte // SHA-256 of the envelope bytes
	PayloadDigest [32]byte // SHA-256 of the envelope's payload
	Index         uint64   // log index of the entry
}

// Ref locates one entry of a feed in the log.
type Ref struct {
	Index         uint64
	Digest        [32]byte
	PayloadDigest [32]byte
}

// Head is the last entry of a sender's feed.
type Head struct {
	Seq           uint64
	Digest        [32]byte
	PayloadDigest [32]byte
	Index         uint64
}

// Store is a node's state store.
type Store struct {
	db *bolt.DB

	// Records of RecordLater, written by one writer at a time. Until
	// committed, they are also in unwritten and unwrittenHeads, which
	// Lookup, Head and Heads consult before the database.
	laterMu        sync.Mutex
	later          []laterRecord
	unwritten      map[seqKey]Ref
	unwrittenHeads map[string]Head
	writing        bool           // a writer goroutine is running
	closed         bool           // Close was called: RecordLater refuses
	closing        chan struct{}  // closed by Close: the writer stops pausing
	writers        sync.WaitGroup // the writer, for Close
}

// laterEvery is the least time between two of RecordLater's commits. Its
// records are off every caller's path, so they can wait for company: fewer
// commits leave the disk's flushes to the log, which callers do wait for.
const laterEvery = 25 * time.Millisecond

type seqKey struct {
	sender string
	seq    uint64
}

// laterRecord is one RecordLater call.
type laterRecord struct {
	batch []Record
	done  func(error)
}

// ErrClosed is given to RecordLater's callback after Close.
var ErrClosed = errors.New("state store is closed")

// Open opens the store in the file at path, creating it if needed. It fails
// after a second if another process holds the file.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      time.Second,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't open state store %q: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{metaBucket, feedsBucket, headsBucket, pendingBucket, cursorsBucket, evidenceBucket, checkpointsBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(metaBucket)
		v := meta.Get(versionKey)
		if v == nil {
			return meta.Put(versionKey, u64(schemaVersion))
		}
		if len(v) != 8 || binary.BigEndian.Uint64(v) != schemaVersion {
			return fmt.Errorf("unsupported schema version %x, want %d", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("couldn't initialise state store %q: %w", path, err)
	}
	// Record's group commit: a lone caller waits at most this long for
	// others to share its transaction.
	db.MaxBatchDelay = time.Millisecond
	return &Store{db: db, unwritten: map[seqKey]Ref{}, unwrittenHeads: map[string]Head{}, closing: make(chan struct{})}, nil
}

// Close waits for the records of RecordLater in flight and closes the
// store.
func (s *Store) Close() error {
	s.laterMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	s.laterMu.Unlock()
	s.writers.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("couldn't close state store: %w", err)
	}
	return nil
}

// Record indexes a batch of log entries in one transaction. For each entry
// it records (sender, seq) → (index, digests) and moves the sender's head
// if seq is beyond it, and it counts the entry's index toward LogSize.
//
// Record is idempotent: an entry already recorded with the same digest
// (a replay, or the same envelope at a second log index) keeps its first
// index and only counts toward LogSize. An entry recorded with a different
// digest fails the whole batch with a *ConflictError.
func (s *Store) Record(batch []Record) error {
	for _, r := range batch {
		if err := r.validate(); err != nil {
			return fmt.Errorf("couldn't record log index %d: %w", r.Index, err)
		}
	}
	// Concurrent calls share one transaction and one fsync (bbolt's Batch
	// reruns record alone if another call in the shared transaction fails).
	if err := s.db.Batch(func(tx *bolt.Tx) error { return record(tx, batch) }); err != nil {
		return fmt.Errorf("couldn't record %d entries: %w", len(batch), err)
	}
	return nil
}

// RecordLater records batch like Record, in the background, and then calls
// done with the outcome (from another goroutine). The first record after a
// quiet spell is committed at once; records queued while a transaction
// commits, or within laterEvery of its start, share the next one: one commit
// and one fsync for all of them.
//
// The store is derived from the log, so a caller whose entries are already
// durable in the log need not wait for them to be recorded: after a crash,
// Reconcile records them again. Lookup, Head and Heads reflect batch as soon
// as RecordLater returns (LogSize only once it is committed), except for an
// entry whose (sender, seq) is already recorded, whose first record stands.
// After Close, done gets ErrClosed.
func (s *Store) RecordLater(batch []Record, done func(error)) {
	for _, r := range batch {
		if err := r.validate(); err != nil {
			done(fmt.Errorf("couldn't record log index %d: %w", r.Index, err))
			return
		}
	}
	s.laterMu.Lock()
	if s.closed {
		s.laterMu.Unlock()
		done(ErrClosed)
		return
	}
	s.later = append(s.later, laterRecord{batch: batch, done: done})
	for _, r := range batch {
		k := seqKey{r.Sender, r.Seq}
		if _, ok := s.unwritten[k]; !ok {
			s.unwritten[k] = Ref{Index: r.Index, Digest: r.Digest, PayloadDigest: r.PayloadDigest}
		}
		if h, ok := s.unwrittenHeads[r.Sender]; !ok || r.Seq > h.Seq {
			s.unwrittenHeads[r.Sender] = Head{Seq: r.Seq, Digest: r.Digest, PayloadDigest: r.PayloadDigest, Index: r.Index}
		}
	}
	start := !s.writing
	if start {
		s.writing = true
		s.writers.Add(1)
	}
	s.laterMu.Unlock()
	if start {
		go s.writeLater()
	}
}

// writeLater commits the queued records of RecordLater, all that are queued
// in one transaction, at most once per laterEvery, until the queue is empty.
func (s *Store) writeLater() {
	defer s.writers.Done()
	for {
		s.laterMu.Lock()
		queued := s.later
		s.later = nil
		if len(queued) == 0 {
			s.writing = false
			s.laterMu.Unlock()
			return
		}
		s.laterMu.Unlock()
		start := time.Now()
		var all []Record
		if len(queued) == 1 {
			all = queued[0].batch
		} else {
			for _, q := range queued {
				all = append(all, q.batch...)
			}
		}
		err := s.db.Update(func(tx *bolt.Tx) error { return record(tx, all) })
		errs := make([]error, len(queued))
		switch {
		case err == nil:
		case len(queued) == 1:
			errs[0] = fmt.Errorf("couldn't record %d entries: %w", len(all), err)
		default:
			// One call's records failed the shared transaction: record
			// each call alone, so that only it fails.
			for i, q := range queued {
				errs[i] = s.Record(q.batch)
			}
		}
		s.written(all)
		for i, q := range queued {
			q.done(errs[i])
		}
		if wait := laterEvery - time.Since(start); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.closing:
				t.Stop()
			}
		}
	}
}

// written drops committed (or failed) records from the unwritten ones; the
// database answers for them now.
func (s *Store) written(batch []Record) {
	s.laterMu.Lock()
	defer s.laterMu.Unlock()
	for _, r := range batch {
		k := seqKey{r.Sender, r.Seq}
		if ref, ok := s.unwritten[k]; ok && ref.Index == r.Index {
			delete(s.unwritten, k)
		}
		if h, ok := s.unwrittenHeads[r.Sender]; ok && h.Seq <= r.Seq {
			delete(s.unwrittenHeads, r.Sender)
		}
	}
}

// unwrittenHead returns sender's highest unwritten record, if any.
func (s *Store) unwrittenHead(sender string) (Head, bool) {
	s.laterMu.Lock()
	defer s.laterMu.Unlock()
	h, ok := s.unwrittenHeads[sender]
	return h, ok
}

func (r Record) validate() error {
	switch {
	case r.Sender == "":
		return errors.New("empty sender")
	case bytes.IndexByte([]byte(r.Sender), 0) >= 0:
		return fmt.Errorf("sender %q contains a NUL byte", r.Sender)
	case r.Seq == 0:
		return fmt.Errorf("sender %s: seq 0, want ≥ 1", r.Sender)
	}
	return nil
}

func record(tx *bolt.Tx, batch []Record) error {
	feeds := tx.Bucket(feedsBucket)
	heads := tx.Bucket(headsBucket)
	pending := tx.Bucket(pendingBucket)
	meta := tx.Bucket(metaBucket)
	// Feeds grow at the end of each sender's range; pack pages fuller.
	feeds.FillPercent = 0.9

	// bbolt keeps values until commit: carve them from one allocation.
	vals := make([]byte, 0, len(batch)*refSize)
	// Each sender's highest seq so far; heads are written once per batch.
	// An entry above it cannot be recorded yet, which spares a lookup in
	// the common case of a feed growing at its end.
	type top struct {
		seq   uint64
		moved bool
		head  Record
	}
	tops := make(map[string]*top)
	size := getU64(meta.Get(logSizeKey))
	startSize := size
	var key []byte
	for _, r := range batch {
		t := tops[r.Sender]
		if t == nil {
			t = &top{}
			if h := heads.Get([]byte(r.Sender)); h != nil {
				t.seq = binary.BigEndian.Uint64(h)
			}
			tops[r.Sender] = t
		}
		key = feedKey(key[:0], r.Sender, r.Seq)
		var v []byte
		if r.Seq <= t.seq {
			v = feeds.Get(key)
		}
		if v != nil {
			if ref := decodeRef(v); ref.Digest != r.Digest {
				return &ConflictError{Recorded: ref, Got: r}
			}
		} else {
			vals = appendRef(vals, r)
			if err := feeds.Put(key, vals[len(vals)-refSize:]); err != nil {
				return err
			}
			if r.Seq > t.seq {
				t.seq, t.moved, t.head = r.Seq, true, r
			}
		}

		switch {
		case r.Index < size:
			// Already counted.
		case r.Index == size:
			size++
			for {
				k := u64(size)
				if pending.Get(k) == nil {
					break
				}
				if err := pending.Delete(k); err != nil {
					return err
				}
				size++
			}
		default:
			if err := pending.Put(u64(r.Index), []byte{1}); err != nil {
				return err
			}
		}
	}
	for sender, t := range tops {
		if t.moved {
			if err := heads.Put([]byte(sender), encodeHead(t.head)); err != nil {
				return err
			}
		}
	}
	if size != startSize {
		return meta.Put(logSizeKey, u64(size))
	}
	return nil
}

// LogSize returns how many log entries, from index 0 without gaps, the
// store reflects.
func (s *Store) LogSize() (uint64, error) {
	var size uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		size = getU64(tx.Bucket(metaBucket).Get(logSizeKey))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("couldn't read log size: %w", err)
	}
	return size, nil
}

// Head returns the last recorded entry of sender's feed, and false if none.
func (s *Store) Head(sender string) (Head, bool, error) {
	// Unwritten first: the writer commits before it forgets them.
	uh, uok := s.unwrittenHead(sender)
	var (
		h  Head
		ok bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(headsBucket).Get([]byte(sender)); v != nil {
			h, ok = decodeHead(v), true
		}
		return nil
	})
	if err != nil {
		return Head{}, false, fmt.Errorf("couldn't read head of %s: %w", sender, err)
	}
	if uok && (!ok || uh.Seq > h.Seq) {
		return uh, true, nil
	}
	return h, ok, nil
}

// Heads returns the head of every sender's feed, by sender.
func (s *Store) Heads() (map[string]Head, error) {
	// Unwritten first: the writer commits before it forgets them.
	s.laterMu.Lock()
	unwritten := make(map[string]Head, len(s.unwrittenHeads))
	for k, h := range s.unwrittenHeads {
		unwritten[k] = h
	}
	s.laterMu.Unlock()
	heads := make(map[string]Head)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(headsBucket).ForEach(func(k, v []byte) error {
			heads[string(k)] = decodeHead(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read heads: %w", err)
	}
	for sender, uh := range unwritten {
		if h, ok := heads[sender]; !ok || uh.Seq > h.Seq {
			heads[sender] = uh
		}
	}
	return heads, nil
}

// Lookup returns where sender's entry seq is in the log, and false if it is
// not recorded.
func (s *Store) Lookup(sender string, seq uint64) (Ref, bool, error) {
	// Unwritten first: the writer commits before it forgets them. A
	// record already in the database stands; RecordLater does not
	// overwrite it.
	s.laterMu.Lock()
	uref, uok := s.unwritten[seqKey{sender, seq}]
	s.laterMu.Unlock()
	var (
		ref Ref
		ok  bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(feedsBucket).Get(feedKey(nil, sender, seq)); v != nil {
			ref, ok = decodeRef(v), true
		}
		return nil
	})
	if err != nil {
		return Ref{}, false, fmt.Errorf("couldn't look up %s seq %d: %w", sender, seq, err)
	}
	if !ok && uok {
		return uref, true, nil
	}
	return ref, ok, nil
}

// Reconcile brings the store up to a log of the given size (the log's
// integrated size): it replays the leaves [LogSize(), size), read in batches
// with read and turned into records with parse (which need not set Index),
// so that after any crash the store matches the log again. It returns an
// error wrapping ErrAheadOfLog if the store reflects entries at or beyond
// size. Run it before serving, not concurrently with other writes.
//
// Batches are read and parsed on a separate goroutine (one call at a time)
// while the previous batch is written, one transaction per batch.
func (s *Store) Reconcile(ctx context.Context, size uint64,
	read func(ctx context.Context, start uint64, count int) ([][]byte, error),
	parse func(raw []byte) (Record, error),
) error {
	var have, maxPending uint64
	var hasPending bool
	err := s.db.View(func(tx *bolt.Tx) error {
		have = getU64(tx.Bucket(metaBucket).Get(logSizeKey))
		if k, _ := tx.Bucket(pendingBucket).Cursor().Last(); k != nil {
			maxPending, hasPending = binary.BigEndian.Uint64(k), true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("couldn't read state store: %w", err)
	}
	if have > size || (hasPending && maxPending >= size) {
		return fmt.Errorf("couldn't reconcile: %w: it reflects %d entries (and index %d) but the log has %d", ErrAheadOfLog, have, maxPending, size)
	}

	// Read and parse the next batch while the current one is written.
	ctx, cancel := context.WithCancel(ctx)
	type chunk struct {
		batch []Record
		err   error
	}
	chunks := make(chan chunk, 1)
	go func() {
		defer close(chunks)
		for start := have; start < size; {
			batch, err := readRecords(ctx, start, min(reconcileBatch, size-start), read, parse)
			select {
			case chunks <- chunk{batch, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			start += uint64(len(batch))
		}
	}()
	defer func() {
		cancel()
		for range chunks {
		}
	}()
	for c := range chunks {
		if c.err != nil {
			return fmt.Errorf("couldn't reconcile: %w", c.err)
		}
		err := s.db.Update(func(tx *bolt.Tx) error { return record(tx, c.batch) })
		if err != nil {
			return fmt.Errorf("couldn't reconcile: couldn't record %d entries: %w", len(c.batch), err)
		}
	}
	return nil
}

// readRecords reads up to count leaves from start and parses them.
func readRecords(ctx context.Context, start, count uint64,
	read func(ctx context.Context, start uint64, count int) ([][]byte, error),
	parse func(raw []byte) (Record, error),
) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	leaves, err := read(ctx, start, int(count))
	if err != nil {
		return nil, fmt.Errorf("couldn't read log entries from %d: %w", start, err)
	}
	if len(leaves) == 0 || uint64(len(leaves)) > count {
		return nil, fmt.Errorf("asked the log for %d entries from %d, got %d", count, start, len(leaves))
	}
	batch := make([]Record, len(leaves))
	for i, raw := range leaves {
		r, err := parse(raw)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse log entry %d: %w", start+uint64(i), err)
		}
		r.Index = start + uint64(i)
		batch[i] = r
	}
	return batch, nil
}

// Cursor returns the next log index to deliver to peer: 0 if none was set.
func (s *Store) Cursor(peer string) (uint64, error) {
	var next uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		next = getU64(tx.Bucket(cursorsBucket).Get([]byte(peer)))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("couldn't read cursor of %s: %w", peer, err)
	}
	return next, nil
}

// SetCursor sets the next log index to deliver to peer.
func (s *Store) SetCursor(peer string, next uint64) error {
	if peer == "" {
		return errors.New("couldn't set cursor: empty peer")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(cursorsBucket).Put([]byte(peer), u64(next))
	})
	if err != nil {
		return fmt.Errorf("couldn't set cursor of %s: %w", peer, err)
	}
	return nil
}

// AddEvidence keeps data as evidence of the given kind (for example
// "equivocation") under key. key should be derived from data, such as a
// digest of it: adding a key that is already kept is a no-op, whatever the
// data, so the first evidence is never overwritten.
func (s *Store) AddEvidence(kind, key string, data []byte) error {
	if kind == "" || key == "" {
		return errors.New("couldn't add evidence: empty kind or key")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(evidenceBucket).CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		if b.Get([]byte(key)) != nil {
			return nil
		}
		return b.Put([]byte(key), data)
	})
	if err != nil {
		return fmt.Errorf("couldn't add %s evidence %q: %w", kind, key, err)
	}
	return nil
}

// Evidence returns the evidence of the given kind, ordered by key.
func (s *Store) Evidence(kind string) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(evidenceBucket).Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			out = append(out, bytes.Clone(v))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read %s evidence: %w", kind, err)
	}
	return out, nil
}

// SetPeerCheckpoint keeps raw as the last verified checkpoint of the log
// with the given origin. The caller verifies it, and its consistency with
// the previous one, first.
func (s *Store) SetPeerCheckpoint(origin string, raw []byte) error {
	if origin == "" {
		return errors.New("couldn't set peer checkpoint: empty origin")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(checkpointsBucket).Put([]byte(origin), raw)
	})
	if err != nil {
		return fmt.Errorf("couldn't set checkpoint of %s: %w", origin, err)
	}
	return nil
}

// PeerCheckpoint returns the last verified checkpoint of the log with the
// given origin, and false if there is none.
func (s *Store) PeerCheckpoint(origin string) ([]byte, bool, error) {
	var raw []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(checkpointsBucket).Get([]byte(origin)); v != nil {
			raw = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("couldn't read checkpoint of %s: %w", origin, err)
	}
	return raw, raw != nil, nil
}

// feedKey appends sender 0x00 seq to dst. The NUL separator sorts before any
// byte of a sender, so each sender's keys are contiguous and ordered by seq.
func feedKey(dst []byte, sender string, seq uint64) []byte {
	dst = append(dst, sender...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func appendRef(dst []byte, r Record) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.Index)
	dst = append(dst, r.Digest[:]...)
	return append(dst, r.PayloadDigest[:]...)
}

func decodeRef(v []byte) Ref {
	var ref Ref
	ref.Index = binary.BigEndian.Uint64(v)
	copy(ref.Digest[:], v[8:40])
	copy(ref.PayloadDigest[:], v[40:72])
	return ref
}

func encodeHead(r Record) []byte {
	v := make([]byte, 0, headSize)
	v = binary.BigEndian.AppendUint64(v, r.Seq)
	return appendRef(v, r)
}

func decodeHead(v []byte) Head {
	ref := decodeRef(v[8:])
	return Head{
		Seq:           binary.BigEndian.Uint64(v),
		Digest:        ref.Digest,
		PayloadDigest: ref.PayloadDigest,
		Index:         ref.Index,
	}
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// getU64 decodes a stored uint64; a missing value is 0.
func getU64(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}
