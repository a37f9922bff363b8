package envelope_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// testKey is a signing key with its sigstore signer, verifier and key id.
type testKey struct {
	priv     crypto.Signer
	signer   signature.Signer
	verifier signature.Verifier
	id       string
}

func newTestKey(t testing.TB, alg keys.Algorithm, seed byte) testKey {
	t.Helper()
	var priv crypto.Signer
	if alg == keys.Ed25519 {
		priv = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	} else {
		var err error
		if priv, err = keys.Generate(alg); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := keys.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := keys.LoadVerifier(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	id, err := keys.KeyID(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, signer: signer, verifier: verifier, id: id}
}

func (k testKey) verifiers() map[string]signature.Verifier {
	return map[string]signature.Verifier{k.id: k.verifier}
}

func testStatement() *parleyv1.Statement {
	start := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	return &parleyv1.Statement{
		Header: &parleyv1.Header{
			AgreementId: "test-agreement",
			Sender:      "alpha",
			Seq:         1,
			IssuedAt:    timestamppb.New(start.Add(-60 * 24 * time.Hour)),
		},
		Body: &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: &parleyv1.ActivityNotification{
			Designation: "Northern Shield 2027",
			Type:        parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
			Start:       timestamppb.New(start),
			End:         timestamppb.New(start.Add(10 * 24 * time.Hour)),
			Area:        &parleyv1.Area{PlaceNames: []string{"Training area North"}},
			Forces:      &parleyv1.Forces{Troops: 9000, BattleTanks: 120},
		}}},
	}
}

func sign(t testing.TB, k testKey, st *parleyv1.Statement) []byte {
	t.Helper()
	raw, err := envelope.Sign(context.Background(), st, k.signer, k.id)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// marshal encodes an envelope deterministically, as Sign does.
func marshal(t testing.TB, env *parleyv1.Envelope) []byte {
	t.Helper()
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestPAE(t *testing.T) {
	for _, tt := range []struct {
		name, payloadType string
		payload           []byte
		want              string
	}{
		// The example of the DSSE protocol specification.
		{name: "spec", payloadType: "http://example.com/HelloWorld", payload: []byte("hello world"),
			want: "DSSEv1 29 http://example.com/HelloWorld 11 hello world"},
		{name: "empty", payloadType: "", payload: nil, want: "DSSEv1 0  0 "},
		{name: "parley", payloadType: envelope.PayloadType, payload: []byte{0, 1, ' '},
			want: "DSSEv1 44 " + envelope.PayloadType + " 3 \x00\x01 "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(envelope.PAE(tt.payloadType, tt.payload)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if got, want := envelope.PAE(tt.payloadType, tt.payload), dsse.PAE(tt.payloadType, tt.payload); !bytes.Equal(got, want) {
				t.Errorf("got %q, want %q (go-securesystemslib)", got, want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.Ed25519, keys.ECDSAP256} {
		t.Run(string(alg), func(t *testing.T) {
			k := newTestKey(t, alg, 1)
			st := testStatement()
			raw := sign(t, k, st)

			p, err := envelope.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.Raw, raw) {
				t.Errorf("got Raw %x, want %x", p.Raw, raw)
			}
			if got, want := p.Digest, sha256.Sum256(raw); got != want {
				t.Errorf("got digest %x, want %x", got, want)
			}
			if got, want := envelope.Digest(raw), p.Digest; got != want {
				t.Errorf("got Digest(raw) %x, want %x", got, want)
			}
			if got, want := p.PayloadDigest, sha256.Sum256(p.Envelope.Payload); got != want {
				t.Errorf("got payload digest %x, want %x", got, want)
			}
			if got := p.Envelope.PayloadType; got != envelope.PayloadType {
				t.Errorf("got payload type %q, want %q", got, envelope.PayloadType)
			}
			if !proto.Equal(p.Statement, st) {
				t.Errorf("got statement %v, want %v", p.Statement, st)
			}
			keyID, err := envelope.VerifySignature(p, k.verifiers())
			if err != nil {
				t.Fatal(err)
			}
			if keyID != k.id {
				t.Errorf("got key id %s, want %s", keyID, k.id)
			}
		})
	}
}

func TestSignDerivesKeyID(t *testing.T) {
	k := newTestKey(t, keys.Ed25519, 2)
	raw, err := envelope.Sign(context.Background(), testStatement(), k.signer, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Envelope.Signatures[0].Keyid; got != k.id {
		t.Errorf("got key id %s, want %s", got, k.id)
	}
}

func TestSignErrors(t *testing.T) {
	k := newTestKey(t, keys.Ed25519, 3)
	unknown := testStatement()
	unknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	huge := testStatement()
	huge.GetBody().GetNotification().Purpose = strings.Repeat("x", envelope.MaxSize)
	for _, tt := range []struct {
		name   string
		st     *parleyv1.Statement
		signer signature.Signer
		want   string
	}{
		{name: "no statement", st: nil, signer: k.signer, want: "no statement"},
		{name: "no signer", st: testStatement(), signer: nil, want: "no signer"},
		{name: "unknown field", st: unknown, signer: k.signer, want: "non-canonical"},
		{name: "too large", st: huge, signer: k.signer, want: "too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := envelope.Sign(context.Background(), tt.st, tt.signer, k.id)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	k := newTestKey(t, keys.Ed25519, 4)
	raw := sign(t, k, testStatement())
	good, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	// envWith returns a deterministic encoding of a modified copy of the good envelope.
	envWith := func(f func(*parleyv1.Envelope)) []byte {
		env := proto.Clone(good.Envelope).(*parleyv1.Envelope)
		f(env)
		return marshal(t, env)
	}
	// payloadWith re-encodes the good envelope around a different payload.
	payloadWith := func(payload []byte) []byte {
		return envWith(func(e *parleyv1.Envelope) { e.Payload = payload })
	}
	unknownField := protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7)
	dupType := protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), envelope.PayloadType)
	// A non-minimal varint: seq 1 encoded in two bytes.
	paddedSeq := func() []byte {
		h, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&parleyv1.Header{AgreementId: "a"})
		h = append(protowire.AppendTag(h, 3, protowire.VarintType), 0x81, 0x00)
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), h)
	}()
	stBytes := good.Envelope.Payload
	wrongWireType := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1)

	for _, tt := range []struct {
		name string
		raw  []byte
		want error
	}{
		{name: "oversize", raw: append(append([]byte{}, raw...), make([]byte, envelope.MaxSize)...), want: envelope.ErrTooLarge},
		{name: "garbage", raw: []byte{0xff, 0xff, 0xff}, want: envelope.ErrMalformed},
		{name: "truncated", raw: raw[:len(raw)-1], want: envelope.ErrMalformed},
		{name: "empty", raw: nil, want: envelope.ErrPayloadType},
		{name: "unknown field appended", raw: append(append([]byte{}, raw...), unknownField...), want: envelope.ErrNonCanonical},
		{name: "duplicate field", raw: append(append([]byte{}, raw...), dupType...), want: envelope.ErrNonCanonical},
		{name: "known field with wrong wire type", raw: append(append([]byte{}, raw...), wrongWireType...), want: envelope.ErrNonCanonical},
		{name: "fields reordered", raw: func() []byte {
			// payload_type first, then payload, then signatures.
			b := protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), envelope.PayloadType)
			b = protowire.AppendBytes(protowire.AppendTag(b, 1, protowire.BytesType), stBytes)
			for _, s := range good.Envelope.Signatures {
				sb, _ := proto.Marshal(s)
				b = protowire.AppendBytes(protowire.AppendTag(b, 3, protowire.BytesType), sb)
			}
			return b
		}(), want: envelope.ErrNonCanonical},
		{name: "unknown payload type", raw: envWith(func(e *parleyv1.Envelope) { e.PayloadType = "application/vnd.in-toto+json" }), want: envelope.ErrPayloadType},
		{name: "no signatures", raw: envWith(func(e *parleyv1.Envelope) { e.Signatures = nil }), want: envelope.ErrMalformed},
		{name: "five signatures", raw: envWith(func(e *parleyv1.Envelope) {
			for len(e.Signatures) < 5 {
				e.Signatures = append(e.Signatures, e.Signatures[0])
			}
		}), want: envelope.ErrMalformed},
		{name: "empty keyid", raw: envWith(func(e *parleyv1.Envelope) { e.Signatures[0].Keyid = "" }), want: envelope.ErrMalformed},
		{name: "empty sig", raw: envWith(func(e *parleyv1.Envelope) { e.Signatures[0].Sig = nil }), want: envelope.ErrMalformed},
		{name: "empty payload", raw: payloadWith(nil), want: envelope.ErrMalformed},
		{name: "payload not a statement", raw: payloadWith([]byte{0xff, 0xff}), want: envelope.ErrMalformed},
		{name: "payload with unknown field", raw: payloadWith(append(append([]byte{}, stBytes...), unknownField...)), want: envelope.ErrNonCanonical},
		{name: "payload with non-minimal varint", raw: payloadWith(paddedSeq), want: envelope.ErrNonCanonical},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := envelope.Parse(tt.raw)
			if !errors.Is(err, tt.want) {
				t.Errorf("got error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifySignatureErrors(t *testing.T) {
	k := newTestKey(t, keys.Ed25519, 5)
	other := newTestKey(t, keys.Ed25519, 6)
	ec := newTestKey(t, keys.ECDSAP256, 0)
	raw := sign(t, k, testStatement())
	good, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	// reparse re-encodes a modified copy of the envelope and parses it, so
	// that the tampering is canonical and only the signature can catch it.
	reparse := func(f func(*parleyv1.Envelope)) *envelope.Parsed {
		env := proto.Clone(good.Envelope).(*parleyv1.Envelope)
		f(env)
		p, err := envelope.Parse(marshal(t, env))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	otherStatement := testStatement()
	otherStatement.Header.Seq = 2
	otherPayload, err := proto.MarshalOptions{Deterministic: true}.Marshal(otherStatement)
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name      string
		p         *envelope.Parsed
		verifiers map[string]signature.Verifier
		want      error
	}{
		{name: "tampered payload", p: reparse(func(e *parleyv1.Envelope) { e.Payload = otherPayload }), verifiers: k.verifiers(), want: envelope.ErrBadSignature},
		{name: "tampered sig", p: reparse(func(e *parleyv1.Envelope) { e.Signatures[0].Sig[0] ^= 1 }), verifiers: k.verifiers(), want: envelope.ErrBadSignature},
		{name: "truncated sig", p: reparse(func(e *parleyv1.Envelope) { e.Signatures[0].Sig = e.Signatures[0].Sig[:10] }), verifiers: k.verifiers(), want: envelope.ErrBadSignature},
		{name: "key id of another key", p: good, verifiers: map[string]signature.Verifier{k.id: other.verifier}, want: envelope.ErrBadSignature},
		{name: "ecdsa verifier for ed25519 sig", p: good, verifiers: map[string]signature.Verifier{k.id: ec.verifier}, want: envelope.ErrBadSignature},
		{name: "unknown key", p: good, verifiers: other.verifiers(), want: envelope.ErrUnknownKey},
		{name: "no verifiers", p: good, verifiers: nil, want: envelope.ErrUnknownKey},
		{name: "nil parsed", p: nil, verifiers: k.verifiers(), want: envelope.ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := envelope.VerifySignature(tt.p, tt.verifiers)
			if !errors.Is(err, tt.want) {
				t.Errorf("got error %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifySignatureAnyKnown checks that one good signature by a known key
// is enough, whatever the other signatures are.
func TestVerifySignatureAnyKnown(t *testing.T) {
	k := newTestKey(t, keys.Ed25519, 7)
	other := newTestKey(t, keys.ECDSAP256, 0)
	good, err := envelope.Parse(sign(t, k, testStatement()))
	if err != nil {
		t.Fatal(err)
	}
	env := proto.Clone(good.Envelope).(*parleyv1.Envelope)
	env.Signatures = []*parleyv1.Signature{
		{Keyid: "unknown", Sig: []byte("x")},
		{Keyid: other.id, Sig: []byte("bad")},
		env.Signatures[0],
	}
	p, err := envelope.Parse(marshal(t, env))
	if err != nil {
		t.Fatal(err)
	}
	verifiers := map[string]signature.Verifier{k.id: k.verifier, other.id: other.verifier}
	got, err := envelope.VerifySignature(p, verifiers)
	if err != nil {
		t.Fatal(err)
	}
	if got != k.id {
		t.Errorf("got key id %s, want %s", got, k.id)
	}
}

// dsseVerifier adapts an Ed25519 public key to go-securesystemslib's
// dsse.Verifier.
type dsseVerifier struct {
	pub ed25519.PublicKey
	id  string
}

func (v dsseVerifier) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(v.pub, data, sig) {
		return errors.New("ed25519: invalid signature")
	}
	return nil
}

func (v dsseVerifier) KeyID() (string, error)   { return v.id, nil }
func (v dsseVerifier) Public() crypto.PublicKey { return v.pub }

// TestDSSEInterop checks that a Parley envelope verifies with an
// independent DSSE implementation.
func TestDSSEInterop(t *testing.T) {
	k := newTestKey(t, keys.Ed25519, 8)
	p, err := envelope.Parse(sign(t, k, testStatement()))
	if err != nil {
		t.Fatal(err)
	}
	toDSSE := func(p *envelope.Parsed) *dsse.Envelope {
		e := &dsse.Envelope{
			PayloadType: p.Envelope.PayloadType,
			Payload:     base64.StdEncoding.EncodeToString(p.Envelope.Payload),
		}
		for _, s := range p.Envelope.Signatures {
			e.Signatures = append(e.Signatures, dsse.Signature{KeyID: s.Keyid, Sig: base64.StdEncoding.EncodeToString(s.Sig)})
		}
		return e
	}
	ev, err := dsse.NewEnvelopeVerifier(dsseVerifier{pub: k.priv.Public().(ed25519.PublicKey), id: k.id})
	if err != nil {
		t.Fatal(err)
	}
	accepted, payload, err := ev.VerifyAndDecode(context.Background(), toDSSE(p))
	if err != nil {
		t.Fatalf("got error %v from dsse, want none", err)
	}
	if len(accepted) != 1 || accepted[0].KeyID != k.id {
		t.Errorf("got accepted keys %+v, want only %s", accepted, k.id)
	}
	if !bytes.Equal(payload, p.Envelope.Payload) {
		t.Errorf("got payload %x from dsse, want %x", payload, p.Envelope.Payload)
	}

	// And the other way round: dsse rejects a tampered Parley envelope.
	bad := toDSSE(p)
	bad.PayloadType = "application/vnd.parley.statement.v2+protobuf"
	if _, err := ev.Verify(context.Background(), bad); err == nil {
		t.Errorf("got no error from dsse for a changed payload type, want one")
	}

	// The other direction: an envelope made by go-securesystemslib's signer
	// and re-encoded as the DSSE protobuf message verifies here.
	es, err := dsse.NewEnvelopeSigner(dsseSigner{dsseVerifier: dsseVerifier{pub: k.priv.Public().(ed25519.PublicKey), id: k.id}, priv: k.priv.(ed25519.PrivateKey)})
	if err != nil {
		t.Fatal(err)
	}
	de, err := es.SignPayload(context.Background(), envelope.PayloadType, p.Envelope.Payload)
	if err != nil {
		t.Fatal(err)
	}
	env := &parleyv1.Envelope{PayloadType: de.PayloadType, Payload: mustB64(t, de.Payload)}
	for _, s := range de.Signatures {
		env.Signatures = append(env.Signatures, &parleyv1.Signature{Keyid: s.KeyID, Sig: mustB64(t, s.Sig)})
	}
	theirs, err := envelope.Parse(marshal(t, env))
	if err != nil {
		t.Fatal(err)
	}
	if theirs.PayloadDigest != p.PayloadDigest {
		t.Errorf("got payload digest %x, want %x", theirs.PayloadDigest, p.PayloadDigest)
	}
	if _, err := envelope.VerifySignature(theirs, k.verifiers()); err != nil {
		t.Errorf("got error %v for a go-securesystemslib envelope, want none", err)
	}
}

// dsseSigner adapts an Ed25519 private key to go-securesystemslib's
// dsse.Signer.
type dsseSigner struct {
	dsseVerifier
	priv ed25519.PrivateKey
}

func (s dsseSigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, data), nil
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParse checks that Parse never panics and that whatever it accepts is
// canonical: re-encoding the parsed envelope gives back the input bytes.
func FuzzParse(f *testing.F) {
	for i, alg := range []keys.Algorithm{keys.Ed25519, keys.ECDSAP256} {
		k := newTestKey(f, alg, byte(10+i))
		raw := sign(f, k, testStatement())
		f.Add(raw)
		f.Add(append(append([]byte{}, raw...), 0x98, 0x06, 0x01))
		f.Add(raw[:len(raw)/2])
		receipt, empty := testStatement(), testStatement()
		receipt.Body = &parleyv1.Body{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{}}}
		empty.Body = &parleyv1.Body{}
		f.Add(sign(f, k, receipt))
		f.Add(sign(f, k, empty))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := envelope.Parse(raw)
		if err != nil {
			if p != nil {
				t.Fatalf("got parsed envelope and error %v", err)
			}
			return
		}
		again := marshal(t, p.Envelope)
		if !bytes.Equal(again, raw) {
			t.Fatalf("accepted a non-canonical envelope: got %x, re-encodes to %x", raw, again)
		}
		payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(p.Statement)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(payload, p.Envelope.Payload) {
			t.Fatalf("accepted a non-canonical payload: got %x, re-encodes to %x", p.Envelope.Payload, payload)
		}
		if p.Digest != sha256.Sum256(raw) {
			t.Fatalf("got digest %x, want SHA-256 of the input", p.Digest)
		}
		h, ok := envelope.PeekHeader(raw)
		ph := p.Statement.GetHeader()
		if !ok || h.Sender != ph.GetSender() || h.Seq != ph.GetSeq() || !bytes.Equal(h.Prev, ph.GetPrev()) {
			t.Fatalf("PeekHeader: got %+v, %v; Parse read sender %q seq %d prev %x", h, ok, ph.GetSender(), ph.GetSeq(), ph.GetPrev())
		}
		if rh, ok := envelope.PeekRawHeader(raw); !ok || string(rh.Sender) != h.Sender || rh.Seq != h.Seq || !bytes.Equal(rh.Prev, h.Prev) {
			t.Fatalf("PeekRawHeader: got %+v, %v; PeekHeader read %+v", rh, ok, h)
		}
		if pl, ok := envelope.PeekPayload(raw); !ok || !bytes.Equal(pl, p.Envelope.Payload) {
			t.Fatalf("PeekPayload: got %x, %v; Parse read %x", pl, ok, p.Envelope.Payload)
		}
		// Parse does not require a body: one without a kind has none to peek.
		want := bodyKind(p.Statement.GetBody())
		if k, ok := envelope.PeekKind(raw); k != want || ok != (want != parleyv1.EntryKind_ENTRY_KIND_UNSPECIFIED) {
			t.Fatalf("PeekKind: got %v, %v; Parse read a body of kind %v", k, ok, want)
		}
	})
}

// bodyKind is the EntryKind of a decoded body: the field number of the
// oneof field it has set.
func bodyKind(b *parleyv1.Body) parleyv1.EntryKind {
	fd := b.ProtoReflect().WhichOneof(b.ProtoReflect().Descriptor().Oneofs().ByName("kind"))
	if fd == nil {
		return parleyv1.EntryKind_ENTRY_KIND_UNSPECIFIED
	}
	return parleyv1.EntryKind(fd.Number())
}

// TestEntryKindsAreBodyFields holds EntryKind to Body's oneof: a value for
// every kind a body can have, numbered as its field, and no other.
func TestEntryKindsAreBodyFields(t *testing.T) {
	fields := (&parleyv1.Body{}).ProtoReflect().Descriptor().Oneofs().ByName("kind").Fields()
	kinds := parleyv1.EntryKind(0).Descriptor().Values()
	if kinds.Len() != fields.Len()+1 {
		t.Fatalf("EntryKind has %d values, want one per Body kind (%d) and UNSPECIFIED", kinds.Len(), fields.Len())
	}
	for i := range fields.Len() {
		f := fields.Get(i)
		k := kinds.ByNumber(protoreflect.EnumNumber(f.Number()))
		if k == nil {
			t.Errorf("Body's %s (field %d) has no EntryKind", f.Name(), f.Number())
			continue
		}
		if want := "ENTRY_KIND_" + strings.ToUpper(string(f.Name())); string(k.Name()) != want {
			t.Errorf("EntryKind %d is %s, want %s for Body's %s", f.Number(), k.Name(), want, f.Name())
		}
	}
}

func TestPeekKind(t *testing.T) {
	k := newTestKey(t, keys.Ed25519, 31)
	st := testStatement()
	raw := sign(t, k, st)
	if got, ok := envelope.PeekKind(raw); !ok || got != bodyKind(st.GetBody()) || got == parleyv1.EntryKind_ENTRY_KIND_UNSPECIFIED {
		t.Fatalf("got %v, %v, want the kind of the body signed (%v)", got, ok, bodyKind(st.GetBody()))
	}
	st.Body = &parleyv1.Body{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{}}}
	if got, ok := envelope.PeekKind(sign(t, k, st)); !ok || got != parleyv1.EntryKind_ENTRY_KIND_RECEIPT {
		t.Fatalf("got %v, %v for a receipt, want ENTRY_KIND_RECEIPT", got, ok)
	}
	for _, bad := range [][]byte{nil, {0x0a}, {0x0a, 0x05, 0x0a}, raw[:len(raw)/3], {0x0a, 0x02, 0x12, 0x00}} {
		if got, ok := envelope.PeekKind(bad); ok {
			t.Errorf("PeekKind(%x) = %v, want not ok", bad, got)
		}
	}
}

func TestPeekHeader(t *testing.T) {
	k := newTestKey(t, keys.Ed25519, 30)
	st := testStatement()
	st.Header.Prev = bytes.Repeat([]byte{7}, 32)
	raw := sign(t, k, st)
	h, ok := envelope.PeekHeader(raw)
	if !ok || h.Sender != st.Header.Sender || h.Seq != st.Header.Seq || !bytes.Equal(h.Prev, st.Header.Prev) {
		t.Fatalf("got %+v, %v, want the header signed", h, ok)
	}
	for _, bad := range [][]byte{nil, {0x0a}, {0x0a, 0x05, 0x0a}, raw[:len(raw)/3]} {
		if h, ok := envelope.PeekHeader(bad); ok && h.Sender != "" {
			t.Errorf("PeekHeader(%x) = %+v, want not ok", bad, h)
		}
	}
}
