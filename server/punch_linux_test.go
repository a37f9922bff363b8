package server

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPunch frees the blocks of a file's first half: the file keeps its
// size, takes about half the disk, its first half reads as zeros and its
// second half as written.
func TestPunch(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "punch")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 4 << 20
	data := bytes.Repeat([]byte("parley!\n"), size/8)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	blocks := func() int64 {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	before := blocks()
	if err := punch(f, size/2); err != nil {
		t.Skipf("this filesystem does not punch holes: %v", err)
	}
	after := blocks()
	if before < size || after > before-size/2+64<<10 {
		t.Fatalf("%d bytes on disk before, %d after punching %d; want about %d less", before, after, size/2, size/2)
	}
	got, err := io.ReadAll(io.NewSectionReader(f, 0, size+1))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != size || !bytes.Equal(got[:size/2], make([]byte, size/2)) || !bytes.Equal(got[size/2:], data[size/2:]) {
		t.Fatalf("after punching: %d bytes; want %d, zeros then the data", len(got), size)
	}
}

// TestSpilledListClosed drops a spilled list and collects garbage: its
// file, unlinked since it was made, is closed, so that the disk it took is
// freed; a list still referenced keeps its file open.
func TestSpilledListClosed(t *testing.T) {
	build := func() (*findingsList, string) {
		b := newListBuilder(t.TempDir(), 4)
		for _, f := range randomFindings(rand.New(rand.NewPCG(13, 14)), 20) {
			b.add(f)
		}
		l, err := b.finish()
		if err != nil {
			t.Fatal(err)
		}
		return l, fmt.Sprintf("/proc/self/fd/%d", l.file.Fd())
	}
	kept, keptFd := build()
	target := func(fd string) string { s, _ := os.Readlink(fd); return s }
	keptName := target(keptFd)
	_, fd := build() // dropped at once
	name := target(fd)
	if !strings.Contains(name, "findings-") || !strings.HasSuffix(name, "(deleted)") {
		t.Fatalf("the list's file is %q, want an unlinked findings file", name)
	}
	for i := 0; target(fd) == name; i++ {
		if i == 100 {
			t.Fatalf("the dropped list's file %s is still open after 100 collections", name)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if target(keptFd) != keptName {
		t.Fatalf("the kept list's file was closed: %s is now %q", keptFd, target(keptFd))
	}
	if _, err := kept.all(); err != nil {
		t.Fatal(err)
	}
}
