package mediator

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/transparency-dev/merkle/proof"
)

// mirrorEntries returns n distinct envelopes-to-be of varied sizes.
func mirrorEntries(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte(fmt.Sprintf("entry %d;", i)), 1+i%7)
	}
	return out
}

// checkMirror checks every root, some inclusion and consistency proofs,
// and the entries of ml against raws.
func checkMirror(t *testing.T, ml *MirrorLog, raws [][]byte) {
	t.Helper()
	if got := ml.Size(); got != uint64(len(raws)) {
		t.Fatalf("Size: got %d, want %d", got, len(raws))
	}
	leaves := hashLeaves(raws)
	for size := range uint64(len(raws)) + 1 {
		want, err := rootOf(leaves[:size])
		if err != nil {
			t.Fatal(err)
		}
		got, err := ml.RootAt(size)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("RootAt(%d): got %x, %v, want %x", size, got, err, want)
		}
		if size == 0 || size%37 != 0 && size%256 > 2 && size != uint64(len(raws)) {
			continue
		}
		for _, i := range []uint64{0, size / 3, size - 1} {
			p, err := ml.InclusionProof(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(hasher, i, size, leaves[i], p, want); err != nil {
				t.Errorf("inclusion of %d in %d: %v", i, size, err)
			}
		}
		for _, from := range []uint64{1, size / 2, size - 1} {
			if from == 0 {
				continue
			}
			p, err := ml.ConsistencyProof(from, size)
			if err != nil {
				t.Fatal(err)
			}
			old, _ := rootOf(leaves[:from])
			if err := proof.VerifyConsistency(hasher, from, size, p, old, want); err != nil {
				t.Errorf("consistency %d to %d: %v", from, size, err)
			}
		}
	}
	got, err := ml.Entries(0, uint64(len(raws)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range raws {
		if !bytes.Equal(got[i], raws[i]) {
			t.Fatalf("entry %d: got %q, want %q", i, got[i], raws[i])
		}
	}
	if len(raws) > 10 {
		if got, err := ml.Entries(5, 3); err != nil || len(got) != 3 || !bytes.Equal(got[2], raws[7]) {
			t.Errorf("Entries(5, 3): got %d entries, %v", len(got), err)
		}
		if h, err := ml.LeafHash(9); err != nil || !bytes.Equal(h, leaves[9]) {
			t.Errorf("LeafHash(9): got %x, %v, want %x", h, err, leaves[9])
		}
	}
	more := mirrorEntries(3)
	want, _ := rootOf(append(leaves[:len(leaves):len(leaves)], hashLeaves(more)...))
	for range 2 { // RootWith leaves the mirror as it was
		if got, err := ml.RootWith(hashLeaves(more)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("RootWith: got %x, %v, want %x", got, err, want)
		}
	}
	if got, _ := ml.RootAt(ml.Size()); len(raws) > 0 {
		if want, _ := rootOf(leaves); !bytes.Equal(got, want) {
			t.Errorf("RootAt after RootWith: got %x, want %x", got, want)
		}
	}
}

func TestMirrorLog(t *testing.T) {
	dir := t.TempDir()
	raws := mirrorEntries(700)
	ml, err := OpenMirrorLog(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(raws); {
		n := min(1+i%97, len(raws)-i)
		if err := ml.Append(raws[i : i+n]); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	checkMirror(t, ml, raws)
	if err := ml.Close(); err != nil {
		t.Fatal(err)
	}

	leaves := filepath.Join(dir, leavesFile)
	good, err := os.ReadFile(leaves)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		damage   func()
		writable bool
	}{
		{"intact", func() {}, true},
		{"intact, read-only", func() {}, false},
		{"torn leaves", func() { os.WriteFile(leaves, good[:len(good)-leafRecord-7], 0o644) }, true},
		{"damaged leaves", func() {
			b := bytes.Clone(good)
			b[300*leafRecord+20] ^= 1
			os.WriteFile(leaves, b, 0o644)
		}, true},
		{"no leaves", func() { os.Remove(leaves) }, true},
		{"longer leaves", func() { os.WriteFile(leaves, append(bytes.Clone(good), good[:2*leafRecord]...), 0o644) }, true},
		{"damaged leaves, read-only", func() {
			b := bytes.Clone(good)
			b[600*leafRecord+3] ^= 1
			os.WriteFile(leaves, b, 0o644)
		}, false},
		{"no leaves, read-only", func() { os.Remove(leaves) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.damage()
			before, _ := os.ReadFile(leaves)
			ml, err := OpenMirrorLog(dir, tc.writable)
			if err != nil {
				t.Fatal(err)
			}
			checkMirror(t, ml, raws)
			if err := ml.Close(); err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(leaves)
			switch {
			case tc.writable && !bytes.Equal(after, good):
				t.Errorf("leaves file not repaired: %d bytes, want %d", len(after), len(good))
			case !tc.writable && !bytes.Equal(after, before):
				t.Errorf("read-only open changed the leaves file")
			}
			os.WriteFile(leaves, good, 0o644)
		})
	}

	// A torn entry at the end is dropped when opened for writing.
	f, err := os.OpenFile(filepath.Join(dir, entriesFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 1, 0, 'x'})
	f.Close()
	ml, err = OpenMirrorLog(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Close()
	checkMirror(t, ml, raws)
	extra := mirrorEntries(300)[290:]
	if err := ml.Append(extra); err != nil {
		t.Fatal(err)
	}
	checkMirror(t, ml, append(raws, extra...))
}

// TestMirrorStateIsConsistent reads the mirror's checkpoint and size while
// a sync appends batches with their checkpoints: every read sees a
// checkpoint that matches the entries (here, one naming their number).
func TestMirrorStateIsConsistent(t *testing.T) {
	ml, err := OpenMirrorLog(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Close()
	const batches = 200
	done := make(chan error, 1)
	go func() {
		raws := mirrorEntries(batches * 3)
		for b := range batches {
			batch := raws[b*3 : b*3+3]
			if err := ml.appendCheckpointed(batch, hashLeaves(batch), []byte(fmt.Sprint(b*3+3))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for reads := 0; ; reads++ {
		cp, size := ml.State()
		if size > 0 && string(cp) != fmt.Sprint(size) {
			t.Fatalf("read %d: checkpoint %q with %d entries", reads, cp, size)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if cp, size := ml.State(); size != batches*3 || string(cp) != fmt.Sprint(size) {
				t.Fatalf("at the end: checkpoint %q with %d entries, want %d", cp, size, batches*3)
			}
			return
		default:
		}
	}
}
