package server

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier/rules"
)

// A list of findings can be longer than the log: a party silent for a long
// time owes a receipt for every entry of every other party, one finding
// each. Held as messages, two million findings took the node to about two
// gigabytes while a client paged through them. So a list is held in memory
// only while it is short; a longer one is sorted in runs of spillRun
// findings, each written to a file under the node's data directory, and
// the runs are merged into one file, read back page by page; on Linux the
// merge frees the runs' disk blocks as it reads them, so that the disk
// holds about one copy of the list. The node then holds a few runs' read
// buffers and an offset for every listMark-th finding, whatever the length
// of the list.
//
// The files are unlinked as soon as they are created, so that nothing is
// left behind after a crash, and closed when the list they hold is no
// longer referenced (a page token's list can outlive the cache that made
// it, and readers of one list never wait for each other): by a cleanup the
// garbage collector runs, at the latest about two minutes later, since the
// runtime collects at least that often.

const (
	// spillRun is how many findings a list holds in memory at most; a
	// longer list is written to a file in sorted runs of this length.
	spillRun = 1 << 15
	// listMark is how many findings apart the offsets of a spilled list
	// are kept: a page starting anywhere skips fewer than listMark
	// findings' bytes before its first.
	listMark = 256
	// listBuffer is the read and write buffer of a list's file, and of
	// each run while they are merged.
	listBuffer = 64 << 10
	// punchStep is how far the merge reads into a run before it frees the
	// disk blocks read (punch), so that the runs and the list they are
	// merged into take about the list's size on disk, not twice it.
	punchStep = 1 << 20
)

// spillRunSet, when set (by a test), replaces spillRun for the nodes
// made while it is.
var spillRunSet atomic.Int64

// findingsList is the sorted findings of one evaluation, in memory (mem)
// or in a file. It does not change once made, and any number of
// goroutines may read it at once.
type findingsList struct {
	n    int
	mem  []*parleyv1.Finding // the whole list, when it is held in memory
	file *os.File            // the list, when it was spilled (see spillFile)
	// marks[k] is the file offset of finding k*listMark.
	marks []int64
	size  int64 // of the file
}

// Len returns how many findings the list holds.
func (l *findingsList) Len() int { return l.n }

// each calls fn with every finding from position from on, in order, until
// fn returns false. A spilled list's findings are decoded afresh for each
// call: fn may keep them.
func (l *findingsList) each(from int, fn func(i int, f *parleyv1.Finding) bool) error {
	c := l.cursor(from)
	for {
		i := c.i
		f, err := c.next()
		if err != nil || f == nil || !fn(i, f) {
			return err
		}
	}
}

// listCursor reads a findingsList in order.
type listCursor struct {
	l *findingsList
	i int           // position of the next finding
	r *recordReader // of a spilled list, at finding skip
	// skip is the position r is at, before i when the cursor started
	// between two marks.
	skip int
}

// cursor returns a cursor at position from (at the end if from is past
// it).
func (l *findingsList) cursor(from int) *listCursor {
	from = min(max(from, 0), l.n)
	c := &listCursor{l: l, i: from}
	if l.file != nil && from < l.n {
		k := from / listMark
		c.r = newRecordReader(io.NewSectionReader(l.file, l.marks[k], l.size-l.marks[k]))
		c.skip = k * listMark
	}
	return c
}

// next returns the finding at the cursor and moves past it; nil at the
// end of the list.
func (c *listCursor) next() (*parleyv1.Finding, error) {
	l := c.l
	if c.i >= l.n {
		return nil, nil
	}
	if l.file == nil {
		c.i++
		return l.mem[c.i-1], nil
	}
	for {
		raw, err := c.r.next()
		if err != nil {
			return nil, fmt.Errorf("couldn't read finding %d of %d from the spilled list: %w", c.skip, l.n, err)
		}
		c.skip++
		if c.skip <= c.i {
			continue
		}
		f := new(parleyv1.Finding)
		if err := proto.Unmarshal(raw, f); err != nil {
			return nil, fmt.Errorf("spilled finding %d does not decode: %w", c.i, err)
		}
		c.i++
		runtime.KeepAlive(l) // its file stays open until the last read
		return f, nil
	}
}

// eachNew calls fn with every finding of cur that prev does not hold, in
// order, each once, until fn returns an error; with every finding of cur if
// prev is nil. Both lists are in the one order (rules.CompareFindings),
// so this reads each once, side by side, and holds two findings: a
// subscriber is sent what is new in each list without the node keeping
// what it sent.
func eachNew(prev, cur *findingsList, fn func(*parleyv1.Finding) error) error {
	if prev == nil {
		prev = &findingsList{} // holds nothing
	}
	p := prev.cursor(0)
	pf, err := p.next()
	if err != nil {
		return err
	}
	var last *parleyv1.Finding
	c := cur.cursor(0)
	for {
		f, err := c.next()
		if err != nil || f == nil {
			return err
		}
		if last != nil && rules.CompareFindings(last, f) == 0 {
			continue // the same finding twice in one list goes once
		}
		last = f
		for pf != nil && rules.CompareFindings(pf, f) < 0 {
			if pf, err = p.next(); err != nil {
				return err
			}
		}
		if pf != nil && rules.CompareFindings(pf, f) == 0 {
			continue
		}
		if err := fn(f); err != nil {
			return err
		}
	}
}

// listBuilder gathers the findings of an evaluation, in any order, into a
// findingsList sorted by rules.CompareFindings. It is not safe for
// concurrent use.
type listBuilder struct {
	dir   string // where spilled runs and lists go
	run   int    // findings held in memory at most (spillRun)
	punch int64  // punchStep
	buf   []*parleyv1.Finding
	// runs are the sorted runs written so far, each an unlinked file.
	runs []*os.File
	n    int
	err  error // the first spill's error; add then only counts
}

// newListBuilder returns a builder that holds up to run findings in
// memory and spills under dir.
func newListBuilder(dir string, run int) *listBuilder {
	return &listBuilder{dir: dir, run: run, punch: punchStep}
}

// add adds f. Past the run length, the findings held are sorted and
// written out as a run.
func (b *listBuilder) add(f *parleyv1.Finding) {
	b.n++
	if b.err != nil {
		return
	}
	b.buf = append(b.buf, f)
	if len(b.buf) < b.run {
		return
	}
	if err := b.spill(); err != nil {
		b.err = err
		b.buf = nil
	}
}

// spill writes the findings held, sorted, as a new run.
func (b *listBuilder) spill() error {
	slices.SortFunc(b.buf, rules.CompareFindings)
	f, err := spillFile(b.dir)
	if err != nil {
		return err
	}
	b.runs = append(b.runs, f)
	w := newRecordWriter(f)
	for _, fd := range b.buf {
		if err := w.write(mustMarshal(fd)); err != nil {
			return fmt.Errorf("couldn't write a run of findings: %w", err)
		}
	}
	clear(b.buf)
	b.buf = b.buf[:0]
	if err := w.flush(); err != nil {
		return fmt.Errorf("couldn't write a run of findings: %w", err)
	}
	return nil
}

// finish returns the list. A list that never reached the run length is
// sorted in memory; otherwise the runs are merged into one file.
func (b *listBuilder) finish() (*findingsList, error) {
	if b.err != nil {
		b.close()
		return nil, b.err
	}
	if len(b.runs) == 0 {
		slices.SortFunc(b.buf, rules.CompareFindings)
		l := &findingsList{n: len(b.buf), mem: b.buf}
		b.buf = nil
		return l, nil
	}
	defer b.close()
	if len(b.buf) > 0 {
		if err := b.spill(); err != nil {
			return nil, err
		}
	}
	return b.merge()
}

// close closes the runs.
func (b *listBuilder) close() {
	for _, f := range b.runs {
		_ = f.Close()
	}
	b.runs = nil
}

// merge merges the sorted runs into one spilled list.
func (b *listBuilder) merge() (*findingsList, error) {
	out, err := spillFile(b.dir)
	if err != nil {
		return nil, err
	}
	l := &findingsList{n: b.n, file: out, marks: make([]int64, 0, b.n/listMark+1)}
	// The file is closed when the list is no longer referenced, or here
	// if the merge fails.
	ok := false
	defer func() {
		if !ok {
			_ = out.Close()
		}
	}()
	h := make(runHeap, 0, len(b.runs))
	for _, f := range b.runs {
		c := &runCursor{f: f, src: &countingReader{r: io.NewSectionReader(f, 0, 1<<62)}}
		c.r = newRecordReader(c.src)
		if err := c.advance(); err != nil {
			return nil, err
		}
		if c.cur != nil {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	w := newRecordWriter(out)
	written := 0
	for ; len(h) > 0; written++ {
		c := h[0]
		if written%listMark == 0 {
			l.marks = append(l.marks, w.off)
		}
		if err := w.write(c.raw); err != nil {
			return nil, fmt.Errorf("couldn't write the list of findings: %w", err)
		}
		if err := c.advance(); err != nil {
			return nil, err
		}
		c.release(b.punch)
		if c.cur == nil {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
	if err := w.flush(); err != nil {
		return nil, fmt.Errorf("couldn't write the list of findings: %w", err)
	}
	if written != b.n {
		return nil, fmt.Errorf("the runs of findings hold %d findings, not the %d gathered", written, b.n)
	}
	l.size = w.off
	ok = true
	runtime.AddCleanup(l, func(f *os.File) { _ = f.Close() }, out)
	return l, nil
}

// spillFile creates a file under dir for a run or list of findings and
// unlinks it at once: it lives as long as it is open.
func spillFile(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "findings-*")
	if err != nil {
		return nil, fmt.Errorf("couldn't create a file for a long list of findings: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("couldn't unlink the file of a long list of findings: %w", err)
	}
	return f, nil
}

// runCursor is a run being merged: its current finding, decoded for the
// comparison, and its bytes.
type runCursor struct {
	f   *os.File
	src *countingReader // what was read of f
	r   *recordReader   // over src
	raw []byte
	cur *parleyv1.Finding // nil at the end of the run
	// freed is how much of f was punched; noPunch is set once punching
	// failed (a filesystem without it).
	freed   int64
	noPunch bool
}

// release frees the disk blocks of the part of the run read from the file
// (what the reader buffers is a copy), once that is step bytes more than
// was freed before.
func (c *runCursor) release(step int64) {
	done := c.src.n - c.src.n%4096
	if c.noPunch || done-c.freed < step {
		return
	}
	if err := punch(c.f, done); err != nil {
		c.noPunch = true
		return
	}
	c.freed = done
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// advance moves c to the next finding of its run.
func (c *runCursor) advance() error {
	raw, err := c.r.next()
	if errors.Is(err, io.EOF) {
		c.raw, c.cur = nil, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("couldn't read a run of findings: %w", err)
	}
	f := new(parleyv1.Finding)
	if err := proto.Unmarshal(raw, f); err != nil {
		return fmt.Errorf("a run's finding does not decode: %w", err)
	}
	c.raw, c.cur = raw, f
	return nil
}

// runHeap orders the runs being merged by their current findings.
type runHeap []*runCursor

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return rules.CompareFindings(h[i].cur, h[j].cur) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runCursor)) }
func (h *runHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// A spilled file is a sequence of records, each a uvarint length and that
// many bytes (a deterministically marshalled Finding).

// recordWriter writes records through a buffer and counts the offset.
type recordWriter struct {
	w   *bufio.Writer
	off int64
	hdr [binary.MaxVarintLen64]byte
}

func newRecordWriter(w io.Writer) *recordWriter {
	return &recordWriter{w: bufio.NewWriterSize(w, listBuffer)}
}

func (w *recordWriter) write(rec []byte) error {
	n := binary.PutUvarint(w.hdr[:], uint64(len(rec)))
	if _, err := w.w.Write(w.hdr[:n]); err != nil {
		return err
	}
	if _, err := w.w.Write(rec); err != nil {
		return err
	}
	w.off += int64(n + len(rec))
	return nil
}

func (w *recordWriter) flush() error { return w.w.Flush() }

// recordReader reads records; each record's bytes are valid until the
// next call.
type recordReader struct {
	r   *bufio.Reader
	buf []byte
}

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{r: bufio.NewReaderSize(r, listBuffer)}
}

// maxRecord bounds a record's length: a finding names at most 20 entries
// and a few lines of text.
const maxRecord = 1 << 20

// next returns the next record, or io.EOF at a clean end.
func (r *recordReader) next() ([]byte, error) {
	n, err := binary.ReadUvarint(r.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, err
	}
	if n > maxRecord {
		return nil, fmt.Errorf("record of %d bytes, more than the %d a finding takes", n, maxRecord)
	}
	if uint64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		return nil, fmt.Errorf("record cut short: %w", err)
	}
	return r.buf, nil
}
