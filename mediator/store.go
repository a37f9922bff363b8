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

// addEvidence durably records e, unless the same evidence (same origin,
// checkpoints and proof) is already recorded, in which case the first
// record stands. It reports whether e was new.
func (s *store) addEvidence(e *ForkEvidence) (bool, error) {
	v, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("couldn't encode fork evidence of %q: %w", e.Origin, err)
	}
	key := evidenceKey(e)
	added := false
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(evidenceBucket)
		if b.Get(key) != nil {
			return nil
		}
		added = true
		return b.Put(key, v)
	})
	if err != nil {
		return false, fmt.Errorf("couldn't store fork evidence of %q: %w", e.Origin, err)
	}
	return added, nil
}

// evidence returns all recorded fork evidence, oldest first.
func (s *store) evidence() ([]ForkEvidence, error) {
	var all []ForkEvidence
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(evidenceBucket).ForEach(func(_, v []byte) error {
			var e ForkEvidence
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			all = append(all, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read fork evidence: %w", err)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].At.Before(all[j].At) })
	return all, nil
}

// evidenceKey identifies evidence by what it proves, not by when it was
// seen or how it was signed: SHA-256 over the length-prefixed origin, the
// texts of both checkpoints and the proof. (The cosignature on Cosigned
// differs each time the witness cosigns the same checkpoint again.)
func evidenceKey(e *ForkEvidence) []byte {
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	field([]byte(e.Origin))
	field(noteText(e.Cosigned))
	field(noteText(e.Rejected))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(e.Proof))))
	for _, p := range e.Proof {
		field(p)
	}
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
