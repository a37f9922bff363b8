package verifier_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"sort"
	"time"

	"github.com/parley-dev/parley/verifier"
	"testing"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/keys"
)

func BenchmarkZParse(b *testing.B) {
	vec := readVectors(b)["accept"]
	for b.Loop() {
		envelope.Parse(vec.Envelope)
	}
}
func BenchmarkZValidate(b *testing.B) {
	vec := readVectors(b)["accept"]
	p, _ := envelope.Parse(vec.Envelope)
	v, _ := protovalidate.New()
	for b.Loop() {
		if err := v.Validate(p.Statement); err != nil {
			b.Fatal(err)
		}
	}
}
func BenchmarkZValidateNow(b *testing.B) {
	vec := readVectors(b)["accept"]
	p, _ := envelope.Parse(vec.Envelope)
	v, _ := protovalidate.New()
	for b.Loop() {
		if err := v.Validate(p.Statement, protovalidate.WithNowFunc(func() *timestamppb.Timestamp { return p.Statement.Header.IssuedAt })); err != nil {
			b.Fatal(err)
		}
	}
}
func BenchmarkZSigstore(b *testing.B) {
	vec := readVectors(b)["accept"]
	p, _ := envelope.Parse(vec.Envelope)
	pub, _ := keys.ParsePublicPEM([]byte(vec.Agreement.Parties[0].Keys[1].PublicKey))
	sv, _ := keys.LoadVerifier(pub)
	pae := envelope.PAE(p.Envelope.PayloadType, p.Envelope.Payload)
	for b.Loop() {
		if err := sv.VerifySignature(bytes.NewReader(p.Envelope.Signatures[0].Sig), bytes.NewReader(pae)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestZRatio(t *testing.T) {
	vec := readVectors(t)["accept"]
	v, _ := verifierNew(t, vec)
	f := newFeeds(t, vec.Feeds)
	p, _ := envelope.Parse(vec.Envelope)
	pub, _ := keys.ParsePublicPEM([]byte(vec.Agreement.Parties[0].Keys[1].PublicKey))
	pae := envelope.PAE(p.Envelope.PayloadType, p.Envelope.Payload)
	sig := p.Envelope.Signatures[0].Sig
	var ratios, checks, raws []float64
	for r := 0; r < 400; r++ {
		const n = 60
		t0 := time.Now()
		for i := 0; i < n; i++ {
			v.Check(vec.Envelope, f.head, f.lookup)
		}
		t1 := time.Now()
		for i := 0; i < n; i++ {
			ed25519.Verify(pub.(ed25519.PublicKey), pae, sig)
		}
		t2 := time.Now()
		c, e := float64(t1.Sub(t0))/n, float64(t2.Sub(t1))/n
		ratios = append(ratios, e/c)
		checks = append(checks, c)
		raws = append(raws, e)
	}
	sort.Float64s(ratios)
	sort.Float64s(checks)
	sort.Float64s(raws)
	t.Logf("ratio raw/check: p25 %.3f median %.3f p75 %.3f; check min %.0f med %.0f ns; raw min %.0f med %.0f ns",
		ratios[100], ratios[200], ratios[300], checks[0], checks[200], raws[0], raws[200])
}

func verifierNew(t testing.TB, vec *vector) (*verifier.Verifier, error) {
	return verifier.New(vec.Agreement.agreement(t))
}

func TestZValidateParts(t *testing.T) {
	vec := readVectors(t)["accept"]
	p, _ := envelope.Parse(vec.Envelope)
	v, _ := protovalidate.New(protovalidate.WithMessages(p.Statement))
	measure := func(name string, m proto.Message) {
		best := time.Duration(1 << 62)
		for r := 0; r < 20; r++ {
			t0 := time.Now()
			for i := 0; i < 2000; i++ {
				v.Validate(m)
			}
			best = min(best, time.Since(t0)/2000)
		}
		t.Logf("%s: %v", name, best)
	}
	measure("statement", p.Statement)
	measure("header", p.Statement.Header)
	measure("body", p.Statement.Body)
	measure("receipt", p.Statement.Body.GetReceipt())
	measure("ack", p.Statement.Body.GetReceipt().Acks[0])
	best := time.Duration(1 << 62)
	for r := 0; r < 20; r++ {
		t0 := time.Now()
		for i := 0; i < 2000; i++ {
			envelope.Parse(vec.Envelope)
		}
		best = min(best, time.Since(t0)/2000)
	}
	t.Logf("parse: %v", best)
}

func TestZParseParts(t *testing.T) {
	vec := readVectors(t)["accept"]
	p, _ := envelope.Parse(vec.Envelope)
	raw := vec.Envelope
	um := proto.UnmarshalOptions{DiscardUnknown: true}
	m := proto.MarshalOptions{Deterministic: true}
	measure := func(name string, f func()) {
		best := time.Duration(1 << 62)
		for r := 0; r < 20; r++ {
			t0 := time.Now()
			for i := 0; i < 2000; i++ {
				f()
			}
			best = min(best, time.Since(t0)/2000)
		}
		t.Logf("%s: %v", name, best)
	}
	measure("unmarshal env", func() { um.Unmarshal(raw, new(parleyv1.Envelope)) })
	measure("unmarshal st", func() { um.Unmarshal(p.Envelope.Payload, new(parleyv1.Statement)) })
	measure("marshal env", func() { m.Marshal(p.Envelope) })
	measure("marshal st", func() { m.Marshal(p.Statement) })
	measure("size st", func() { m.Size(p.Statement) })
	measure("sha raw", func() { sha256.Sum256(raw) })
	measure("parse", func() { envelope.Parse(raw) })
}
