package tlog

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The write-ahead log makes a batch of entries durable with one write and
// one fdatasync of one file. Tessera's POSIX driver makes a batch durable
// by replacing several files (entry bundle, tiles, tree state), each written
// to a temporary file, synced, renamed and its directory synced: on this
// project's machines about 6 synced operations and 4–10 ms per batch. An
// Append waits only for the write-ahead log; a second task then hands the
// entries to Tessera in large batches, and once Tessera holds them the
// segments that carry them are deleted.
//
// A segment is a file named after the index of its first record
// (%020d.wal). A record is
//
//	length  uint32, big-endian: the entry's length in bytes
//	crc     uint32, big-endian: CRC-32C of index and entry
//	index   uint64, big-endian: the entry's index in the log
//	entry   length bytes
//
// and the records of a segment have consecutive indexes, starting at the
// one in its name. A crash can tear only the end of the newest segment (the
// only one written to); reading stops there and the torn end is cut off.
// Anything else that does not read back — a bad record in an older
// segment, a gap — is corruption, and the log refuses to open.
//
// A segment is filled with zeros ahead of its records (walExtendBytes at a
// time, written and synced with the batch that needs them), so that the
// fdatasync of a batch overwrites blocks the file already has and commits
// no metadata (size, block allocation): on this project's machines that
// halves its time and CPU. A header of zeros ends the records of a
// segment: no record has one, since its checksum covers its index and is
// never zero for index 0 and no data (TestWALZeroHeaderIsNoRecord). The
// zeros are cut off, durably, when a segment is closed (rotated, or the log
// closed) and, like a torn end, when the log opens: only the newest segment
// of a log that stopped without closing has them, and zeros in any other
// segment are corruption.

const (
	// walDirName is the write-ahead log's directory inside Config.Dir. Its
	// name starts with a dot, so TileHandler never serves it.
	walDirName     = ".wal"
	walHeaderBytes = 16
	walSuffix      = ".wal"
)

// walSegmentBytes is the size past which the next batch starts a new
// segment, so that integrated entries are deleted a segment at a time.
// Tests lower it.
var walSegmentBytes int64 = 32 << 20

// walExtendBytes is how far past the records a segment is filled with
// zeros when a batch runs past what was filled before.
const walExtendBytes = 4 << 20

// zeros is what segments are filled with.
var zeros = make([]byte, 64<<10)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errWALCorrupt is wrapped by the errors of a write-ahead log that cannot
// be read back for a reason other than a torn end.
var errWALCorrupt = errors.New("write-ahead log is corrupt")

// walRecord is one entry of the write-ahead log.
type walRecord struct {
	index uint64
	data  []byte
}

// wal is an open write-ahead log. Only the committer appends to it; the
// integrator releases what the tree holds.
type wal struct {
	dir   string
	f     *os.File // the segment being written
	first uint64   // the first index of f
	size  int64    // bytes of records in f
	alloc int64    // bytes of f filled with zeros or records, at least size
	buf   []byte

	mu    sync.Mutex // guards older
	older []walSegment
}

// walSegment is a closed segment: it holds the indexes [first, end).
type walSegment struct {
	path       string
	first, end uint64
}

// openWAL opens the write-ahead log in dir, creating it if needed, and
// returns the records it holds from index from on (those the tree, of size
// from, does not hold yet, in order) and the digests of those below from
// that it still holds (which the tree must hold: see checkIntegrated). It
// deletes segments the tree holds entirely, cuts off a torn end, and starts
// a new segment for what is written next.
func openWAL(dir string, from uint64) (*wal, []walRecord, []walDigest, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, nil, fmt.Errorf("couldn't create write-ahead log directory: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	w := &wal{dir: dir}
	var (
		recs []walRecord
		held []walDigest
	)
	next := from // the index the next record kept must have
	for i, seg := range segs {
		all, end, err := readSegment(seg, i == len(segs)-1)
		if err != nil {
			return nil, nil, nil, err
		}
		seg.end = end
		for _, r := range all {
			if r.index < from {
				held = append(held, walDigest{r.index, sha256.Sum256(r.data)})
				continue
			}
			if r.index != next {
				return nil, nil, nil, fmt.Errorf("%w: segment %s resumes at index %d, want %d: entries acknowledged as durable are missing",
					errWALCorrupt, filepath.Base(seg.path), r.index, next)
			}
			next++
			recs = append(recs, r)
		}
		if end <= from {
			// The tree holds all of it (or it is empty).
			if err := os.Remove(seg.path); err != nil {
				return nil, nil, nil, fmt.Errorf("couldn't remove integrated write-ahead log segment: %w", err)
			}
			continue
		}
		w.older = append(w.older, seg)
	}
	if err := w.startSegment(next); err != nil {
		return nil, nil, nil, err
	}
	return w, recs, held, nil
}

// walDigest is the SHA-256 of the entry a record of the write-ahead log
// holds at index.
type walDigest struct {
	index uint64
	sum   [32]byte
}

// listSegments returns the segments in dir, oldest first.
func listSegments(dir string) ([]walSegment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("couldn't list write-ahead log: %w", err)
	}
	var segs []walSegment
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), walSuffix)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		first, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: unexpected file %q", errWALCorrupt, de.Name())
		}
		segs = append(segs, walSegment{path: filepath.Join(dir, de.Name()), first: first})
	}
	slices.SortFunc(segs, func(a, b walSegment) int { return cmpUint(a.first, b.first) })
	return segs, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readSegment reads a segment and returns its records and the index after
// the last one. In the newest segment (last) a torn end is cut off;
// elsewhere it is corruption.
func readSegment(seg walSegment, last bool) ([]walRecord, uint64, error) {
	f, err := os.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("couldn't open write-ahead log segment: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	var (
		recs []walRecord
		good int64 // bytes of whole, valid records
		next = seg.first
		hdr  [walHeaderBytes]byte
	)
	torn := func(why string) ([]walRecord, uint64, error) {
		if !last {
			return nil, 0, fmt.Errorf("%w: segment %s: %s at byte %d", errWALCorrupt, filepath.Base(seg.path), why, good)
		}
		// A crash during the last write: what follows good was never
		// acknowledged.
		if err := f.Truncate(good); err != nil {
			return nil, 0, fmt.Errorf("couldn't cut the torn end of the write-ahead log: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, 0, fmt.Errorf("couldn't cut the torn end of the write-ahead log: %w", err)
		}
		return recs, next, nil
	}
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return recs, next, nil
			}
			if err == io.ErrUnexpectedEOF {
				return torn("a record header is cut short")
			}
			return nil, 0, fmt.Errorf("couldn't read write-ahead log segment: %w", err)
		}
		if hdr == ([walHeaderBytes]byte{}) {
			// The zeros the newest segment was filled with: no record
			// that was acknowledged follows them. A closed segment was
			// cut to its records, so elsewhere they are corruption.
			return torn("the records end in zeros")
		}
		n := binary.BigEndian.Uint32(hdr[0:4])
		sum := binary.BigEndian.Uint32(hdr[4:8])
		index := binary.BigEndian.Uint64(hdr[8:16])
		if n > MaxEntrySize {
			return torn(fmt.Sprintf("a record claims %d bytes, over the limit of %d", n, MaxEntrySize))
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return torn("a record is cut short")
			}
			return nil, 0, fmt.Errorf("couldn't read write-ahead log segment: %w", err)
		}
		if recordSum(hdr[8:16], data) != sum {
			return torn("a record's checksum does not match")
		}
		if index != next {
			return nil, 0, fmt.Errorf("%w: segment %s holds index %d where %d belongs", errWALCorrupt, filepath.Base(seg.path), index, next)
		}
		recs = append(recs, walRecord{index: index, data: data})
		next++
		good += walHeaderBytes + int64(n)
	}
}

func recordSum(index, data []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, index), castagnoli, data)
}

// startSegment closes the segment being written, if any, and creates the
// one whose first record will have index first, syncing the directory so
// that the new file survives a crash.
func (w *wal) startSegment(first uint64) error {
	path := filepath.Join(w.dir, fmt.Sprintf("%020d%s", first, walSuffix))
	if w.f != nil {
		if w.first == first {
			return nil // nothing written to it yet
		}
		if err := w.cut(); err != nil {
			return err
		}
		if err := w.f.Close(); err != nil {
			return fmt.Errorf("couldn't close write-ahead log segment: %w", err)
		}
		w.mu.Lock()
		w.older = append(w.older, walSegment{path: w.f.Name(), first: w.first, end: first})
		w.mu.Unlock()
		w.f = nil
	}
	// A segment of that name left by an earlier run holds no record the
	// tree lacks (openWAL kept what it had): start it afresh.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("couldn't create write-ahead log segment: %w", err)
	}
	if err := syncDirectory(w.dir); err != nil {
		_ = f.Close()
		return err
	}
	w.mu.Lock()
	w.older = slices.DeleteFunc(w.older, func(s walSegment) bool { return s.path == path })
	w.mu.Unlock()
	w.f, w.first, w.size, w.alloc = f, first, 0, 0
	return nil
}

// cut cuts the zeros past the records of f, durably: a closed segment
// holds records only (readSegment refuses zeros in any other than the
// newest).
func (w *wal) cut() error {
	if err := w.f.Truncate(w.size); err != nil {
		return fmt.Errorf("couldn't cut a write-ahead log segment to its records: %w", err)
	}
	if err := fdatasync(w.f); err != nil {
		return fmt.Errorf("couldn't cut a write-ahead log segment to its records: %w", err)
	}
	return nil
}

// extend fills f with zeros from what was filled before up to at least
// end, in steps of walExtendBytes. The zeros are synced with the records
// written next.
func (w *wal) extend(end int64) error {
	to := (end/walExtendBytes + 1) * walExtendBytes
	for off := w.alloc; off < to; {
		n, err := w.f.WriteAt(zeros[:min(int64(len(zeros)), to-off)], off)
		if err != nil {
			return fmt.Errorf("couldn't fill the write-ahead log segment ahead of its records: %w", err)
		}
		off += int64(n)
	}
	w.alloc = to
	return nil
}

// append writes records, which continue the log, and syncs them. Once it
// returns nil they survive a crash. Any error leaves the segment in an
// unknown state: the caller must stop writing.
func (w *wal) append(recs []walRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if w.size >= walSegmentBytes {
		if err := w.startSegment(recs[0].index); err != nil {
			return err
		}
	}
	b := w.buf[:0]
	for _, r := range recs {
		var hdr [walHeaderBytes]byte
		binary.BigEndian.PutUint32(hdr[0:4], uint32(len(r.data)))
		binary.BigEndian.PutUint64(hdr[8:16], r.index)
		binary.BigEndian.PutUint32(hdr[4:8], recordSum(hdr[8:16], r.data))
		b = append(b, hdr[:]...)
		b = append(b, r.data...)
	}
	if cap(b) <= 4<<20 {
		w.buf = b[:0]
	} else {
		w.buf = nil
	}
	if end := w.size + int64(len(b)); end > w.alloc {
		if err := w.extend(end); err != nil {
			return err
		}
	}
	if _, err := w.f.WriteAt(b, w.size); err != nil {
		return fmt.Errorf("couldn't write to the write-ahead log: %w", err)
	}
	if err := fdatasync(w.f); err != nil {
		return fmt.Errorf("couldn't sync the write-ahead log: %w", err)
	}
	w.size += int64(len(b))
	return nil
}

// release deletes the closed segments whose every record has an index
// below size: the tree holds them. A deletion that fails is retried at the
// next release, and one that a crash undoes is redone at the next open.
func (w *wal) release(size uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	w.older = slices.DeleteFunc(w.older, func(s walSegment) bool {
		if s.end > size {
			return false
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			return false
		}
		return true
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("couldn't delete integrated write-ahead log segments: %w", err)
	}
	return nil
}

// close closes the segment being written.
func (w *wal) close() error {
	if w.f == nil {
		return nil
	}
	err := errors.Join(w.cut(), w.f.Close())
	w.f = nil
	if err != nil {
		return fmt.Errorf("couldn't close write-ahead log segment: %w", err)
	}
	return nil
}

// syncDirectory fsyncs a directory, making the creation of files in it
// durable.
func syncDirectory(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("couldn't open directory to sync it: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("couldn't sync directory %s: %w", dir, err)
	}
	return nil
}
