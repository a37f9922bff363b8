package verifier_test

// Test vectors: testdata/*.json, one file per outcome of Check.
//
// The files are made by generateVectors below from fixed Ed25519 seeds
// (Ed25519 signatures are deterministic), so regenerating them gives the
// same bytes. TestVectorsUpToDate fails when the files and the generator
// disagree; after changing the generator, rewrite the files with
//
//	go test ./verifier -run TestVectorsUpToDate -update
//
// Each vector is self-contained, so that another implementation can use it:
// the agreement's parties and public keys, the accepted feeds (raw
// envelopes, seq 1 first; the head of a feed is its last entry), the
// envelope to check, and the expected outcome or error.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from the vector generator")

// vector is one test vector file.
type vector struct {
	Description string          `json:"description"`
	Agreement   vectorAgreement `json:"agreement"`
	// Feeds are the accepted entries per sender, seq 1 first.
	Feeds map[string][][]byte `json:"feeds"`
	// Envelope is the entry to check.
	Envelope []byte     `json:"envelope"`
	Want     vectorWant `json:"want"`
}

type vectorAgreement struct {
	ID      string        `json:"id"`
	Parties []vectorParty `json:"parties"`
}

type vectorParty struct {
	ID   string      `json:"id"`
	Keys []vectorKey `json:"keys"`
}

type vectorKey struct {
	ID        string `json:"id"`
	PublicKey string `json:"public_key"`
	NotBefore string `json:"not_before"`
	NotAfter  string `json:"not_after,omitempty"`
}

// vectorWant is either an outcome with the verifying key id, or the name
// of the sentinel error (a verifier or envelope Err... variable).
type vectorWant struct {
	Outcome string `json:"outcome,omitempty"`
	KeyID   string `json:"key_id,omitempty"`
	Error   string `json:"error,omitempty"`
}

// sentinels maps the error names used in vectors to the errors.
var sentinels = map[string]error{
	"ErrWrongAgreement": verifier.ErrWrongAgreement,
	"ErrUnknownSender":  verifier.ErrUnknownSender,
	"ErrBadSignature":   verifier.ErrBadSignature,
	"ErrKeyNotValid":    verifier.ErrKeyNotValid,
	"ErrInvalid":        verifier.ErrInvalid,
	"ErrEquivocation":   verifier.ErrEquivocation,
	"ErrGap":            verifier.ErrGap,
	"ErrWrongPrev":      verifier.ErrWrongPrev,
	"ErrMissingHistory": verifier.ErrMissingHistory,
	"ErrTooLarge":       envelope.ErrTooLarge,
	"ErrMalformed":      envelope.ErrMalformed,
	"ErrPayloadType":    envelope.ErrPayloadType,
	"ErrNonCanonical":   envelope.ErrNonCanonical,
}

// agreement builds the agreement a vector describes.
func (va vectorAgreement) agreement(tb testing.TB) *agreement.Agreement {
	tb.Helper()
	a := &agreement.Agreement{ID: va.ID}
	parse := func(s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			tb.Fatal(err)
		}
		return t
	}
	for _, vp := range va.Parties {
		p := agreement.Party{ID: vp.ID}
		for _, k := range vp.Keys {
			p.Keys = append(p.Keys, agreement.Key{ID: k.ID, PublicKey: k.PublicKey, NotBefore: parse(k.NotBefore), NotAfter: parse(k.NotAfter)})
		}
		a.Parties = append(a.Parties, p)
	}
	return a
}

// feeds is the caller-side state of a vector: every accepted entry by
// sender and seq.
type feeds map[string][]verifier.FeedState

func newFeeds(tb testing.TB, raws map[string][][]byte) feeds {
	tb.Helper()
	f := feeds{}
	for sender, entries := range raws {
		for _, raw := range entries {
			p, err := envelope.Parse(raw)
			if err != nil {
				tb.Fatalf("feed of %s: %v", sender, err)
			}
			f[sender] = append(f[sender], verifier.FeedState{
				Seq: p.Statement.GetHeader().GetSeq(), Digest: p.Digest, PayloadDigest: p.PayloadDigest, Raw: raw,
			})
		}
	}
	return f
}

func (f feeds) head(sender string) verifier.FeedState {
	if s := f[sender]; len(s) > 0 {
		return s[len(s)-1]
	}
	return verifier.FeedState{}
}

func (f feeds) lookup(sender string, seq uint64) (verifier.FeedState, bool) {
	if s := f[sender]; seq >= 1 && seq <= uint64(len(s)) {
		return s[seq-1], true
	}
	return verifier.FeedState{}, false
}

func readVectors(tb testing.TB) map[string]*vector {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatal("no vectors in testdata; run go test -run TestVectorsUpToDate -update")
	}
	vs := map[string]*vector{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		v := new(vector)
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			tb.Fatalf("%s: %v", file, err)
		}
		vs[strings.TrimSuffix(filepath.Base(file), ".json")] = v
	}
	return vs
}

// TestVectors runs Check on every vector file.
func TestVectors(t *testing.T) {
	vs := readVectors(t)
	names := make([]string, 0, len(vs))
	for name := range vs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		vec := vs[name]
		t.Run(name, func(t *testing.T) {
			v, err := verifier.New(vec.Agreement.agreement(t))
			if err != nil {
				t.Fatal(err)
			}
			f := newFeeds(t, vec.Feeds)
			res, err := v.Check(vec.Envelope, f.head, f.lookup)
			if vec.Want.Error != "" {
				want, ok := sentinels[vec.Want.Error]
				if !ok {
					t.Fatalf("vector wants unknown error %q", vec.Want.Error)
				}
				if !errors.Is(err, want) {
					t.Fatalf("got error %v, want %s", err, vec.Want.Error)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want outcome %s", err, vec.Want.Outcome)
			}
			if got := res.Outcome.String(); got != vec.Want.Outcome {
				t.Errorf("got outcome %s, want %s", got, vec.Want.Outcome)
			}
			if res.KeyID != vec.Want.KeyID {
				t.Errorf("got key id %s, want %s", res.KeyID, vec.Want.KeyID)
			}
			if !bytes.Equal(res.Parsed.Raw, vec.Envelope) {
				t.Errorf("got Parsed.Raw %x, want the checked envelope", res.Parsed.Raw)
			}
		})
	}
}

// TestVectorsUpToDate checks that testdata holds exactly what the generator
// makes, or rewrites it with -update.
func TestVectorsUpToDate(t *testing.T) {
	gen := generateVectors(t)
	if *update {
		old, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range gen {
			if err := os.WriteFile(filepath.Join("testdata", name+".json"), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	if len(files) != len(gen) {
		t.Errorf("got %d vector files, want %d; run go test ./verifier -run TestVectorsUpToDate -update", len(files), len(gen))
	}
	for name, want := range gen {
		got, err := os.ReadFile(filepath.Join("testdata", name+".json"))
		if err != nil {
			t.Errorf("%v; run go test ./verifier -run TestVectorsUpToDate -update", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/%s.json differs from the generator's output; run go test ./verifier -run TestVectorsUpToDate -update", name)
		}
	}
}

// vectorKeys are the deterministic keys of the vectors, by name.
type vectorSigner struct {
	name   string
	id     string
	pub    ed25519.PublicKey
	signer signature.Signer
}

func newVectorSigner(tb testing.TB, name string, seed byte) vectorSigner {
	tb.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	s, err := keys.NewSigner(priv)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := keys.KeyID(priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return vectorSigner{name: name, id: id, pub: priv.Public().(ed25519.PublicKey), signer: s}
}

func (s vectorSigner) key(tb testing.TB, notBefore, notAfter string) vectorKey {
	tb.Helper()
	pem, err := keys.MarshalPublicPEM(s.pub)
	if err != nil {
		tb.Fatal(err)
	}
	return vectorKey{ID: s.id, PublicKey: string(pem), NotBefore: notBefore, NotAfter: notAfter}
}

func (s vectorSigner) sign(tb testing.TB, st *parleyv1.Statement) []byte {
	tb.Helper()
	raw, err := envelope.Sign(context.Background(), st, s.signer, s.id)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// vectorFixture is the scenario shared by all vectors.
type vectorFixture struct {
	agreement vectorAgreement
	alpha1    vectorSigner // alpha's key for 2026, expired at 2027-01-01
	alpha2    vectorSigner // alpha's key from 2027-01-01
	bravo     vectorSigner
	outsider  vectorSigner // a key of no party
	alpha     [][]byte     // alpha's feed, entries 1 to 3
	bravo1    []byte       // bravo's entry 1
}

const vectorAgreementID = "parley-vectors"

// issuedAt is when the vectors' entry seq is issued.
func issuedAt(seq uint64) *timestamppb.Timestamp {
	return timestamppb.New(time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Hour))
}

func header(sender string, seq uint64, prev []byte) *parleyv1.Header {
	return &parleyv1.Header{AgreementId: vectorAgreementID, Sender: sender, Seq: seq, Prev: prev, IssuedAt: issuedAt(seq)}
}

func notification(designation string, start time.Time) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: &parleyv1.ActivityNotification{
		Designation: designation,
		Type:        parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
		Start:       timestamppb.New(start),
		End:         timestamppb.New(start.Add(10 * 24 * time.Hour)),
		Area:        &parleyv1.Area{PlaceNames: []string{"Training area North"}},
		Forces:      &parleyv1.Forces{Troops: 9000, BattleTanks: 120},
	}}}
}

func nilCalendar(year uint32) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_Calendar{Calendar: &parleyv1.AnnualCalendar{Year: year, NilCalendar: true}}}
}

func receipt(acks ...*parleyv1.Acknowledgement) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{Acks: acks}}}
}

func ack(sender string, seq uint64, raw []byte, at *timestamppb.Timestamp) *parleyv1.Acknowledgement {
	d := envelope.Digest(raw)
	return &parleyv1.Acknowledgement{Sender: sender, Seq: seq, Digest: d[:], ReceivedAt: at}
}

func digest(raw []byte) []byte {
	d := envelope.Digest(raw)
	return d[:]
}

func newVectorFixture(tb testing.TB) *vectorFixture {
	tb.Helper()
	f := &vectorFixture{
		alpha1:   newVectorSigner(tb, "alpha-2026", 0xa1),
		alpha2:   newVectorSigner(tb, "alpha-2027", 0xa2),
		bravo:    newVectorSigner(tb, "bravo", 0xb1),
		outsider: newVectorSigner(tb, "outsider", 0xee),
	}
	f.agreement = vectorAgreement{ID: vectorAgreementID, Parties: []vectorParty{
		{ID: "alpha", Keys: []vectorKey{
			f.alpha1.key(tb, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
			f.alpha2.key(tb, "2027-01-01T00:00:00Z", ""),
		}},
		{ID: "bravo", Keys: []vectorKey{f.bravo.key(tb, "2026-01-01T00:00:00Z", "")}},
	}}
	exercise := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	f.bravo1 = f.bravo.sign(tb, &parleyv1.Statement{Header: header("bravo", 1, nil), Body: notification("Southern Gate 2027", exercise)})
	a1 := f.alpha2.sign(tb, &parleyv1.Statement{Header: header("alpha", 1, nil), Body: notification("Northern Shield 2027", exercise)})
	a2 := f.alpha2.sign(tb, &parleyv1.Statement{Header: header("alpha", 2, digest(a1)), Body: nilCalendar(2028)})
	a3 := f.alpha2.sign(tb, &parleyv1.Statement{Header: header("alpha", 3, digest(a2)), Body: receipt(ack("bravo", 1, f.bravo1, issuedAt(2)))})
	f.alpha = [][]byte{a1, a2, a3}
	return f
}

// generateVectors returns every vector file's bytes by vector name.
func generateVectors(tb testing.TB) map[string][]byte {
	tb.Helper()
	f := newVectorFixture(tb)
	alpha := func(n int) map[string][][]byte {
		return map[string][][]byte{"alpha": f.alpha[:n], "bravo": {f.bravo1}}
	}
	stmt := func(raw []byte) *parleyv1.Statement {
		p, err := envelope.Parse(raw)
		if err != nil {
			tb.Fatal(err)
		}
		return p.Statement
	}
	resign := func(s vectorSigner, raw []byte, edit func(*parleyv1.Statement)) []byte {
		st := stmt(raw)
		edit(st)
		return s.sign(tb, st)
	}
	reencode := func(raw []byte, edit func(*parleyv1.Envelope)) []byte {
		p, err := envelope.Parse(raw)
		if err != nil {
			tb.Fatal(err)
		}
		edit(p.Envelope)
		out, err := proto.MarshalOptions{Deterministic: true}.Marshal(p.Envelope)
		if err != nil {
			tb.Fatal(err)
		}
		return out
	}
	accepted := func(keyID string) vectorWant { return vectorWant{Outcome: "accepted", KeyID: keyID} }
	fails := func(name string) vectorWant { return vectorWant{Error: name} }

	vs := map[string]vector{
		"accept": {
			Description: "alpha's entry 3 (a receipt) extends alpha's feed of 2 entries",
			Feeds:       alpha(2), Envelope: f.alpha[2], Want: accepted(f.alpha2.id),
		},
		"accept_first": {
			Description: "alpha's entry 1 starts alpha's empty feed",
			Feeds:       alpha(0), Envelope: f.alpha[0], Want: accepted(f.alpha2.id),
		},
		"duplicate": {
			Description: "alpha's entry 2 again, byte for byte",
			Feeds:       alpha(3), Envelope: f.alpha[1],
			Want: vectorWant{Outcome: "duplicate", KeyID: f.alpha2.id},
		},
		"duplicate_resigned": {
			Description: "alpha's entry 2 with an extra signature by a key of no party: another envelope digest, the same statement",
			Feeds:       alpha(3),
			Envelope: reencode(f.alpha[1], func(e *parleyv1.Envelope) {
				sig, err := f.outsider.signer.SignMessage(bytes.NewReader(envelope.PAE(e.PayloadType, e.Payload)))
				if err != nil {
					tb.Fatal(err)
				}
				e.Signatures = append(e.Signatures, &parleyv1.Signature{Keyid: f.outsider.id, Sig: sig})
			}),
			Want: vectorWant{Outcome: "duplicate", KeyID: f.alpha2.id},
		},
		"equivocation": {
			Description: "a second, different entry 2 of alpha (a nil calendar for 2029 instead of 2028)",
			Feeds:       alpha(3),
			Envelope:    resign(f.alpha2, f.alpha[1], func(st *parleyv1.Statement) { st.Body = nilCalendar(2029) }),
			Want:        fails("ErrEquivocation"),
		},
		"gap": {
			Description: "alpha's entry 3 while alpha's feed has only entry 1 (want 2)",
			Feeds:       alpha(1), Envelope: f.alpha[2], Want: fails("ErrGap"),
		},
		"wrong_prev": {
			Description: "an entry 3 of alpha whose prev is the digest of entry 1, not 2",
			Feeds:       alpha(2),
			Envelope:    resign(f.alpha2, f.alpha[2], func(st *parleyv1.Statement) { st.Header.Prev = digest(f.alpha[0]) }),
			Want:        fails("ErrWrongPrev"),
		},
		"wrong_agreement": {
			Description: "alpha's entry 1 made under another agreement id",
			Feeds:       alpha(0),
			Envelope:    resign(f.alpha2, f.alpha[0], func(st *parleyv1.Statement) { st.Header.AgreementId = "another-agreement" }),
			Want:        fails("ErrWrongAgreement"),
		},
		"unknown_sender": {
			Description: "an entry 1 from zulu, who is not a party, signed by zulu's key",
			Feeds:       alpha(0),
			Envelope:    resign(f.outsider, f.alpha[0], func(st *parleyv1.Statement) { st.Header.Sender = "zulu" }),
			Want:        fails("ErrUnknownSender"),
		},
		"bad_signature": {
			Description: "alpha's entry 3 with one bit of its signature flipped",
			Feeds:       alpha(2),
			Envelope:    reencode(f.alpha[2], func(e *parleyv1.Envelope) { e.Signatures[0].Sig[7] ^= 0x10 }),
			Want:        fails("ErrBadSignature"),
		},
		"unknown_key": {
			Description: "alpha's entry 3 signed by a key that is not alpha's",
			Feeds:       alpha(2),
			Envelope:    f.outsider.sign(tb, stmt(f.alpha[2])),
			Want:        fails("ErrBadSignature"),
		},
		"key_not_valid": {
			Description: "alpha's entry 3 signed with alpha's 2026 key, which expired before issued_at",
			Feeds:       alpha(2),
			Envelope:    f.alpha1.sign(tb, stmt(f.alpha[2])),
			Want:        fails("ErrKeyNotValid"),
		},
		"invalid": {
			Description: "an entry 3 of alpha with a notification that ends before it starts",
			Feeds:       alpha(2),
			Envelope: resign(f.alpha2, f.alpha[2], func(st *parleyv1.Statement) {
				st.Body = notification("Backwards 2027", time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC))
				n := st.Body.GetNotification()
				n.Start, n.End = n.End, n.Start
			}),
			Want: fails("ErrInvalid"),
		},
		"self_receipt": {
			Description: "an entry 3 of alpha that is a receipt for alpha's own entry 1",
			Feeds:       alpha(2),
			Envelope: resign(f.alpha2, f.alpha[2], func(st *parleyv1.Statement) {
				st.Body = receipt(ack("alpha", 1, f.alpha[0], issuedAt(1)))
			}),
			Want: fails("ErrInvalid"),
		},
		"non_canonical": {
			Description: "alpha's entry 3 with an unknown field appended to the envelope",
			Feeds:       alpha(2),
			Envelope:    append(bytes.Clone(f.alpha[2]), protowire.AppendVarint(protowire.AppendTag(nil, 15, protowire.VarintType), 1)...),
			Want:        fails("ErrNonCanonical"),
		},
	}
	out := map[string][]byte{}
	for name, v := range vs {
		v.Agreement = f.agreement
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		out[name] = append(data, '\n')
	}
	return out
}
