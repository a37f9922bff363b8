package verifier_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/agreement/agreementtest"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier"
)

// scenario is an agreement of three parties built in code, with
// generated keys: alpha signs with Ed25519, bravo with ECDSA P-256 and
// charlie rotated its Ed25519 key at rotation.
type scenario struct {
	f        *agreementtest.Fixture
	v        *verifier.Verifier
	rotation time.Time
}

func newScenario(tb testing.TB) *scenario {
	tb.Helper()
	f := agreementtest.New(tb, 3, 0)
	rotation := agreementtest.EffectiveFrom.AddDate(1, 0, 0)
	f.RotateKey(tb, "charlie", rotation, keys.Ed25519)
	v, err := verifier.New(f.Agreement)
	if err != nil {
		tb.Fatal(err)
	}
	return &scenario{f: f, v: v, rotation: rotation}
}

// at is the issued_at of entries in code-built tests.
func at(seq uint64) *timestamppb.Timestamp {
	return timestamppb.New(agreementtest.EffectiveFrom.AddDate(2, 0, 0).Add(time.Duration(seq) * time.Hour))
}

// statement returns a valid statement of sender at seq under the
// fixture's agreement.
func (s *scenario) statement(sender string, seq uint64, prev []byte, body *parleyv1.Body) *parleyv1.Statement {
	return &parleyv1.Statement{
		Header: &parleyv1.Header{AgreementId: s.f.Agreement.ID, Sender: sender, Seq: seq, Prev: prev, IssuedAt: at(seq)},
		Body:   body,
	}
}

// sign signs st with the key of party at index i of its keys (-1: newest).
func (s *scenario) sign(tb testing.TB, party string, i int, st *parleyv1.Statement) []byte {
	tb.Helper()
	p := s.f.Party(tb, party)
	if i < 0 {
		i = len(p.Keys) - 1
	}
	raw, err := envelope.Sign(context.Background(), st, p.Keys[i].Signer, p.Keys[i].ID)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// feed signs n entries of sender, each chained to the one before.
func (s *scenario) feed(tb testing.TB, sender string, n int) [][]byte {
	tb.Helper()
	var raws [][]byte
	var prev []byte
	for seq := uint64(1); seq <= uint64(n); seq++ {
		raw := s.sign(tb, sender, -1, s.statement(sender, seq, prev, nilCalendar(2020+uint32(seq))))
		raws = append(raws, raw)
		prev = digest(raw)
	}
	return raws
}

func statementOf(tb testing.TB, raw []byte) *parleyv1.Statement {
	tb.Helper()
	p, err := envelope.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return p.Statement
}

func edit(tb testing.TB, raw []byte, f func(*parleyv1.Statement)) *parleyv1.Statement {
	tb.Helper()
	st := statementOf(tb, raw)
	f(st)
	return st
}

// TestCheck runs every outcome of Check for an Ed25519 and an ECDSA
// sender, on entries built in code.
func TestCheck(t *testing.T) {
	s := newScenario(t)
	for _, sender := range []string{"alpha", "bravo"} {
		t.Run(sender, func(t *testing.T) {
			raws := s.feed(t, sender, 3)
			other := "charlie"
			if sender == "alpha" {
				other = "bravo"
			}
			keyID := s.f.Party(t, sender).Keys[0].ID
			flipped := func() []byte {
				p, err := envelope.Parse(raws[2])
				if err != nil {
					t.Fatal(err)
				}
				env := proto.Clone(p.Envelope).(*parleyv1.Envelope)
				env.Signatures[0].Sig[len(env.Signatures[0].Sig)/2] ^= 1
				out, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
				if err != nil {
					t.Fatal(err)
				}
				return out
			}()

			for _, tt := range []struct {
				name string
				// fed is how many entries of the feed are already accepted.
				fed int
				raw []byte
				// want is the outcome; zero when wantErr is set.
				want    verifier.Outcome
				wantErr error
			}{
				{name: "accept first", fed: 0, raw: raws[0], want: verifier.Accepted},
				{name: "accept next", fed: 2, raw: raws[2], want: verifier.Accepted},
				{name: "duplicate head", fed: 3, raw: raws[2], want: verifier.Duplicate},
				{name: "duplicate below head", fed: 3, raw: raws[0], want: verifier.Duplicate},
				// ECDSA signatures are randomized: signing the same
				// statement again gives another envelope, not an
				// equivocation.
				{name: "duplicate re-signed", fed: 3, raw: s.sign(t, sender, -1, statementOf(t, raws[1])), want: verifier.Duplicate},
				{name: "equivocation", fed: 3, raw: s.sign(t, sender, -1, edit(t, raws[1], func(st *parleyv1.Statement) {
					st.Body = nilCalendar(2099)
				})), wantErr: verifier.ErrEquivocation},
				{name: "equivocation at head", fed: 2, raw: s.sign(t, sender, -1, edit(t, raws[1], func(st *parleyv1.Statement) {
					st.Header.IssuedAt = at(99)
				})), wantErr: verifier.ErrEquivocation},
				{name: "gap", fed: 1, raw: raws[2], wantErr: verifier.ErrGap},
				{name: "gap from empty", fed: 0, raw: raws[1], wantErr: verifier.ErrGap},
				{name: "wrong prev", fed: 2, raw: s.sign(t, sender, -1, edit(t, raws[2], func(st *parleyv1.Statement) {
					st.Header.Prev = digest(raws[0])
				})), wantErr: verifier.ErrWrongPrev},
				{name: "missing prev", fed: 2, raw: s.sign(t, sender, -1, edit(t, raws[2], func(st *parleyv1.Statement) {
					st.Header.Prev = nil
				})), wantErr: verifier.ErrWrongPrev},
				{name: "prev at seq 1", fed: 0, raw: s.sign(t, sender, -1, edit(t, raws[0], func(st *parleyv1.Statement) {
					st.Header.Prev = digest(raws[2])
				})), wantErr: verifier.ErrWrongPrev},
				{name: "short prev", fed: 2, raw: s.sign(t, sender, -1, edit(t, raws[2], func(st *parleyv1.Statement) {
					st.Header.Prev = st.Header.Prev[:31]
				})), wantErr: verifier.ErrInvalid},
				{name: "wrong agreement", fed: 0, raw: s.sign(t, sender, -1, edit(t, raws[0], func(st *parleyv1.Statement) {
					st.Header.AgreementId = "another"
				})), wantErr: verifier.ErrWrongAgreement},
				{name: "unknown sender", fed: 0, raw: s.sign(t, sender, -1, edit(t, raws[0], func(st *parleyv1.Statement) {
					st.Header.Sender = "zulu"
				})), wantErr: verifier.ErrUnknownSender},
				{name: "bad signature", fed: 2, raw: flipped, wantErr: verifier.ErrBadSignature},
				{name: "signed by another party", fed: 2, raw: s.sign(t, other, -1, statementOf(t, raws[2])), wantErr: verifier.ErrBadSignature},
				{name: "invalid body", fed: 2, raw: s.sign(t, sender, -1, edit(t, raws[2], func(st *parleyv1.Statement) {
					st.Body = &parleyv1.Body{Kind: &parleyv1.Body_Calendar{Calendar: &parleyv1.AnnualCalendar{Year: 2027}}}
				})), wantErr: verifier.ErrInvalid},
				{name: "no body", fed: 2, raw: s.sign(t, sender, -1, edit(t, raws[2], func(st *parleyv1.Statement) {
					st.Body = nil
				})), wantErr: verifier.ErrInvalid},
				{name: "no issued_at", fed: 2, raw: s.sign(t, sender, -1, edit(t, raws[2], func(st *parleyv1.Statement) {
					st.Header.IssuedAt = nil
				})), wantErr: verifier.ErrInvalid},
				{name: "self receipt", fed: 2, raw: s.sign(t, sender, -1, edit(t, raws[2], func(st *parleyv1.Statement) {
					st.Body = receipt(ack(other, 1, raws[0], at(1)), ack(sender, 1, raws[0], at(1)))
				})), wantErr: verifier.ErrInvalid},
				{name: "non-canonical", fed: 2, raw: append(bytes.Clone(raws[2]), 0x78, 0x01), wantErr: envelope.ErrNonCanonical},
				{name: "too large", fed: 2, raw: make([]byte, envelope.MaxSize+1), wantErr: envelope.ErrTooLarge},
			} {
				t.Run(tt.name, func(t *testing.T) {
					f := newFeeds(t, map[string][][]byte{sender: raws[:tt.fed]})
					res, err := s.v.Check(tt.raw, f.head, f.lookup)
					if tt.wantErr != nil {
						if !errors.Is(err, tt.wantErr) {
							t.Fatalf("got error %v, want %v", err, tt.wantErr)
						}
						if res.Parsed != nil {
							t.Errorf("got a result with error %v, want none", err)
						}
						return
					}
					if err != nil {
						t.Fatalf("got error %v, want outcome %v", err, tt.want)
					}
					if res.Outcome != tt.want {
						t.Errorf("got outcome %v, want %v", res.Outcome, tt.want)
					}
					if res.KeyID != keyID {
						t.Errorf("got key id %s, want %s", res.KeyID, keyID)
					}
					if got := res.Sender(); got != sender {
						t.Errorf("got sender %s, want %s", got, sender)
					}
					if got, want := res.State(), (verifier.FeedState{
						Seq: res.Seq(), Digest: envelope.Digest(tt.raw), PayloadDigest: res.Parsed.PayloadDigest, Raw: tt.raw,
					}); got.Seq != want.Seq || got.Digest != want.Digest || !bytes.Equal(got.Raw, want.Raw) {
						t.Errorf("got state %+v, want %+v", got, want)
					}
				})
			}
		})
	}
}

// TestCheckKeyWindow checks signatures against key validity windows:
// charlie's first key is valid until the rotation, the second from then.
func TestCheckKeyWindow(t *testing.T) {
	s := newScenario(t)
	charlie := s.f.Party(t, "charlie")
	stmtAt := func(issued time.Time) *parleyv1.Statement {
		st := s.statement("charlie", 1, nil, nilCalendar(2021))
		st.Header.IssuedAt = timestamppb.New(issued)
		return st
	}
	for _, tt := range []struct {
		name    string
		key     int
		issued  time.Time
		wantErr error
	}{
		{name: "old key before rotation", key: 0, issued: s.rotation.Add(-time.Second)},
		{name: "old key at rotation", key: 0, issued: s.rotation},
		{name: "new key at rotation", key: 1, issued: s.rotation},
		{name: "new key after rotation", key: 1, issued: s.rotation.Add(time.Second)},
		{name: "old key after rotation", key: 0, issued: s.rotation.Add(time.Nanosecond), wantErr: verifier.ErrKeyNotValid},
		{name: "new key before rotation", key: 1, issued: s.rotation.Add(-time.Hour), wantErr: verifier.ErrKeyNotValid},
		{name: "old key before its window", key: 0, issued: agreementtest.EffectiveFrom.Add(-time.Hour), wantErr: verifier.ErrKeyNotValid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.v.Check(s.sign(t, "charlie", tt.key, stmtAt(tt.issued)), nil, nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), charlie.Keys[tt.key].ID) {
					t.Errorf("got error %q, want it to name key %s", err, charlie.Keys[tt.key].ID)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if res.KeyID != charlie.Keys[tt.key].ID {
				t.Errorf("got key id %s, want %s", res.KeyID, charlie.Keys[tt.key].ID)
			}
		})
	}
}

// TestCheckEffectiveDates checks that an entry signed under a valid key
// but dated outside the agreement's effective dates is refused.
func TestCheckEffectiveDates(t *testing.T) {
	f := agreementtest.New(t, 3, 0)
	until := agreementtest.EffectiveFrom.AddDate(3, 0, 0)
	f.Agreement.EffectiveUntil = until
	// bravo's key was valid a year before the agreement took effect.
	bravo := &f.Agreement.Parties[slices.IndexFunc(f.Agreement.Parties, func(p agreement.Party) bool { return p.ID == "bravo" })]
	bravo.Keys[0].NotBefore = agreementtest.EffectiveFrom.AddDate(-1, 0, 0)
	v, err := verifier.New(f.Agreement)
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario{f: f, v: v}
	for _, tt := range []struct {
		name    string
		issued  time.Time
		wantErr string
	}{
		{"at the start", agreementtest.EffectiveFrom, ""},
		{"at the end", until, ""},
		{"before the start", agreementtest.EffectiveFrom.Add(-time.Hour), "issued_at 2019-12-31T23:00:00Z is before the agreement takes effect at 2020-01-01T00:00:00Z"},
		{"after the end", until.Add(time.Second), "issued_at 2023-01-01T00:00:01Z is after the agreement ends at 2023-01-01T00:00:00Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := s.statement("bravo", 1, nil, nilCalendar(2021))
			st.Header.IssuedAt = timestamppb.New(tt.issued)
			_, err := v.Check(s.sign(t, "bravo", 0, st), nil, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want it accepted", err)
				}
				return
			}
			if !errors.Is(err, verifier.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want ErrInvalid containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestCheckErrorDetails checks the evidence and messages of typed errors.
func TestCheckErrorDetails(t *testing.T) {
	s := newScenario(t)
	raws := s.feed(t, "bravo", 3)
	f := newFeeds(t, map[string][][]byte{"bravo": raws})

	t.Run("equivocation", func(t *testing.T) {
		second := s.sign(t, "bravo", -1, edit(t, raws[0], func(st *parleyv1.Statement) { st.Body = nilCalendar(2098) }))
		_, err := s.v.Check(second, f.head, f.lookup)
		var eq *verifier.EquivocationError
		if !errors.As(err, &eq) {
			t.Fatalf("got error %v, want an *EquivocationError", err)
		}
		if eq.Sender != "bravo" || eq.Seq != 1 {
			t.Errorf("got sender %s seq %d, want bravo seq 1", eq.Sender, eq.Seq)
		}
		if !bytes.Equal(eq.First, raws[0]) {
			t.Errorf("got First %x, want the accepted envelope %x", eq.First, raws[0])
		}
		if !bytes.Equal(eq.Second, second) {
			t.Errorf("got Second %x, want the checked envelope %x", eq.Second, second)
		}
		for _, want := range []string{hex.EncodeToString(digest(raws[0])), hex.EncodeToString(digest(second))} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got message %q, want it to name digest %s", err, want)
			}
		}
	})
	t.Run("gap", func(t *testing.T) {
		_, err := s.v.Check(raws[2], newFeeds(t, map[string][][]byte{"bravo": raws[:1]}).head, nil)
		var gap *verifier.GapError
		if !errors.As(err, &gap) {
			t.Fatalf("got error %v, want a *GapError", err)
		}
		if gap.Sender != "bravo" || gap.Expected != 2 || gap.Got != 3 {
			t.Errorf("got %+v, want sender bravo, expected 2, got 3", *gap)
		}
		if want := "seq 3, want 2"; !strings.Contains(err.Error(), want) {
			t.Errorf("got message %q, want it to contain %q", err, want)
		}
	})
	t.Run("wrong prev", func(t *testing.T) {
		bad := s.sign(t, "bravo", -1, edit(t, raws[2], func(st *parleyv1.Statement) { st.Header.Prev = digest(raws[0]) }))
		_, err := s.v.Check(bad, newFeeds(t, map[string][][]byte{"bravo": raws[:2]}).head, nil)
		var pe *verifier.PrevError
		if !errors.As(err, &pe) {
			t.Fatalf("got error %v, want a *PrevError", err)
		}
		if !bytes.Equal(pe.Want, digest(raws[1])) || !bytes.Equal(pe.Got, digest(raws[0])) {
			t.Errorf("got want %x got %x, want want %x got %x", pe.Want, pe.Got, digest(raws[1]), digest(raws[0]))
		}
		want := fmt.Sprintf("has prev %x, want %x", digest(raws[0]), digest(raws[1]))
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got message %q, want it to contain %q", err, want)
		}
	})
	t.Run("missing history", func(t *testing.T) {
		_, err := s.v.Check(raws[0], f.head, nil)
		if !errors.Is(err, verifier.ErrMissingHistory) {
			t.Fatalf("got error %v, want ErrMissingHistory", err)
		}
	})
	t.Run("equivocation without kept envelope", func(t *testing.T) {
		head := f.head("bravo")
		head.Raw = nil
		second := s.sign(t, "bravo", -1, edit(t, raws[2], func(st *parleyv1.Statement) { st.Body = nilCalendar(2097) }))
		_, err := s.v.Check(second, func(string) verifier.FeedState { return head }, nil)
		var eq *verifier.EquivocationError
		if !errors.As(err, &eq) || eq.First != nil {
			t.Fatalf("got error %v, want an *EquivocationError without First", err)
		}
		if !strings.Contains(err.Error(), "not kept") {
			t.Errorf("got message %q, want it to say the first envelope was not kept", err)
		}
	})
	t.Run("messages", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			raw  []byte
			want []string
		}{
			{name: "wrong agreement", raw: s.sign(t, "bravo", -1, edit(t, raws[0], func(st *parleyv1.Statement) { st.Header.AgreementId = "x" })),
				want: []string{`"x"`, fmt.Sprintf("want %q", s.f.Agreement.ID)}},
			{name: "unknown sender", raw: s.sign(t, "bravo", -1, edit(t, raws[0], func(st *parleyv1.Statement) { st.Header.Sender = "zulu" })),
				want: []string{`"zulu"`, "alpha, bravo, charlie"}},
			{name: "unknown key", raw: s.sign(t, "alpha", -1, statementOf(t, raws[0])),
				want: []string{"bravo", s.f.Party(t, "alpha").Keys[0].ID}},
			{name: "self receipt", raw: s.sign(t, "bravo", -1, edit(t, raws[0], func(st *parleyv1.Statement) {
				st.Body = receipt(ack("bravo", 1, raws[0], at(1)))
			})), want: []string{"own entry 1"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.v.Check(tt.raw, nil, nil)
				if err == nil {
					t.Fatal("got no error, want one")
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("got message %q, want it to contain %q", err, w)
					}
				}
			})
		}
	})
}

func TestNewErrors(t *testing.T) {
	s := newScenario(t)
	for _, tt := range []struct {
		name string
		edit func(a *agreement.Agreement)
		want string
	}{
		{name: "no id", edit: func(a *agreement.Agreement) { a.ID = "" }, want: "no id"},
		{name: "repeated party", edit: func(a *agreement.Agreement) { a.Parties[1].ID = a.Parties[0].ID }, want: `party id "alpha"`},
		{name: "key id mismatch", edit: func(a *agreement.Agreement) { a.Parties[0].Keys[0].ID = a.Parties[1].Keys[0].ID }, want: "does not match the public key"},
		{name: "bad public key", edit: func(a *agreement.Agreement) { a.Parties[0].Keys[0].PublicKey = "junk" }, want: "couldn't parse public key"},
		{name: "party id the schema refuses", edit: func(a *agreement.Agreement) { a.Parties[0].ID = "alpha.one" }, want: `party "alpha.one" of agreement "parley-test" could never send a valid entry`},
		{name: "agreement id the schema refuses", edit: func(a *agreement.Agreement) { a.ID = strings.Repeat("x", 65) }, want: "could never send a valid entry"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := *s.f.Agreement
			a.Parties = append([]agreement.Party(nil), a.Parties...)
			for i := range a.Parties {
				a.Parties[i].Keys = append([]agreement.Key(nil), a.Parties[i].Keys...)
			}
			tt.edit(&a)
			_, err := verifier.New(&a)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := verifier.New(nil); err == nil {
		t.Error("got no error for a nil agreement, want one")
	}
}

// TestCheckConcurrent runs Check from several goroutines (meaningful under
// -race).
func TestCheckConcurrent(t *testing.T) {
	s := newScenario(t)
	raws := s.feed(t, "alpha", 2)
	f := newFeeds(t, map[string][][]byte{"alpha": raws[:1]})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				if res, err := s.v.Check(raws[1], f.head, f.lookup); err != nil || res.Outcome != verifier.Accepted {
					t.Errorf("got %v, %v, want accepted", res.Outcome, err)
				}
			}
		})
	}
	wg.Wait()
}

// TestAuthenticateThenPlace authenticates an entry once and places it
// against feeds in several states, as a node does when it verifies a
// signature before it takes its lock: each outcome is Check's.
func TestAuthenticateThenPlace(t *testing.T) {
	s := newScenario(t)
	raws := s.feed(t, "alpha", 3)
	auth, err := s.v.Authenticate(raws[1])
	if err != nil {
		t.Fatal(err)
	}
	var gap *verifier.GapError
	for _, tc := range []struct {
		name  string
		held  int
		want  verifier.Outcome
		isErr func(error) bool
	}{
		{"next entry", 1, verifier.Accepted, nil},
		{"held already", 2, verifier.Duplicate, nil},
		{"before its feed", 0, 0, func(err error) bool { return errors.As(err, &gap) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeds(t, map[string][][]byte{"alpha": raws[:tc.held]})
			res, err := s.v.Place(auth, f.head, f.lookup)
			check, checkErr := s.v.Check(raws[1], f.head, f.lookup)
			if (err == nil) != (checkErr == nil) || err != nil && err.Error() != checkErr.Error() || res.Outcome != check.Outcome {
				t.Fatalf("Place: %v, %v; Check: %v, %v", res.Outcome, err, check.Outcome, checkErr)
			}
			if tc.isErr != nil {
				if !tc.isErr(err) {
					t.Fatalf("got %v, want a gap", err)
				}
				return
			}
			if err != nil || res.Outcome != tc.want || res.Parsed.Digest != sha256.Sum256(raws[1]) {
				t.Fatalf("got %v, %v, want %v", res.Outcome, err, tc.want)
			}
		})
	}
	flipped := bytes.Clone(raws[2])
	flipped[len(flipped)-40] ^= 1
	if _, err := s.v.Authenticate(flipped); err == nil {
		t.Error("authenticated an envelope with a changed byte")
	} else if _, checkErr := s.v.Check(flipped, nil, nil); checkErr == nil || checkErr.Error() != err.Error() {
		t.Errorf("Authenticate: %v; Check: %v", err, checkErr)
	}
}

// TestSchemaCoverage guards Check's shortcut of validating only the body's
// kind with protovalidate (see Verifier.validate): the statement, header
// and body must have exactly the fields and rules that Check and New
// establish by hand. When this fails, the schema changed: make Check
// validate what is new.
func TestSchemaCoverage(t *testing.T) {
	names := func(fields protoreflect.FieldDescriptors) []string {
		var out []string
		for i := range fields.Len() {
			out = append(out, string(fields.Get(i).Name()))
		}
		return out
	}
	for _, tt := range []struct {
		msg  proto.Message
		want []string
	}{
		{msg: &parleyv1.Statement{}, want: []string{"header", "body"}},
		{msg: &parleyv1.Header{}, want: []string{"agreement_id", "sender", "seq", "prev", "issued_at"}},
	} {
		d := tt.msg.ProtoReflect().Descriptor()
		if got := names(d.Fields()); strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("got %s fields %v, want %v", d.FullName(), got, tt.want)
		}
		if proto.HasExtension(d.Options(), validate.E_Message) {
			t.Errorf("got message rules on %s, want none", d.FullName())
		}
	}
	body := (&parleyv1.Body{}).ProtoReflect().Descriptor()
	if proto.HasExtension(body.Options(), validate.E_Message) {
		t.Errorf("got message rules on %s, want none", body.FullName())
	}
	if got := body.Oneofs().Len(); got != 1 {
		t.Fatalf("got %d oneofs in %s, want 1", got, body.FullName())
	}
	kind := body.Oneofs().Get(0)
	if got := kind.Fields().Len(); got != body.Fields().Len() {
		t.Errorf("got %d of %d fields of %s in its oneof, want all", got, body.Fields().Len(), body.FullName())
	}
	if rules, _ := proto.GetExtension(kind.Options(), validate.E_Oneof).(*validate.OneofRules); !rules.GetRequired() {
		t.Errorf("got oneof %s not required, want required", kind.FullName())
	}
	for i := range body.Fields().Len() {
		if fd := body.Fields().Get(i); proto.HasExtension(fd.Options(), validate.E_Field) {
			t.Errorf("got field rules on %s, want none", fd.FullName())
		}
	}
}

// allErrors are the sentinels every error of Check wraps one of.
var allErrors = func() []error {
	var errs []error
	for _, e := range sentinels {
		errs = append(errs, e)
	}
	return errs
}()

// FuzzCheck checks that Check never panics, is deterministic and keeps its
// promises whatever the envelope, against the vectors' feeds with alpha's
// head at any of its entries. It is seeded with every vector.
func FuzzCheck(f *testing.F) {
	vs := readVectors(f)
	fx := newVectorFixture(f)
	v, err := verifier.New(vs["accept"].Agreement.agreement(f))
	if err != nil {
		f.Fatal(err)
	}
	full := map[string][][]byte{"alpha": fx.alpha, "bravo": {fx.bravo1}}
	states := make([]feeds, len(fx.alpha)+1)
	for n := range states {
		states[n] = newFeeds(f, map[string][][]byte{"alpha": full["alpha"][:n], "bravo": full["bravo"]})
	}
	for _, vec := range vs {
		f.Add(vec.Envelope, uint8(len(vec.Feeds["alpha"])))
	}
	// schema validates whole statements, to check Check's body-only shortcut.
	schema, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte, n uint8) {
		st := states[int(n)%len(states)]
		res, err := v.Check(raw, st.head, st.lookup)
		res2, err2 := v.Check(raw, st.head, st.lookup)
		if fmt.Sprint(err) != fmt.Sprint(err2) || res.Outcome != res2.Outcome || res.KeyID != res2.KeyID {
			t.Fatalf("got %v/%v then %v/%v, want the same result twice", res.Outcome, err, res2.Outcome, err2)
		}
		if err != nil {
			known := false
			for _, e := range allErrors {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("got error %v, want one wrapping a sentinel", err)
			}
			return
		}
		head := st.head(res.Sender())
		switch res.Outcome {
		case verifier.Accepted:
			if res.Seq() != head.Seq+1 {
				t.Fatalf("accepted seq %d on head %d", res.Seq(), head.Seq)
			}
			if err := schema.Validate(res.Parsed.Statement); err != nil {
				t.Fatalf("accepted a statement that breaks the schema: %v", err)
			}
		case verifier.Duplicate:
			prior, ok := st.lookup(res.Sender(), res.Seq())
			if !ok || prior.PayloadDigest != res.Parsed.PayloadDigest {
				t.Fatalf("duplicate of %s/%d does not match the stored entry", res.Sender(), res.Seq())
			}
		default:
			t.Fatalf("got outcome %v without error", res.Outcome)
		}
	})
}

// BenchmarkVerifyEnvelope measures a full Check of the accept vector.
func BenchmarkVerifyEnvelope(b *testing.B) {
	vec := readVectors(b)["accept"]
	v, err := verifier.New(vec.Agreement.agreement(b))
	if err != nil {
		b.Fatal(err)
	}
	f := newFeeds(b, vec.Feeds)
	b.SetBytes(int64(len(vec.Envelope)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Check(vec.Envelope, f.head, f.lookup); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Verify measures the bare Ed25519 verification of the
// accept vector's signature: the floor for BenchmarkVerifyEnvelope.
func BenchmarkEd25519Verify(b *testing.B) {
	vec := readVectors(b)["accept"]
	p, err := envelope.Parse(vec.Envelope)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := keys.ParsePublicPEM([]byte(vec.Agreement.Parties[0].Keys[1].PublicKey))
	if err != nil {
		b.Fatal(err)
	}
	pae := envelope.PAE(p.Envelope.PayloadType, p.Envelope.Payload)
	sig := p.Envelope.Signatures[0].Sig
	b.SetBytes(int64(len(vec.Envelope)))
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub.(ed25519.PublicKey), pae, sig) {
			b.Fatal("signature does not verify")
		}
	}
}
