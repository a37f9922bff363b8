package tlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeWAL writes records [first, first+n) of leaf data to a new segment
// of the write-ahead log in dir, as the committer does, in batches of
// batch. It neither reads nor deletes other segments.
func writeWAL(t *testing.T, dir string, first uint64, n, batch int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &wal{dir: dir}
	if err := w.startSegment(first); err != nil {
		t.Fatal(err)
	}
	defer w.close()
	for i := 0; i < n; i += batch {
		var recs []walRecord
		for j := i; j < min(i+batch, n); j++ {
			idx := first + uint64(j)
			recs = append(recs, walRecord{index: idx, data: leaf(int(idx))})
		}
		if err := w.append(recs); err != nil {
			t.Fatal(err)
		}
	}
}

func segmentsIn(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+walSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestWALReadsBack(t *testing.T) {
	dir := t.TempDir()
	writeWAL(t, dir, 0, 100, 7)
	for _, from := range []uint64{0, 1, 57, 100, 150} {
		w, recs, held, err := openWAL(dir, from)
		if err != nil {
			t.Fatalf("from %d: %v", from, err)
		}
		want := max(0, 100-int(from))
		if len(recs) != want {
			t.Fatalf("from %d: got %d records, want %d", from, len(recs), want)
		}
		for i, r := range recs {
			if r.index != from+uint64(i) || !bytes.Equal(r.data, leaf(int(r.index))) {
				t.Fatalf("from %d: record %d is index %d %q", from, i, r.index, r.data)
			}
		}
		if len(held) != int(min(from, 100)) {
			t.Errorf("from %d: got %d digests below it, want %d", from, len(held), min(from, 100))
		}
		w.close()
		if from >= 100 {
			break // the segments below from were deleted
		}
	}
}

// TestWALTornEnd cuts the newest segment at every byte of its last record,
// with and without the zeros it was filled with after the cut: each time
// the records before it are read back and the torn end is cut off, so that
// the next record written reads back too.
func TestWALTornEnd(t *testing.T) {
	base := t.TempDir()
	writeWAL(t, base, 0, 3, 1)
	seg := segmentsIn(t, base)[0]
	full, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for i := range 3 {
		used += walHeaderBytes + len(leaf(i))
	}
	if len(full) != used {
		t.Fatalf("got a closed segment of %d bytes, want its %d bytes of records only", len(full), used)
	}
	lastLen := walHeaderBytes + len(leaf(2))
	for cut := used - lastLen; cut < used; cut++ {
		for _, filled := range []bool{false, true} {
			dir := t.TempDir()
			torn := full[:cut:cut]
			if filled {
				torn = append(torn, make([]byte, 4096)...)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(seg)), torn, 0o644); err != nil {
				t.Fatal(err)
			}
			w, recs, _, err := openWAL(dir, 0)
			if err != nil {
				t.Fatalf("cut at %d (filled %v): %v", cut, filled, err)
			}
			if len(recs) != 2 {
				t.Fatalf("cut at %d (filled %v): got %d records, want 2", cut, filled, len(recs))
			}
			// The torn end and the zeros are cut off: the segment, older
			// from now on, holds records only.
			fi, err := os.Stat(filepath.Join(dir, filepath.Base(seg)))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != int64(used-lastLen) {
				t.Fatalf("cut at %d (filled %v): the old segment is left with %d bytes, want %d", cut, filled, fi.Size(), used-lastLen)
			}
			if err := w.append([]walRecord{{index: 2, data: []byte("again")}}); err != nil {
				t.Fatal(err)
			}
			w.close()
			_, recs, _, err = openWAL(dir, 0)
			if err != nil || len(recs) != 3 || string(recs[2].data) != "again" {
				t.Fatalf("cut at %d (filled %v), after writing again: %d records, %v", cut, filled, len(recs), err)
			}
		}
	}
}

// TestWALZeroHeaderIsNoRecord checks that no record has a header of zeros,
// which ends the records of a segment: that would take index 0, no data
// and a checksum of zero.
func TestWALZeroHeaderIsNoRecord(t *testing.T) {
	if sum := recordSum(make([]byte, 8), nil); sum == 0 {
		t.Fatalf("got checksum %#x for index 0 and no data, want it non-zero", sum)
	}
}

// TestWALFillsAhead writes past the zeros a segment was filled with, and
// checks that the segment stays filled ahead, that closing it cuts the
// zeros, and that every record reads back.
func TestWALFillsAhead(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("y"), 60<<10)
	w, _, _, err := openWAL(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 2*walExtendBytes/len(big) + 3
	for i := range n {
		if err := w.append([]walRecord{{index: uint64(i), data: big}}); err != nil {
			t.Fatal(err)
		}
		if w.alloc <= w.size {
			t.Fatalf("after record %d: filled %d bytes, want more than the %d of records", i, w.alloc, w.size)
		}
	}
	size := w.size
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(segmentsIn(t, dir)[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != size {
		t.Fatalf("got a closed segment of %d bytes, want its %d bytes of records only", fi.Size(), size)
	}
	_, recs, _, err := openWAL(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("got %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if r.index != uint64(i) || !bytes.Equal(r.data, big) {
			t.Fatalf("record %d is index %d of %d bytes", i, r.index, len(r.data))
		}
	}
}

func TestWALCorruption(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		from  uint64
		want  string
	}{
		{
			name: "bad checksum in an older segment",
			setup: func(t *testing.T, dir string) {
				writeWAL(t, dir, 0, 3, 3)
				flipByte(t, segmentsIn(t, dir)[0], walHeaderBytes+1)
				writeWAL(t, dir, 3, 3, 3)
			},
			want: "checksum",
		},
		{
			name: "zeros in an older segment",
			setup: func(t *testing.T, dir string) {
				writeWAL(t, dir, 0, 3, 3)
				f, err := os.OpenFile(segmentsIn(t, dir)[0], os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.Write(make([]byte, 4096)); err != nil {
					t.Fatal(err)
				}
				f.Close()
				writeWAL(t, dir, 3, 3, 3)
			},
			want: "end in zeros",
		},
		{
			name: "gap between segments",
			setup: func(t *testing.T, dir string) {
				writeWAL(t, dir, 0, 3, 3)
				writeWAL(t, dir, 5, 3, 3)
			},
			want: "resumes at index 5, want 3",
		},
		{
			name: "log starts above the tree",
			setup: func(t *testing.T, dir string) {
				writeWAL(t, dir, 10, 3, 3)
			},
			from: 4,
			want: "resumes at index 10, want 4",
		},
		{
			name: "record out of place",
			setup: func(t *testing.T, dir string) {
				writeWAL(t, dir, 0, 3, 3)
				seg := segmentsIn(t, dir)[0]
				if err := os.Rename(seg, filepath.Join(dir, fmt.Sprintf("%020d%s", 1, walSuffix))); err != nil {
					t.Fatal(err)
				}
				writeWAL(t, dir, 3, 1, 1)
			},
			want: "holds index 0 where 1 belongs",
		},
		{
			name: "stray file",
			setup: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "x"+walSuffix), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: "unexpected file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			_, _, _, err := openWAL(dir, tt.from)
			if !errors.Is(err, errWALCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want corruption: %q", err, tt.want)
			}
		})
	}
}

func flipByte(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWALReleases rotates segments and checks that release deletes those
// the tree holds entirely, and no other.
func TestWALReleases(t *testing.T) {
	defer func(old int64) { walSegmentBytes = old }(walSegmentBytes)
	walSegmentBytes = 10 << 10
	dir := t.TempDir()
	w, _, _, err := openWAL(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	big := bytes.Repeat([]byte("x"), 1000)
	per := int(walSegmentBytes)/(walHeaderBytes+len(big)) + 1 // records that fill a segment
	for i := range 2 * per {
		if err := w.append([]walRecord{{index: uint64(i), data: big}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(segmentsIn(t, dir)); got != 2 {
		t.Fatalf("got %d segments, want 2", got)
	}
	if err := w.release(uint64(per) - 1); err != nil {
		t.Fatal(err)
	}
	if got := len(segmentsIn(t, dir)); got != 2 {
		t.Fatalf("after releasing part of the first segment: %d segments, want 2", got)
	}
	if err := w.release(uint64(per)); err != nil {
		t.Fatal(err)
	}
	if got := segmentsIn(t, dir); len(got) != 1 || !strings.HasSuffix(got[0], fmt.Sprintf("%020d%s", per, walSuffix)) {
		t.Fatalf("after releasing the first segment: %v", got)
	}
}

// TestLogIntegratesWALOnOpen leaves entries in the write-ahead log that the
// tree lacks (as a crash between the two writes does) and checks that the
// log reads them, integrates them and publishes them when it opens.
func TestLogIntegratesWALOnOpen(t *testing.T) {
	s, v := testKey(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, s)
	l := openLog(t, cfg)
	appendAll(t, l, leaves(0, 10))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	writeWAL(t, filepath.Join(dir, walDirName), 10, 20, 3)

	l = openLog(t, cfg)
	if size, _ := l.DurableSize(t.Context()); size != 30 {
		t.Fatalf("durable size after open: %d, want 30", size)
	}
	got, err := l.Entries(t.Context(), 0, 30)
	if err != nil || len(got) != 30 {
		t.Fatalf("Entries: %d, %v", len(got), err)
	}
	if !bytes.Equal(got[29], leaf(29)) {
		t.Errorf("entry 29: %q", got[29])
	}
	published(t, l, v, 30)
	if i, err := l.Append(t.Context(), leaf(30)); err != nil || i != 30 {
		t.Fatalf("Append after open: %d, %v, want index 30", i, err)
	}
}

// TestLogRefusesMisplacedTree plants an entry in the write-ahead log that
// differs from the tree's at the same index: the log must refuse to open.
func TestLogRefusesMisplacedTree(t *testing.T) {
	s, _ := testKey(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, s)
	l := openLog(t, cfg)
	appendAll(t, l, leaves(0, 5))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The only segment: from 3, holding other bytes than the tree's entry 3.
	wdir := filepath.Join(dir, walDirName)
	if err := os.RemoveAll(wdir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(wdir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &wal{dir: wdir}
	if err := w.startSegment(3); err != nil {
		t.Fatal(err)
	}
	if err := w.append([]walRecord{{3, []byte("other")}, {4, leaf(4)}}); err != nil {
		t.Fatal(err)
	}
	w.close()
	_, err := Open(t.Context(), cfg)
	if !errors.Is(err, errMisplaced) || !strings.Contains(err.Error(), "index 3") {
		t.Fatalf("Open: got %v, want the tree and write-ahead log to disagree at index 3", err)
	}
}

// TestLogSurvivesKill appends entries in a child process that kills itself
// (SIGKILL, no Close) as soon as they are acknowledged; every acknowledged
// entry must be in the log, at its index, when it opens again.
func TestLogSurvivesKill(t *testing.T) {
	if dir := os.Getenv("TLOG_KILL_CHILD"); dir != "" {
		killChild(t, dir)
		return
	}
	dir := t.TempDir()
	skey, _, err := GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run", "^TestLogSurvivesKill$")
	cmd.Env = append(os.Environ(), "TLOG_KILL_CHILD="+dir, "TLOG_KILL_SKEY="+skey)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: got %v, want it killed; output:\n%s", err, out)
	}
	acked := map[uint64]string{}
	for line := range strings.Lines(string(out)) {
		idx, data, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		i, err := strconv.ParseUint(idx, 10, 64)
		if err != nil {
			continue
		}
		acked[i] = data
	}
	if len(acked) < 200 {
		t.Fatalf("child acknowledged %d entries, want 200; output:\n%s", len(acked), out)
	}

	s, v, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := openLog(t, testConfig(t, dir, s))
	size, _ := l.DurableSize(t.Context())
	got, err := l.Entries(t.Context(), 0, int(size))
	if err != nil {
		t.Fatal(err)
	}
	for i, data := range acked {
		if i >= uint64(len(got)) || string(got[i]) != data {
			t.Fatalf("acknowledged entry %d (%q) is not in the reopened log of %d entries", i, data, len(got))
		}
	}
	published(t, l, v, size)
}

// killChild is the child of TestLogSurvivesKill: it appends 200 entries
// from 8 goroutines, prints each acknowledged index and entry, and kills
// itself while the tree is likely still behind.
func killChild(t *testing.T, dir string) {
	s, _, err := NewSigner(os.Getenv("TLOG_KILL_SKEY"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir, s)
	cfg.CheckpointInterval = time.Second
	l, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	type ack struct {
		i    uint64
		data string
	}
	acks := make(chan ack)
	for g := range 8 {
		go func() {
			for k := range 25 {
				data := fmt.Sprintf("entry-%d-%d", g, k)
				i, err := l.Append(t.Context(), []byte(data))
				if err != nil {
					panic(err)
				}
				acks <- ack{i, data}
			}
		}()
	}
	var b strings.Builder
	for range 200 {
		a := <-acks
		fmt.Fprintf(&b, "%d %s\n", a.i, a.data)
	}
	os.Stdout.WriteString(b.String())
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// TestEntriesWhileIntegrating reads the log while entries are appended and
// integrated, so that the race detector sees readers of entries not yet in
// the tree next to Tessera integrating them.
func TestEntriesWhileIntegrating(t *testing.T) {
	s, _ := testKey(t)
	l := openLog(t, testConfig(t, t.TempDir(), s))
	done := make(chan struct{})
	go func() {
		defer close(done)
		appendAll(t, l, leaves(0, 300))
	}()
	for {
		size, _ := l.DurableSize(t.Context())
		got, err := l.Entries(t.Context(), 0, int(size))
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(got)) != size {
			t.Fatalf("read %d entries of %d", len(got), size)
		}
		select {
		case <-done:
			return
		default:
		}
	}
}

// TestGatherFor checks how long a partial batch gathers: briefly after an
// idle spell, longer while batches follow each other.
func TestGatherFor(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const ms = time.Millisecond
	for _, tc := range []struct {
		name string
		last time.Time
		size int
		want time.Duration
	}{
		{"no batch yet", time.Time{}, 0, integrateGather},
		{"last batch long ago", now.Add(-time.Minute), 1, integrateGather},
		{"a large batch long ago", now.Add(-time.Minute), batchMaxSize, integrateGather},
		{"last batch just past the recent window", now.Add(-integrateGatherRecent), 1, integrateGather},
		{"last batch within the recent window", now.Add(-integrateGatherRecent + ms), 1, integrateGatherRecent},
		{"last batch just now", now, 1, integrateGatherRecent},
		{"a batch just below a stream's, just now", now, streamBatch - 1, integrateGatherRecent},
		{"a stream's batch just now", now, streamBatch, integrateGatherStream},
		{"a stream's batch within the stream window", now.Add(-integrateGatherStream + ms), streamBatch, integrateGatherStream},
		{"a stream's batch just past the stream window", now.Add(-integrateGatherStream), batchMaxSize, integrateGather},
		{"a small batch past the recent window", now.Add(-integrateGatherStream + ms), streamBatch - 1, integrateGather},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gatherFor(tc.last, tc.size, now); got != tc.want {
				t.Errorf("gatherFor(%v before, %d entries) = %v, want %v", now.Sub(tc.last), tc.size, got, tc.want)
			}
		})
	}
}
