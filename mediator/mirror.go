package mediator

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Files of a mirrored log, under its directory.
const (
	// entriesFile holds the mirrored envelopes in log order, each as a
	// 4-byte big-endian length followed by the envelope bytes.
	entriesFile = "entries"
	// checkpointFile holds the latest checkpoint of the node (a signed
	// note, as the node served it, with the witnesses' cosignatures) whose
	// root hash the mirrored entries reproduce.
	checkpointFile = "checkpoint"
)

// maxRecord bounds one mirrored record: an envelope is at most 64 KiB.
const maxRecord = 1 << 20

var hasher = rfc6962.DefaultHasher

// MirrorLog is the on-disk copy of one party node's exchange log: every
// envelope in log order and the node's latest checkpoint that they
// reproduce. It keeps the leaf hashes in memory, so that it can compute the
// root hash of any prefix and the inclusion and consistency proofs a third
// party needs, without asking the node.
//
// A MirrorLog is safe for concurrent use. Only one process may open a
// mirror directory for writing.
type MirrorLog struct {
	dir string

	mu         sync.RWMutex
	f          *os.File // the entries file, nil when read-only
	leaves     [][]byte // RFC 6962 leaf hashes, by index
	offsets    []int64  // offset of each record in the entries file
	end        int64    // size of the entries file
	checkpoint []byte
}

// OpenMirrorLog opens the mirrored log in dir. With writable, it creates dir
// if needed and drops a torn record at the end of the entries file (left by
// a crash during Append); read-only, it ignores it.
func OpenMirrorLog(dir string, writable bool) (*MirrorLog, error) {
	m := &MirrorLog{dir: dir}
	path := filepath.Join(dir, entriesFile)
	var (
		f   *os.File
		err error
	)
	if writable {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("couldn't create mirror directory: %w", err)
		}
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	} else {
		f, err = os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			return m, m.loadCheckpoint()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't open mirrored log: %w", err)
	}
	raws, err := m.scan(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	m.leaves = hashLeaves(raws)
	if writable {
		if err := f.Truncate(m.end); err != nil {
			f.Close()
			return nil, fmt.Errorf("couldn't truncate a torn record in %s: %w", path, err)
		}
		if _, err := f.Seek(m.end, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("couldn't open mirrored log: %w", err)
		}
		m.f = f
	} else {
		f.Close()
	}
	return m, m.loadCheckpoint()
}

// scan reads every complete record of the entries file.
func (m *MirrorLog) scan(f *os.File) ([][]byte, error) {
	r := bufio.NewReaderSize(f, 1<<20)
	var raws [][]byte
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return raws, nil
			}
			return nil, fmt.Errorf("couldn't read mirrored log: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxRecord {
			return nil, fmt.Errorf("mirrored log %s is corrupt: record %d claims %d bytes", m.dir, len(raws), n)
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(r, raw); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return raws, nil // torn record
			}
			return nil, fmt.Errorf("couldn't read mirrored log: %w", err)
		}
		m.offsets = append(m.offsets, m.end)
		m.end += 4 + int64(n)
		raws = append(raws, raw)
	}
}

// hashLeaves returns the leaf hashes of raws, computed in parallel.
func hashLeaves(raws [][]byte) [][]byte {
	out := make([][]byte, len(raws))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	per := (len(raws) + workers - 1) / max(workers, 1)
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, len(raws))
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				out[i] = hasher.HashLeaf(raws[i])
			}
		}()
	}
	wg.Wait()
	return out
}

func (m *MirrorLog) loadCheckpoint() error {
	b, err := os.ReadFile(filepath.Join(m.dir, checkpointFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("couldn't read mirrored checkpoint: %w", err)
	}
	m.checkpoint = b
	return nil
}

// Close closes the entries file.
func (m *MirrorLog) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	err := m.f.Close()
	m.f = nil
	if err != nil {
		return fmt.Errorf("couldn't close mirrored log: %w", err)
	}
	return nil
}

// Dir returns the mirror's directory.
func (m *MirrorLog) Dir() string { return m.dir }

// Size returns the number of mirrored entries.
func (m *MirrorLog) Size() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return uint64(len(m.leaves))
}

// Checkpoint returns the latest checkpoint stored with SetCheckpoint, or
// nil.
func (m *MirrorLog) Checkpoint() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return bytes.Clone(m.checkpoint)
}

// Append durably appends envelopes at the end of the mirror.
func (m *MirrorLog) Append(raws [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return errors.New("couldn't append to mirrored log: opened read-only")
	}
	var buf bytes.Buffer
	offsets := make([]int64, 0, len(raws))
	end := m.end
	for _, raw := range raws {
		if len(raw) > maxRecord {
			return fmt.Errorf("couldn't append to mirrored log: envelope of %d bytes", len(raw))
		}
		offsets = append(offsets, end)
		buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(raw))))
		buf.Write(raw)
		end += 4 + int64(len(raw))
	}
	if _, err := m.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("couldn't append to mirrored log: %w", err)
	}
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("couldn't sync mirrored log: %w", err)
	}
	m.offsets = append(m.offsets, offsets...)
	m.leaves = append(m.leaves, hashLeaves(raws)...)
	m.end = end
	return nil
}

// SetCheckpoint durably replaces the stored checkpoint.
func (m *MirrorLog) SetCheckpoint(cp []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := writeFileAtomic(filepath.Join(m.dir, checkpointFile), cp); err != nil {
		return fmt.Errorf("couldn't store mirrored checkpoint: %w", err)
	}
	m.checkpoint = bytes.Clone(cp)
	return nil
}

// Entries returns count envelopes from index start.
func (m *MirrorLog) Entries(start, count uint64) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if start+count > uint64(len(m.leaves)) || start+count < start {
		return nil, fmt.Errorf("couldn't read mirrored entries [%d, %d): the mirror has %d", start, start+count, len(m.leaves))
	}
	if count == 0 {
		return nil, nil
	}
	f, err := os.Open(filepath.Join(m.dir, entriesFile))
	if err != nil {
		return nil, fmt.Errorf("couldn't read mirrored entries: %w", err)
	}
	defer f.Close()
	lo := m.offsets[start]
	hi := m.end
	if start+count < uint64(len(m.offsets)) {
		hi = m.offsets[start+count]
	}
	buf := make([]byte, hi-lo)
	if _, err := f.ReadAt(buf, lo); err != nil {
		return nil, fmt.Errorf("couldn't read mirrored entries: %w", err)
	}
	out := make([][]byte, 0, count)
	for len(buf) > 0 {
		n := binary.BigEndian.Uint32(buf)
		out = append(out, buf[4:4+n:4+n])
		buf = buf[4+n:]
	}
	return out, nil
}

// LeafHash returns the RFC 6962 leaf hash of the entry at index.
func (m *MirrorLog) LeafHash(index uint64) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.leaves[index]
}

// RootAt returns the root hash of the first size mirrored entries.
func (m *MirrorLog) RootAt(size uint64) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if size > uint64(len(m.leaves)) {
		return nil, fmt.Errorf("couldn't compute root of size %d: the mirror has %d entries", size, len(m.leaves))
	}
	return rootOf(m.leaves[:size])
}

// RootWith returns the root hash of the mirrored entries followed by the
// given leaf hashes, without storing them.
func (m *MirrorLog) RootWith(more [][]byte) ([]byte, error) {
	m.mu.RLock()
	all := append(m.leaves[:len(m.leaves):len(m.leaves)], more...)
	m.mu.RUnlock()
	return rootOf(all)
}

// InclusionProof returns the proof that the entry at index is in the tree
// of the given size.
func (m *MirrorLog) InclusionProof(index, size uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("couldn't build inclusion proof: %w", err)
	}
	return m.prove(nodes, size)
}

// ConsistencyProof returns the proof that the tree of size from is a prefix
// of the tree of size to.
func (m *MirrorLog) ConsistencyProof(from, to uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("couldn't build consistency proof: %w", err)
	}
	return m.prove(nodes, to)
}

// prove computes the hashes of a proof's nodes from the leaves.
func (m *MirrorLog) prove(nodes proof.Nodes, size uint64) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if size > uint64(len(m.leaves)) {
		return nil, fmt.Errorf("couldn't build proof for size %d: the mirror has %d entries", size, len(m.leaves))
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		lo, hi := id.Coverage()
		h, err := rootOf(m.leaves[lo:min(hi, size)])
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	return nodes.Rehash(hashes, hasher.HashChildren)
}

// rootOf returns the RFC 6962 root hash of leaf hashes.
func rootOf(leaves [][]byte) ([]byte, error) {
	if len(leaves) == 0 {
		return hasher.EmptyRoot(), nil
	}
	r := (&compact.RangeFactory{Hash: hasher.HashChildren}).NewEmptyRange(0)
	for _, l := range leaves {
		if err := r.Append(l, nil); err != nil {
			return nil, fmt.Errorf("couldn't compute root hash: %w", err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return nil, fmt.Errorf("couldn't compute root hash: %w", err)
	}
	return root, nil
}

// writeFileAtomic writes data to path through a synced temporary file and a
// rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
