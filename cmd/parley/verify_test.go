package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/agreement/agreementtest"
	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// feed signs a sender's entries for tests: each call to next makes the
// sender's next entry, chained to the previous one.
type feed struct {
	tb     testing.TB
	fx     *agreementtest.Fixture
	sender string
	seq    uint64
	prev   []byte
}

func newFeed(tb testing.TB, fx *agreementtest.Fixture, sender string) *feed {
	return &feed{tb: tb, fx: fx, sender: sender}
}

// next returns the sender's next entry, a nil calendar for year.
func (f *feed) next(year uint32) []byte {
	f.tb.Helper()
	raw := f.sign(f.sender, f.seq+1, f.prev, year)
	f.seq++
	d := envelope.Digest(raw)
	f.prev = d[:]
	return raw
}

// sign returns an entry of the feed's sender at seq with prev, a nil
// calendar for year, signed with the newest key of party signer.
func (f *feed) sign(signer string, seq uint64, prev []byte, year uint32) []byte {
	f.tb.Helper()
	st := &parleyv1.Statement{
		Header: &parleyv1.Header{
			AgreementId: f.fx.Agreement.ID,
			Sender:      f.sender,
			Seq:         seq,
			Prev:        prev,
			IssuedAt:    timestamppb.New(agreementtest.EffectiveFrom.Add(time.Duration(seq) * time.Hour)),
		},
		Body: &parleyv1.Body{Kind: &parleyv1.Body_Calendar{Calendar: &parleyv1.AnnualCalendar{Year: year, NilCalendar: true}}},
	}
	p := f.fx.Party(f.tb, signer)
	raw, err := envelope.Sign(context.Background(), st, p.Signer(), p.Keys[len(p.Keys)-1].ID)
	if err != nil {
		f.tb.Fatalf("couldn't sign entry: %v", err)
	}
	return raw
}

func inputs(raws ...[]byte) []inputEnvelope {
	out := make([]inputEnvelope, len(raws))
	for i, raw := range raws {
		out[i] = inputEnvelope{Raw: raw, Source: "in"}
	}
	return out
}

func digestOf(raw []byte) [32]byte { return envelope.Digest(raw) }

func TestVerifyEnvelopes(t *testing.T) {
	fx := agreementtest.New(t, 2, 0)
	a := fx.SignedFile(t).Agreement

	alpha := newFeed(t, fx, "alpha")
	a1, a2, a3 := alpha.next(2021), alpha.next(2022), alpha.next(2023)
	a4, a5 := alpha.next(2024), alpha.next(2025)
	// a2x contradicts a2: same seq and prev, another statement.
	a2x := alpha.sign("alpha", 2, a2Prev(t, a1), 2099)
	// forged claims to be alpha's but is signed by bravo.
	forged := alpha.sign("bravo", 4, digestSlice(a3), 2024)
	bravo := newFeed(t, fx, "bravo")
	b1, b2 := bravo.next(2021), bravo.next(2022)

	tests := []struct {
		name    string
		in      [][]byte
		want    map[string]feedReport // compared on counts and seqs
		refused int
	}{
		{
			name: "accept in seq order whatever the input order",
			in:   [][]byte{a3, b2, a1, b1, a2},
			want: map[string]feedReport{
				"alpha": {Accepted: 3, LastSeq: 3, LastDigest: digestOf(a3)},
				"bravo": {Accepted: 2, LastSeq: 2, LastDigest: digestOf(b2)},
			},
		},
		{
			name: "duplicate",
			in:   [][]byte{a1, a2, a1, a2},
			want: map[string]feedReport{
				"alpha": {Accepted: 2, LastSeq: 2, LastDigest: digestOf(a2), Duplicates: make([]refusal, 2)},
			},
		},
		{
			name: "gap",
			in:   [][]byte{a1, a2, a4, a5},
			want: map[string]feedReport{
				"alpha": {Accepted: 2, LastSeq: 2, LastDigest: digestOf(a2), Gaps: []gap{{Expected: 3, Got: 4, Later: 1}}},
			},
			refused: 2,
		},
		{
			name: "equivocation",
			in:   [][]byte{a1, a2, a2x, a3},
			want: map[string]feedReport{
				"alpha": {Accepted: 3, LastSeq: 3, LastDigest: digestOf(a3), Equivocations: []equivocation{{Seq: 2, First: digestOf(a2), Second: digestOf(a2x)}}},
			},
			refused: 1,
		},
		{
			name: "bad signature stops the feed",
			in:   [][]byte{a1, a2, a3, forged, a5},
			want: map[string]feedReport{
				"alpha": {Accepted: 3, LastSeq: 3, LastDigest: digestOf(a3), BadSignatures: make([]refusal, 1), Refused: make([]refusal, 1)},
			},
			refused: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := verifyEnvelopes(a, inputs(tt.in...), agreementtest.EffectiveFrom)
			if err != nil {
				t.Fatalf("verifyEnvelopes: %v", err)
			}
			if got := rep.Refused(); got != tt.refused {
				t.Errorf("Refused() = %d, want %d", got, tt.refused)
			}
			if len(rep.Feeds) != len(tt.want) {
				t.Fatalf("got %d feeds, want %d", len(rep.Feeds), len(tt.want))
			}
			for _, got := range rep.Feeds {
				want, ok := tt.want[got.Sender]
				if !ok {
					t.Fatalf("got a feed of %q, want none", got.Sender)
				}
				if got.Accepted != want.Accepted || got.LastSeq != want.LastSeq || got.LastDigest != want.LastDigest {
					t.Errorf("%s: got %d accepted, last seq %d digest %x; want %d, %d, %x",
						got.Sender, got.Accepted, got.LastSeq, got.LastDigest, want.Accepted, want.LastSeq, want.LastDigest)
				}
				if len(got.Duplicates) != len(want.Duplicates) || len(got.BadSignatures) != len(want.BadSignatures) || len(got.Refused) != len(want.Refused) {
					t.Errorf("%s: got %d duplicates, %d bad signatures, %d refused; want %d, %d, %d (refused: %v)",
						got.Sender, len(got.Duplicates), len(got.BadSignatures), len(got.Refused),
						len(want.Duplicates), len(want.BadSignatures), len(want.Refused), got.Refused)
				}
				if len(got.Gaps) != len(want.Gaps) {
					t.Fatalf("%s: got gaps %+v, want %+v", got.Sender, got.Gaps, want.Gaps)
				}
				for i, g := range got.Gaps {
					w := want.Gaps[i]
					if g.Expected != w.Expected || g.Got != w.Got || g.Later != w.Later {
						t.Errorf("%s: got gap %+v, want %+v", got.Sender, g, w)
					}
				}
				if len(got.Equivocations) != len(want.Equivocations) {
					t.Fatalf("%s: got equivocations %+v, want %+v", got.Sender, got.Equivocations, want.Equivocations)
				}
				for i, e := range got.Equivocations {
					w := want.Equivocations[i]
					if e.Seq != w.Seq || e.First != w.First || e.Second != w.Second {
						t.Errorf("%s: got equivocation at %d of %x and %x, want at %d of %x and %x",
							got.Sender, e.Seq, e.First, e.Second, w.Seq, w.First, w.Second)
					}
				}
			}
		})
	}
}

func a2Prev(tb testing.TB, a1 []byte) []byte {
	tb.Helper()
	return digestSlice(a1)
}

func digestSlice(raw []byte) []byte {
	d := envelope.Digest(raw)
	return d[:]
}

// TestVerifyCommand runs 'parley verify' over files in both input formats
// and checks its output and exit status.
func TestVerifyCommand(t *testing.T) {
	fx := agreementtest.New(t, 2, 0)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	signedPath := write("agreement.yaml", fx.SignedFile(t).Marshal())
	unsignedPath := write("unsigned.yaml", fx.File(t, "alpha").Marshal())

	alpha := newFeed(t, fx, "alpha")
	a1, a2, a3, a4 := alpha.next(2021), alpha.next(2022), alpha.next(2023), alpha.next(2024)
	a3x := alpha.sign("alpha", 3, digestSlice(a2), 2099)
	bravo := newFeed(t, fx, "bravo")
	b1 := bravo.next(2021)

	jsonl := func(name string, raws ...[]byte) string {
		t.Helper()
		var b bytes.Buffer
		if err := writeEnvelopes(&b, raws); err != nil {
			t.Fatal(err)
		}
		return write(name, b.Bytes())
	}
	good := jsonl("good.jsonl", a2, b1, a1)
	raw3 := write("a3.bin", a3)
	gapped := jsonl("gap.jsonl", a1, a2, a4)
	forked := jsonl("fork.jsonl", a1, a2, a3, a3x)
	garbage := write("garbage.jsonl", []byte("{\"envelope\":\"AAAA\"}\n"))

	hexd := func(raw []byte) string { d := envelope.Digest(raw); return hex.EncodeToString(d[:]) }
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr string
	}{
		{
			name:     "accept",
			args:     []string{"-agreement", signedPath, good, raw3},
			wantCode: 0,
			wantStdout: []string{
				"sender alpha: accepted 3, duplicates 0, last seq 3 digest " + hexd(a3) + "\n",
				"sender bravo: accepted 1, duplicates 0, last seq 1 digest " + hexd(b1) + "\n",
			},
		},
		{
			name:     "duplicate",
			args:     []string{"-agreement", signedPath, good, good},
			wantCode: 0,
			wantStdout: []string{
				"sender alpha: accepted 2, duplicates 2, last seq 2 digest " + hexd(a2) + "\n",
				"  duplicate seq 1 (" + good + ":3)\n",
			},
		},
		{
			name:       "gap",
			args:       []string{"-agreement", signedPath, gapped},
			wantCode:   1,
			wantStdout: []string{"  gap: expected seq 3, got seq 4 (" + gapped + ":3)\n"},
			wantStderr: "parley verify: 1 of 3 entries failed verification\n",
		},
		{
			name:     "equivocation",
			args:     []string{"-agreement", signedPath, forked},
			wantCode: 1,
			wantStdout: []string{
				"sender alpha: accepted 3, duplicates 0, last seq 3 ",
				"  equivocation at seq 3: accepted " + hexd(a3) + ", conflicting " + hexd(a3x) + " (" + forked + ":4)\n",
			},
			wantStderr: "parley verify: 1 of 4 entries failed verification\n",
		},
		{
			name:       "unreadable",
			args:       []string{"-agreement", signedPath, garbage},
			wantCode:   1,
			wantStdout: []string{"unreadable " + garbage + ":1: "},
		},
		{
			name:       "agreement not signed by every party",
			args:       []string{"-agreement", unsignedPath, good},
			wantCode:   1,
			wantStderr: "missing signatures of bravo\n",
		},
		{
			name:       "no envelopes",
			args:       []string{"-agreement", signedPath},
			wantCode:   2,
			wantStderr: "parley verify: no envelope files given (see 'parley verify -h')\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(append([]string{"verify", "-now", "2020-01-02T00:00:00Z"}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout does not contain %q; got:\n%s", w, stdout.String())
				}
			}
			t.Logf("stdout:\n%s", stdout.String())
			if tt.wantStderr != "" && !strings.HasSuffix(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr ends in %q, want %q", lastLine(stderr.String()), tt.wantStderr)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1] + "\n"
}
