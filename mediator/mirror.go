package mediator

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	// leavesFile indexes the entries file: for each entry, in log order,
	// its offset in the entries file (8 bytes, big-endian) and its RFC
	// 6962 leaf hash (32 bytes). It is derived from the entries file,
	// checked against it when the mirror is opened and rewritten from it
	// where it differs, so it is not synced.
	leavesFile = "leaves"
	// checkpointFile holds the latest checkpoint of the node (a signed
	// note, as the node served it, with the witnesses' cosignatures) whose
	// root hash the mirrored entries reproduce.
	checkpointFile = "checkpoint"
)

// leafRecord is the size of one record of the leaves file.
const leafRecord = 8 + 32

// cachedLevel is the lowest level of the tree whose nodes a MirrorLog keeps
// in memory: every complete subtree of 2^cachedLevel leaves and above.
// Lower nodes are recomputed from the leaves file, at most 2^cachedLevel-1
// leaf hashes on each side of a range.
const cachedLevel = 8

// maxRecord bounds one mirrored record: an envelope is at most 64 KiB.
const maxRecord = 1 << 20

var (
	hasher = rfc6962.DefaultHasher
	ranges = &compact.RangeFactory{Hash: hashChildren}
)

// hashChildren is hasher.HashChildren, with one allocation instead of
// three for the usual 32-byte children: opening a mirror builds its whole
// tree.
func hashChildren(l, r []byte) []byte {
	if len(l) != sha256.Size || len(r) != sha256.Size {
		return hasher.HashChildren(l, r)
	}
	var b [1 + 2*sha256.Size]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], l)
	copy(b[1+sha256.Size:], r)
	h := sha256.Sum256(b[:])
	return h[:]
}

// leafHasher computes RFC 6962 leaf hashes as hasher.HashLeaf does,
// reusing one SHA-256 state. It is not safe for concurrent use.
type leafHasher struct {
	h hash.Hash
}

// leafPrefix is written before a leaf's bytes (a slice passed to an
// interface's Write escapes: one allocation per hash if built per call).
var leafPrefix = []byte{rfc6962.RFC6962LeafHashPrefix}

func newLeafHasher() *leafHasher { return &leafHasher{h: sha256.New()} }

// hash returns the leaf hash of raw, in a new slice.
func (lh *leafHasher) hash(raw []byte) []byte {
	lh.h.Reset()
	lh.h.Write(leafPrefix)
	lh.h.Write(raw)
	return lh.h.Sum(make([]byte, 0, sha256.Size))
}

// MirrorLog is the on-disk copy of one party node's exchange log: every
// envelope in log order and the node's latest checkpoint that they
// reproduce. It computes the root hash of any prefix and the inclusion and
// consistency proofs a third party needs, without asking the node.
//
// Its memory does not grow with the log beyond 64 bytes per 256 entries:
// the offsets and leaf hashes of the entries are in the leaves file, read
// on demand; only the hashes of complete subtrees of 256 leaves and more,
// and the compact range of the whole tree, are kept in memory.
//
// A MirrorLog is safe for concurrent use. Only one process may open a
// mirror directory for writing; any number may open it read-only.
type MirrorLog struct {
	dir string

	mu         sync.RWMutex
	ef         *os.File // the entries file, nil if there is none
	lf         *os.File // the leaves file (a private temporary one if read-only and stale)
	lfTemp     bool     // lf is a temporary file, removed on Close
	write      bool     // opened for writing
	size       uint64   // number of entries
	end        int64    // size of the entries file
	tree       *compact.Range
	upper      [][][]byte // upper[k][i] is the hash of node (cachedLevel+k, i)
	checkpoint []byte
}

// OpenMirrorLog opens the mirrored log in dir. With writable, it creates dir
// if needed and drops a torn record at the end of the entries file (left by
// a crash during Append); read-only, it ignores it. Opening reads the
// entries file once, to check the leaves file against it.
func OpenMirrorLog(dir string, writable bool) (*MirrorLog, error) {
	m := &MirrorLog{dir: dir, write: writable, tree: ranges.NewEmptyRange(0)}
	path := filepath.Join(dir, entriesFile)
	var err error
	if writable {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("couldn't create mirror directory: %w", err)
		}
		m.ef, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	} else {
		m.ef, err = os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			m.ef = nil
			return m, m.loadCheckpoint()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't open mirrored log: %w", err)
	}
	if err := m.load(); err != nil {
		m.Close()
		return nil, err
	}
	if writable {
		if err := m.ef.Truncate(m.end); err != nil {
			m.Close()
			return nil, fmt.Errorf("couldn't truncate a torn record in %s: %w", path, err)
		}
		if _, err := m.ef.Seek(m.end, io.SeekStart); err != nil {
			m.Close()
			return nil, fmt.Errorf("couldn't open mirrored log: %w", err)
		}
	}
	if err := m.loadCheckpoint(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// load reads every complete record of the entries file, checks the leaves
// file against it, rewrites what differs (in a temporary file if
// read-only) and builds the tree in memory.
func (m *MirrorLog) load() error {
	lpath := filepath.Join(m.dir, leavesFile)
	var err error
	if m.write {
		m.lf, err = os.OpenFile(lpath, os.O_RDWR|os.O_CREATE, 0o644)
	} else {
		m.lf, err = os.Open(lpath)
		if errors.Is(err, os.ErrNotExist) {
			m.lf, err = m.tempLeaves(nil, 0)
		}
	}
	if err != nil {
		return fmt.Errorf("couldn't open mirrored leaves: %w", err)
	}
	er := bufio.NewReaderSize(io.NewSectionReader(m.ef, 0, 1<<62), 1<<20)
	lr := bufio.NewReaderSize(io.NewSectionReader(m.lf, 0, 1<<62), 1<<16)
	var (
		w      *bufio.Writer // set once the leaves file differs
		lh     = newLeafHasher()
		hdr    [4]byte
		raw    []byte
		want   [leafRecord]byte
		stored [leafRecord]byte
	)
	for {
		if _, err := io.ReadFull(er, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return fmt.Errorf("couldn't read mirrored log: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxRecord {
			return fmt.Errorf("mirrored log %s is corrupt: record %d claims %d bytes", m.dir, m.size, n)
		}
		if int(n) > cap(raw) {
			raw = make([]byte, n)
		}
		raw = raw[:n]
		if _, err := io.ReadFull(er, raw); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break // torn record
			}
			return fmt.Errorf("couldn't read mirrored log: %w", err)
		}
		binary.BigEndian.PutUint64(want[:8], uint64(m.end))
		leaf := lh.hash(raw)
		copy(want[8:], leaf)
		if w == nil {
			if _, err := io.ReadFull(lr, stored[:]); err != nil || stored != want {
				if w, err = m.rewriteLeaves(); err != nil {
					return err
				}
			}
		}
		if w != nil {
			w.Write(want[:])
		}
		if err := m.tree.Append(leaf, m.visit); err != nil {
			return fmt.Errorf("couldn't build mirrored tree: %w", err)
		}
		m.size++
		m.end += 4 + int64(n)
	}
	if w != nil {
		if err := w.Flush(); err != nil {
			return fmt.Errorf("couldn't write mirrored leaves: %w", err)
		}
	}
	if m.write {
		if err := m.lf.Truncate(int64(m.size) * leafRecord); err != nil {
			return fmt.Errorf("couldn't truncate mirrored leaves: %w", err)
		}
	}
	return nil
}

// rewriteLeaves returns a writer that rewrites the leaves file from record
// m.size on: in place if writable, else in a temporary copy.
func (m *MirrorLog) rewriteLeaves() (*bufio.Writer, error) {
	at := int64(m.size) * leafRecord
	if m.write || m.lfTemp {
		if err := m.lf.Truncate(at); err != nil {
			return nil, fmt.Errorf("couldn't rewrite mirrored leaves: %w", err)
		}
		return bufio.NewWriterSize(io.NewOffsetWriter(m.lf, at), 1<<16), nil
	}
	tmp, err := m.tempLeaves(m.lf, at)
	if err != nil {
		return nil, err
	}
	m.lf.Close()
	m.lf = tmp
	return bufio.NewWriterSize(io.NewOffsetWriter(tmp, at), 1<<16), nil
}

// tempLeaves returns a temporary leaves file, removed on Close, holding the
// first n bytes of from.
func (m *MirrorLog) tempLeaves(from *os.File, n int64) (*os.File, error) {
	tmp, err := os.CreateTemp("", "parley-mirror-leaves-*")
	if err != nil {
		return nil, fmt.Errorf("couldn't create temporary leaves file: %w", err)
	}
	m.lfTemp = true
	if from != nil && n > 0 {
		if _, err := io.Copy(tmp, io.NewSectionReader(from, 0, n)); err != nil {
			return tmp, fmt.Errorf("couldn't copy mirrored leaves: %w", err)
		}
	}
	return tmp, nil
}

// visit keeps the nodes of cachedLevel and above as the tree grows.
func (m *MirrorLog) visit(id compact.NodeID, hash []byte) {
	if id.Level < cachedLevel {
		return
	}
	k := int(id.Level - cachedLevel)
	for len(m.upper) <= k {
		m.upper = append(m.upper, nil)
	}
	if uint64(len(m.upper[k])) == id.Index {
		m.upper[k] = append(m.upper[k], hash)
	}
}

func (m *MirrorLog) loadCheckpoint() error {
	b, err := os.ReadFile(filepath.Join(m.dir, checkpointFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("couldn't read mirrored checkpoint: %w", err)
	}
	m.checkpoint = b
	return nil
}

// Close closes the mirror's files.
func (m *MirrorLog) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	if m.ef != nil {
		errs = append(errs, m.ef.Close())
		m.ef = nil
	}
	if m.lf != nil {
		errs = append(errs, m.lf.Close())
		if m.lfTemp {
			os.Remove(m.lf.Name())
		}
		m.lf = nil
	}
	if err := errors.Join(errs...); err != nil {
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
	return m.size
}

// Checkpoint returns the latest checkpoint stored with SetCheckpoint, or
// nil.
func (m *MirrorLog) Checkpoint() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return bytes.Clone(m.checkpoint)
}

// State returns the stored checkpoint (nil if none) and the number of
// entries, read together: while a sync appends entries and then stores
// their checkpoint, Checkpoint followed by Size could see the entries and
// not yet the checkpoint.
func (m *MirrorLog) State() (checkpoint []byte, size uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return bytes.Clone(m.checkpoint), m.size
}

// Append durably appends envelopes at the end of the mirror.
func (m *MirrorLog) Append(raws [][]byte) error {
	leaves := hashLeaves(raws)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.appendLocked(raws, leaves)
}

// appendCheckpointed appends envelopes whose leaf hashes the caller
// computed and then stores cp, the checkpoint of the log they end, at
// once: a reader of State sees either neither or both. (If cp cannot be
// stored, the entries stay appended and the checkpoint stored before
// stays, as after a crash between the two; the auditor says so.)
func (m *MirrorLog) appendCheckpointed(raws, leaves [][]byte, cp []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.appendLocked(raws, leaves); err != nil {
		return err
	}
	return m.setCheckpointLocked(cp)
}

// appendLocked appends envelopes whose leaf hashes the caller computed;
// the caller holds m.mu.
func (m *MirrorLog) appendLocked(raws, leaves [][]byte) error {
	if !m.write || m.ef == nil {
		return errors.New("couldn't append to mirrored log: opened read-only")
	}
	var buf bytes.Buffer
	idx := make([]byte, 0, len(raws)*leafRecord)
	end := m.end
	for i, raw := range raws {
		if len(raw) > maxRecord {
			return fmt.Errorf("couldn't append to mirrored log: envelope of %d bytes", len(raw))
		}
		idx = binary.BigEndian.AppendUint64(idx, uint64(end))
		idx = append(idx, leaves[i]...)
		buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(raw))))
		buf.Write(raw)
		end += 4 + int64(len(raw))
	}
	if _, err := m.ef.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("couldn't append to mirrored log: %w", err)
	}
	if err := m.ef.Sync(); err != nil {
		return fmt.Errorf("couldn't sync mirrored log: %w", err)
	}
	// The leaves file is checked against the entries when opened, so it
	// needs no sync of its own.
	if _, err := m.lf.WriteAt(idx, int64(m.size)*leafRecord); err != nil {
		return fmt.Errorf("couldn't append to mirrored leaves: %w", err)
	}
	for _, l := range leaves {
		if err := m.tree.Append(l, m.visit); err != nil {
			return fmt.Errorf("couldn't extend mirrored tree: %w", err)
		}
	}
	m.size += uint64(len(raws))
	m.end = end
	return nil
}

// SetCheckpoint durably replaces the stored checkpoint.
func (m *MirrorLog) SetCheckpoint(cp []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setCheckpointLocked(cp)
}

// setCheckpointLocked is SetCheckpoint; the caller holds m.mu.
func (m *MirrorLog) setCheckpointLocked(cp []byte) error {
	if err := writeFileAtomic(filepath.Join(m.dir, checkpointFile), cp); err != nil {
		return fmt.Errorf("couldn't store mirrored checkpoint: %w", err)
	}
	m.checkpoint = bytes.Clone(cp)
	return nil
}

// Entries returns count envelopes from index start.
func (m *MirrorLog) Entries(start, count uint64) ([][]byte, error) {
	var out [][]byte
	err := m.Scan(start, start+count, func(_ uint64, raw []byte) error {
		out = append(out, bytes.Clone(raw))
		return nil
	})
	return out, err
}

// Scan calls fn with each envelope from index start to end (exclusive), in
// order, reading the entries file sequentially. raw is valid only during
// the call. An error from fn stops the scan and is returned.
func (m *MirrorLog) Scan(start, end uint64, fn func(index uint64, raw []byte) error) error {
	m.mu.RLock()
	size := m.size
	lo, hi, err := m.spanLocked(start, end)
	m.mu.RUnlock()
	if err != nil {
		return err
	}
	if start == end {
		return nil
	}
	r := bufio.NewReaderSize(io.NewSectionReader(m.ef, lo, hi-lo), 256<<10)
	var hdr [4]byte
	var raw []byte
	for i := start; i < end; i++ {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("couldn't read mirrored entry %d of %d: %w", i, size, err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxRecord {
			return fmt.Errorf("mirrored log %s is corrupt: record %d claims %d bytes", m.dir, i, n)
		}
		if int(n) > cap(raw) {
			raw = make([]byte, n)
		}
		raw = raw[:n]
		if _, err := io.ReadFull(r, raw); err != nil {
			return fmt.Errorf("couldn't read mirrored entry %d of %d: %w", i, size, err)
		}
		if err := fn(i, raw); err != nil {
			return err
		}
	}
	return nil
}

// spanLocked returns the range of the entries file holding entries [start,
// end). The caller holds mu.
func (m *MirrorLog) spanLocked(start, end uint64) (int64, int64, error) {
	if end > m.size || end < start {
		return 0, 0, fmt.Errorf("couldn't read mirrored entries [%d, %d): the mirror has %d", start, end, m.size)
	}
	if start == end {
		return 0, 0, nil
	}
	lo, err := m.offsetLocked(start)
	if err != nil {
		return 0, 0, err
	}
	hi := m.end
	if end < m.size {
		if hi, err = m.offsetLocked(end); err != nil {
			return 0, 0, err
		}
	}
	return lo, hi, nil
}

// offsetLocked returns the offset of entry i in the entries file.
func (m *MirrorLog) offsetLocked(i uint64) (int64, error) {
	var b [8]byte
	if _, err := m.lf.ReadAt(b[:], int64(i)*leafRecord); err != nil {
		return 0, fmt.Errorf("couldn't read mirrored leaves: %w", err)
	}
	return int64(binary.BigEndian.Uint64(b[:])), nil
}

// LeafHash returns the RFC 6962 leaf hash of the entry at index.
func (m *MirrorLog) LeafHash(index uint64) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if index >= m.size {
		return nil, fmt.Errorf("couldn't read leaf hash %d: the mirror has %d entries", index, m.size)
	}
	hs, err := m.leavesLocked(index, index+1)
	if err != nil {
		return nil, err
	}
	return hs[0], nil
}

// leavesLocked reads the leaf hashes of entries [lo, hi).
func (m *MirrorLog) leavesLocked(lo, hi uint64) ([][]byte, error) {
	buf := make([]byte, (hi-lo)*leafRecord)
	if _, err := m.lf.ReadAt(buf, int64(lo)*leafRecord); err != nil {
		return nil, fmt.Errorf("couldn't read mirrored leaves: %w", err)
	}
	out := make([][]byte, hi-lo)
	for i := range out {
		out[i] = buf[i*leafRecord+8 : (i+1)*leafRecord : (i+1)*leafRecord]
	}
	return out, nil
}

// RootAt returns the root hash of the first size mirrored entries.
func (m *MirrorLog) RootAt(size uint64) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if size > m.size {
		return nil, fmt.Errorf("couldn't compute root of size %d: the mirror has %d entries", size, m.size)
	}
	return m.rootLocked(0, size)
}

// RootWith returns the root hash of the mirrored entries followed by the
// given leaf hashes, without storing them.
func (m *MirrorLog) RootWith(more [][]byte) ([]byte, error) {
	m.mu.RLock()
	// A copy: appending to a range overwrites its hashes in place.
	r, err := ranges.NewRange(0, m.tree.End(), slices.Clone(m.tree.Hashes()))
	m.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("couldn't compute root hash: %w", err)
	}
	for _, l := range more {
		if err := r.Append(l, nil); err != nil {
			return nil, fmt.Errorf("couldn't compute root hash: %w", err)
		}
	}
	if r.End() == 0 {
		return hasher.EmptyRoot(), nil
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return nil, fmt.Errorf("couldn't compute root hash: %w", err)
	}
	return root, nil
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

// prove computes the hashes of a proof's nodes.
func (m *MirrorLog) prove(nodes proof.Nodes, size uint64) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if size > m.size {
		return nil, fmt.Errorf("couldn't build proof for size %d: the mirror has %d entries", size, m.size)
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		lo, hi := id.Coverage()
		h, err := m.rootLocked(lo, min(hi, size))
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	return nodes.Rehash(hashes, hasher.HashChildren)
}

// rootLocked returns the RFC 6962 root hash of the subtree over entries
// [lo, hi): the tree's root if lo is 0, the hash of a node (complete or on
// the right border) otherwise. It reads at most 2^cachedLevel-1 leaf
// hashes on each side; the caller holds mu.
func (m *MirrorLog) rootLocked(lo, hi uint64) ([]byte, error) {
	if lo == hi {
		return hasher.EmptyRoot(), nil
	}
	ids := compact.RangeNodes(lo, hi, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := m.nodeLocked(id)
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	// Merge right to left, as a compact range's root is computed.
	root := hashes[len(hashes)-1]
	for i := len(hashes) - 2; i >= 0; i-- {
		root = hasher.HashChildren(hashes[i], root)
	}
	return root, nil
}

// nodeLocked returns the hash of a complete node of the tree.
func (m *MirrorLog) nodeLocked(id compact.NodeID) ([]byte, error) {
	if id.Level >= cachedLevel {
		k := int(id.Level - cachedLevel)
		if k < len(m.upper) && id.Index < uint64(len(m.upper[k])) {
			return m.upper[k][id.Index], nil
		}
		return nil, fmt.Errorf("couldn't compute mirrored node %d.%d: not in the tree", id.Level, id.Index)
	}
	lo, hi := id.Coverage()
	leaves, err := m.leavesLocked(lo, hi)
	if err != nil {
		return nil, err
	}
	for len(leaves) > 1 {
		for i := 0; i < len(leaves); i += 2 {
			leaves[i/2] = hasher.HashChildren(leaves[i], leaves[i+1])
		}
		leaves = leaves[:len(leaves)/2]
	}
	return leaves[0], nil
}

// hashLeaves returns the leaf hashes of raws, computed in parallel.
func hashLeaves(raws [][]byte) [][]byte {
	out := make([][]byte, len(raws))
	workers := min(runtime.GOMAXPROCS(0), len(raws)/64+1)
	var wg sync.WaitGroup
	per := (len(raws) + workers - 1) / workers
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, len(raws))
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lh := newLeafHasher()
			for i := lo; i < hi; i++ {
				out[i] = lh.hash(raws[i])
			}
		}()
	}
	wg.Wait()
	return out
}

// rootOf returns the RFC 6962 root hash of leaf hashes.
func rootOf(leaves [][]byte) ([]byte, error) {
	if len(leaves) == 0 {
		return hasher.EmptyRoot(), nil
	}
	r := ranges.NewEmptyRange(0)
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
