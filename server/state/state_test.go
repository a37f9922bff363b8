package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

func openStore(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func tempStore(t testing.TB) *Store {
	t.Helper()
	return openStore(t, filepath.Join(t.TempDir(), "state.db"))
}

func rec(sender string, seq, index uint64) Record {
	return Record{
		Sender:        sender,
		Seq:           seq,
		Digest:        sha256.Sum256(fmt.Appendf(nil, "%s/%d", sender, seq)),
		PayloadDigest: sha256.Sum256(fmt.Appendf(nil, "payload %s/%d", sender, seq)),
		Index:         index,
	}
}

func TestRecordHeadsLookup(t *testing.T) {
	s := tempStore(t)
	// alpha and bravo interleaved, bravo's seq 2 recorded before seq 1.
	batch := []Record{rec("alpha", 1, 0), rec("bravo", 2, 2), rec("alpha", 2, 1), rec("bravo", 1, 3)}
	if err := s.Record(batch); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		sender string
		want   Record
	}{
		{"alpha", rec("alpha", 2, 1)},
		{"bravo", rec("bravo", 2, 2)},
	} {
		t.Run("head "+tc.sender, func(t *testing.T) {
			h, ok, err := s.Head(tc.sender)
			if err != nil || !ok {
				t.Fatalf("Head: got %v, %v", ok, err)
			}
			want := Head{Seq: tc.want.Seq, Digest: tc.want.Digest, PayloadDigest: tc.want.PayloadDigest, Index: tc.want.Index}
			if h != want {
				t.Errorf("got %+v, want %+v", h, want)
			}
		})
	}
	if _, ok, err := s.Head("charlie"); ok || err != nil {
		t.Errorf("Head of unknown sender: got %v, %v, want false, nil", ok, err)
	}
	heads, err := s.Heads()
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 2 || heads["alpha"].Seq != 2 || heads["bravo"].Seq != 2 {
		t.Errorf("Heads: got %+v", heads)
	}

	for _, tc := range []struct {
		name   string
		sender string
		seq    uint64
		want   *Record
	}{
		{"alpha 1", "alpha", 1, &batch[0]},
		{"bravo 2", "bravo", 2, &batch[1]},
		{"bravo 1", "bravo", 1, &batch[3]},
		{"missing seq", "alpha", 3, nil},
		{"missing sender", "charlie", 1, nil},
		{"sender prefix", "alph", 1, nil},
	} {
		t.Run("lookup "+tc.name, func(t *testing.T) {
			ref, ok, err := s.Lookup(tc.sender, tc.seq)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if ok {
					t.Errorf("got %+v, want not found", ref)
				}
				return
			}
			want := Ref{Index: tc.want.Index, Digest: tc.want.Digest, PayloadDigest: tc.want.PayloadDigest}
			if !ok || ref != want {
				t.Errorf("got %+v, %v, want %+v", ref, ok, want)
			}
		})
	}
	if size, err := s.LogSize(); err != nil || size != 4 {
		t.Errorf("LogSize: got %d, %v, want 4", size, err)
	}
}

func TestRecordIdempotent(t *testing.T) {
	s := tempStore(t)
	batch := []Record{rec("alpha", 1, 0), rec("alpha", 2, 1)}
	for range 2 {
		if err := s.Record(batch); err != nil {
			t.Fatal(err)
		}
	}
	// The same envelope a second time in the log, at index 2.
	if err := s.Record([]Record{rec("alpha", 2, 2)}); err != nil {
		t.Fatal(err)
	}
	ref, _, err := s.Lookup("alpha", 2)
	if err != nil || ref.Index != 1 {
		t.Errorf("Lookup after duplicate: got index %d, %v, want the first, 1", ref.Index, err)
	}
	h, _, err := s.Head("alpha")
	if err != nil || h.Seq != 2 || h.Index != 1 {
		t.Errorf("Head after duplicate: got %+v, %v, want seq 2 at index 1", h, err)
	}
	if size, err := s.LogSize(); err != nil || size != 3 {
		t.Errorf("LogSize: got %d, %v, want 3", size, err)
	}
}

func TestRecordLogSizeOutOfOrder(t *testing.T) {
	s := tempStore(t)
	for _, tc := range []struct {
		batch []Record
		want  uint64
	}{
		{[]Record{rec("a", 1, 2)}, 0},
		{[]Record{rec("b", 1, 1)}, 0},
		{[]Record{rec("c", 1, 4)}, 0},
		{[]Record{rec("d", 1, 0)}, 3},
		{[]Record{rec("e", 1, 3)}, 5},
	} {
		if err := s.Record(tc.batch); err != nil {
			t.Fatal(err)
		}
		if size, err := s.LogSize(); err != nil || size != tc.want {
			t.Fatalf("after index %d: got LogSize %d, %v, want %d", tc.batch[0].Index, size, err, tc.want)
		}
	}
}

func TestRecordErrors(t *testing.T) {
	s := tempStore(t)
	if err := s.Record([]Record{rec("alpha", 1, 0)}); err != nil {
		t.Fatal(err)
	}
	conflicting := rec("alpha", 1, 5)
	conflicting.Digest[0] ^= 1

	for _, tc := range []struct {
		name  string
		batch []Record
		is    error
	}{
		{"empty sender", []Record{rec("", 1, 1)}, nil},
		{"nul in sender", []Record{rec("al\x00pha", 1, 1)}, nil},
		{"seq zero", []Record{rec("alpha", 0, 1)}, nil},
		{"conflict", []Record{rec("bravo", 1, 1), conflicting}, ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Record(tc.batch)
			if err == nil {
				t.Fatal("got nil error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("got %v, want %v", err, tc.is)
			}
		})
	}
	// The failed batch left nothing behind.
	if _, ok, _ := s.Lookup("bravo", 1); ok {
		t.Error("a failed batch was partly recorded")
	}
	var ce *ConflictError
	if err := s.Record([]Record{conflicting}); !errors.As(err, &ce) || ce.Recorded.Index != 0 || ce.Got.Index != 5 {
		t.Errorf("got %v, want a ConflictError between indexes 0 and 5", err)
	}
}

func TestCursorPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.Cursor("bravo"); err != nil || c != 0 {
		t.Errorf("unset cursor: got %d, %v, want 0", c, err)
	}
	if err := s.SetCursor("bravo", 42); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCursor("", 1); err == nil {
		t.Error("SetCursor of empty peer: got nil error")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, path)
	if c, err := s.Cursor("bravo"); err != nil || c != 42 {
		t.Errorf("cursor after reopen: got %d, %v, want 42", c, err)
	}
}

func TestEvidenceIdempotent(t *testing.T) {
	s := tempStore(t)
	for _, e := range []struct{ kind, key, data string }{
		{"equivocation", "k2", "second"},
		{"equivocation", "k1", "first"},
		{"equivocation", "k1", "other data, same key"},
		{"fork", "k1", "fork"},
	} {
		if err := s.AddEvidence(e.kind, e.key, []byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		kind string
		want []string
	}{
		{"equivocation", []string{"first", "second"}},
		{"fork", []string{"fork"}},
		{"none", nil},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			got, err := s.Evidence(tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			var gotS []string
			for _, g := range got {
				gotS = append(gotS, string(g))
			}
			if !slices.Equal(gotS, tc.want) {
				t.Errorf("got %q, want %q", gotS, tc.want)
			}
		})
	}
	if err := s.AddEvidence("", "k", nil); err == nil {
		t.Error("AddEvidence with empty kind: got nil error")
	}
}

func TestPeerCheckpoint(t *testing.T) {
	s := tempStore(t)
	if _, ok, err := s.PeerCheckpoint("bravo"); ok || err != nil {
		t.Errorf("unset: got %v, %v, want false, nil", ok, err)
	}
	for _, cp := range []string{"bravo\n1\nAAA=\n", "bravo\n2\nBBB=\n"} {
		if err := s.SetPeerCheckpoint("bravo", []byte(cp)); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := s.PeerCheckpoint("bravo")
	if err != nil || !ok || string(got) != "bravo\n2\nBBB=\n" {
		t.Errorf("got %q, %v, %v, want the last one", got, ok, err)
	}
}

// fakeLog is a log as a slice of leaves. A leaf is sender 0x00 seq.
type fakeLog [][]byte

func makeLog(n int, senders ...string) fakeLog {
	seqs := make(map[string]uint64)
	l := make(fakeLog, n)
	for i := range l {
		s := senders[i%len(senders)]
		seqs[s]++
		l[i] = feedKey(nil, s, seqs[s])
	}
	return l
}

func (l fakeLog) read(_ context.Context, start uint64, count int) ([][]byte, error) {
	if start >= uint64(len(l)) {
		return nil, fmt.Errorf("start %d beyond %d", start, len(l))
	}
	return l[start:min(start+uint64(count), uint64(len(l)))], nil
}

func parseLeaf(raw []byte) (Record, error) {
	i := bytes.IndexByte(raw, 0)
	if i < 1 || len(raw) != i+9 {
		return Record{}, fmt.Errorf("malformed leaf %q", raw)
	}
	return Record{
		Sender:        string(raw[:i]),
		Seq:           binary.BigEndian.Uint64(raw[i+1:]),
		Digest:        sha256.Sum256(raw),
		PayloadDigest: sha256.Sum256(raw[i+1:]),
	}, nil
}

func TestReconcile(t *testing.T) {
	log := makeLog(1000, "alpha", "bravo", "charlie")
	for _, tc := range []struct {
		name     string
		recorded []int // log indexes already in the store (a crash left the rest out)
	}{
		{"empty store", nil},
		{"behind", []int{0, 1, 2, 3}},
		{"behind with gaps", []int{0, 1, 5, 7, 998}},
		{"up to date", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tempStore(t)
			recorded := tc.recorded
			if tc.name == "up to date" {
				for i := range log {
					recorded = append(recorded, i)
				}
			}
			for _, i := range recorded {
				r, _ := parseLeaf(log[i])
				r.Index = uint64(i)
				if err := s.Record([]Record{r}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Reconcile(t.Context(), uint64(len(log)), log.read, parseLeaf); err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			if size, err := s.LogSize(); err != nil || size != uint64(len(log)) {
				t.Errorf("LogSize: got %d, %v, want %d", size, err, len(log))
			}
			for _, i := range []int{0, 4, 6, 500, 999} {
				r, _ := parseLeaf(log[i])
				ref, ok, err := s.Lookup(r.Sender, r.Seq)
				if err != nil || !ok || ref.Index != uint64(i) || ref.Digest != r.Digest {
					t.Errorf("Lookup of log index %d: got %+v, %v, %v", i, ref, ok, err)
				}
			}
			h, _, err := s.Head("alpha")
			if err != nil || h.Seq != 334 || h.Index != 999 {
				t.Errorf("Head of alpha: got %+v, %v, want seq 334 at index 999", h, err)
			}
		})
	}
}

func TestReconcileAheadOfLog(t *testing.T) {
	log := makeLog(100, "alpha")
	for _, tc := range []struct {
		name    string
		indexes []uint64
	}{
		{"log size", []uint64{0, 1, 2}},
		{"pending", []uint64{0, 50}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tempStore(t)
			for _, i := range tc.indexes {
				r, _ := parseLeaf(log[i])
				r.Index = i
				if err := s.Record([]Record{r}); err != nil {
					t.Fatal(err)
				}
			}
			short := log[:2]
			err := s.Reconcile(t.Context(), uint64(len(short)), short.read, parseLeaf)
			if !errors.Is(err, ErrAheadOfLog) {
				t.Errorf("got %v, want ErrAheadOfLog", err)
			}
		})
	}
}

func TestReconcileErrors(t *testing.T) {
	log := makeLog(10, "alpha")
	for _, tc := range []struct {
		name  string
		read  func(context.Context, uint64, int) ([][]byte, error)
		parse func([]byte) (Record, error)
	}{
		{"read fails", func(context.Context, uint64, int) ([][]byte, error) { return nil, errors.New("disk on fire") }, parseLeaf},
		{"read returns nothing", func(context.Context, uint64, int) ([][]byte, error) { return nil, nil }, parseLeaf},
		{"parse fails", log.read, func([]byte) (Record, error) { return Record{}, errors.New("bad envelope") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tempStore(t)
			if err := s.Reconcile(t.Context(), uint64(len(log)), tc.read, tc.parse); err == nil {
				t.Error("got nil error")
			}
		})
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	openStore(t, path)
	if s, err := Open(path); err == nil {
		_ = s.Close()
		t.Error("second Open of a held file: got nil error")
	}
}

func TestRecordLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	errs := make(chan error, n+1)
	for i := range uint64(n) {
		s.RecordLater([]Record{rec("alpha", i+1, i)}, func(err error) { errs <- err })
		// Visible at once, committed or not.
		ref, ok, err := s.Lookup("alpha", i+1)
		if err != nil || !ok || ref.Index != i {
			t.Fatalf("Lookup(alpha, %d) right after RecordLater: got %+v, %v, %v, want index %d", i+1, ref, ok, err, i)
		}
		h, ok, err := s.Head("alpha")
		if err != nil || !ok || h.Seq < i+1 {
			t.Fatalf("Head(alpha) right after RecordLater of seq %d: got %+v, %v, %v", i+1, h, ok, err)
		}
	}
	// A conflicting record fails alone.
	bad := rec("alpha", 1, n)
	bad.Digest[0] ^= 1
	s.RecordLater([]Record{bad}, func(err error) { errs <- err })
	failed := 0
	for range n + 1 {
		if err := <-errs; err != nil {
			if !errors.Is(err, ErrConflict) {
				t.Errorf("RecordLater: got %v, want nil or ErrConflict", err)
			}
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("RecordLater: %d calls failed, want 1 (the conflict)", failed)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.RecordLater([]Record{rec("alpha", n+1, n)}, func(err error) { errs <- err })
	if err := <-errs; !errors.Is(err, ErrClosed) {
		t.Errorf("RecordLater after Close: got %v, want ErrClosed", err)
	}

	// Every record was committed before the callbacks ran.
	s = openStore(t, path)
	if size, err := s.LogSize(); err != nil || size != n {
		t.Errorf("LogSize after reopening: got %d, %v, want %d", size, err, n)
	}
	heads, err := s.Heads()
	if err != nil || heads["alpha"].Seq != n {
		t.Errorf("Heads after reopening: got %+v, %v, want alpha at seq %d", heads, err, n)
	}
}
