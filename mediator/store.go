package mediator

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"
)

// Buckets of the witness database.
var (
	// latestBucket maps a log origin to the JSON cosignedCheckpoint the
	// witness cosigned last for it.
	latestBucket = []byte("witness/latest")
	// evidenceBucket maps evidenceKey(ForkEvidence) to the JSON
	// ForkEvidence.
	evidenceBucket = []byte("witness/evidence")
)

// cosignedCheckpoint is the witness's record of the latest checkpoint it
// cosigned for a log.
type cosignedCheckpoint struct {
	// Checkpoint is the checkpoint note: its text and the log signatures
	// that verified, without any other signature the client sent.
	Checkpoint []byte `json:"checkpoint"`
	// Cosignature is the witness's cosignature line(s) on it, as returned
	// to the client.
	Cosignature []byte `json:"cosignature"`
	// Size and Root are the checkpoint's tree size and root hash.
	Size uint64 `json:"size"`
	Root []byte `json:"root"`
	// At is when the witness cosigned it.
	At time.Time `json:"at"`
}

// signed returns the checkpoint with the witness's cosignature appended.
func (c *cosignedCheckpoint) signed() []byte {
	return append(bytes.Clone(c.Checkpoint), c.Cosignature...)
}

// store persists the witness's state in a bbolt database. Every write
// transaction is fsynced before it returns. It is safe for concurrent use;
// callers that read, check and write a log's state serialise that
// themselves.
type store struct {
	db *bbolt.DB
}

// openStore opens, or creates, the witness database at path.
func openStore(path string) (*store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("couldn't open witness database %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{latestBucket, evidenceBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't initialise witness database %s: %w", path, err)
	}
	return &store{db: db}, nil
}

// close closes the database.
func (s *store) close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("couldn't close witness database: %w", err)
	}
	return nil
}

// latest returns the latest checkpoint cosigned for origin, or nil if there
// is none.
func (s *store) latest(origin string) (*cosignedCheckpoint, error) {
	var c *cosignedCheckpoint
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(latestBucket).Get([]byte(origin))
		if v == nil {
			return nil
		}
		c = new(cosignedCheckpoint)
		return json.Unmarshal(v, c)
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read latest checkpoint of %q: %w", origin, err)
	}
	return c, nil
}

// setLatest durably records c as the latest checkpoint cosigned for origin.
func (s *store) setLatest(origin string, c *cosignedCheckpoint) error {
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("couldn't encode checkpoint of %q: %w", origin, err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(latestBucket).Put([]byte(origin), v)
	})
	if err != nil {
		return fmt.Errorf("couldn't store checkpoint of %q: %w", origin, err)
	}
	return nil
}

// storedEvidence is the JSON record of a ForkEvidence: the evidence and
// the order in which the witness recorded it (0 in records written before
// the order was kept).
type storedEvidence struct {
	ForkEvidence
	Seq uint64 `json:"seq,omitempty"`
}

// evidenceOutcome is what addEvidence did with a record.
type evidenceOutcome int

const (
	// evidenceAdded: the record was new and is stored.
	evidenceAdded evidenceOutcome = iota
	// evidenceKnown: the same evidence was already stored; the first
	// record stands.
	evidenceKnown
	// evidenceReplaced: the origin was at its cap; the oldest unconfirmed
	// record (sizes differ) was dropped to store the new one.
	evidenceReplaced
	// evidenceDropped: the origin was at its cap with self-contained
	// proofs only (equal sizes, different roots) and the new record is an
	// unconfirmed one, or a further proof: it is not stored.
	evidenceDropped
)

// addEvidence durably records e, unless the same evidence (same origin and
// checkpoints) is already recorded, in which case the first record stands.
// It keeps at most max records per origin: at the cap, a new record
// replaces the oldest record whose checkpoints differ in size (a fork only
// the consistency proof the client sent speaks for, which anyone whose
// checkpoints the log signs can send); records of one size with two roots
// prove a fork on their own and are never replaced, and once the cap holds
// only those, new records are dropped.
func (s *store) addEvidence(e *ForkEvidence, max int) (evidenceOutcome, error) {
	key := evidenceKey(e)
	out := evidenceAdded
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(evidenceBucket)
		if b.Get(key) != nil {
			out = evidenceKnown
			return nil
		}
		var (
			n         int
			oldestKey []byte
			oldest    storedEvidence
		)
		err := b.ForEach(func(k, v []byte) error {
			var r storedEvidence
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if r.Origin != e.Origin {
				return nil
			}
			n++
			if selfContained(&r.ForkEvidence) {
				return nil
			}
			if oldestKey == nil || r.At.Before(oldest.At) || r.At.Equal(oldest.At) && r.Seq < oldest.Seq {
				oldestKey, oldest = bytes.Clone(k), r
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n >= max {
			if oldestKey == nil {
				out = evidenceDropped
				return nil
			}
			if err := b.Delete(oldestKey); err != nil {
				return err
			}
			out = evidenceReplaced
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		v, err := json.Marshal(storedEvidence{ForkEvidence: *e, Seq: seq})
		if err != nil {
			return err
		}
		return b.Put(key, v)
	})
	if err != nil {
		return 0, fmt.Errorf("couldn't store fork evidence of %q: %w", e.Origin, err)
	}
	return out, nil
}

// selfContained reports whether e's checkpoints have one size (and so,
// being distinct, two roots for it): a fork proven without any proof.
func selfContained(e *ForkEvidence) bool {
	a, errA := parseCheckpoint(string(noteText(e.Cosigned)))
	b, errB := parseCheckpoint(string(noteText(e.Rejected)))
	return errA == nil && errB == nil && a.Size == b.Size
}

// evidence returns all recorded fork evidence, oldest first.
func (s *store) evidence() ([]ForkEvidence, error) {
	var all []storedEvidence
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(evidenceBucket).ForEach(func(_, v []byte) error {
			var r storedEvidence
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			all = append(all, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read fork evidence: %w", err)
	}
	sort.SliceStable(all, func(i, j int) bool {
		return all[i].At.Before(all[j].At) || all[i].At.Equal(all[j].At) && all[i].Seq < all[j].Seq
	})
	out := make([]ForkEvidence, len(all))
	for i, r := range all {
		out[i] = r.ForkEvidence
	}
	return out, nil
}

// evidenceKey identifies evidence by what it proves, not by when it was
// seen, how it was signed or which proof came with it: SHA-256 over the
// length-prefixed origin and the texts of both checkpoints. (The
// cosignature on Cosigned differs each time the witness cosigns the same
// checkpoint again, and a client can send any number of different wrong
// proofs for one checkpoint; the first one recorded stands.)
func evidenceKey(e *ForkEvidence) []byte {
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	field([]byte(e.Origin))
	field(noteText(e.Cosigned))
	field(noteText(e.Rejected))
	return h.Sum(nil)
}

// noteText returns the text of a signed note: everything up to and
// including the line before the blank line that starts the signatures.
func noteText(n []byte) []byte {
	if i := bytes.LastIndex(n, []byte("\n\n")); i >= 0 {
		return n[:i+1]
	}
	return n
}
