package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// testBodies are valid bodies of a few kinds.
func testBodies() map[string]*parleyv1.Body {
	start := timestamppb.New(time.Date(2027, 1, 10, 0, 0, 0, 0, time.UTC))
	end := timestamppb.New(time.Date(2027, 1, 13, 0, 0, 0, 0, time.UTC))
	return map[string]*parleyv1.Body{
		"notification": {Kind: &parleyv1.Body_Notification{Notification: &parleyv1.ActivityNotification{
			Designation: "Northern Shield", Type: parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
			Purpose: "training", ParticipatingStates: []string{"alpha", "bravo"}, Start: start, End: end,
			Area:   &parleyv1.Area{PlaceNames: []string{"Range 1"}, Polygon: []*parleyv1.LatLng{{Lat: 1, Lng: math.Copysign(0, -1)}}},
			Forces: &parleyv1.Forces{Troops: 13000, BattleTanks: 300},
			Stages: []*parleyv1.Stage{{Description: "deployment", Start: start, End: end}},
		}}},
		"consultation response": {Kind: &parleyv1.Body_ConsultationResponse{ConsultationResponse: &parleyv1.ConsultationResponse{
			Requester: "bravo", RequestSeq: 1, Explanation: "a routine exercise",
		}}},
		"receipt": {Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{
			{Sender: "bravo", Seq: 7, Digest: make([]byte, 32), ReceivedAt: start},
		}}}},
	}
}

// signingNode returns a node with just what signStatement uses.
func signingNode(t testing.TB) *Node {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadED25519Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := s.PublicKey()
	id, err := keys.KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return &Node{cfg: Config{Signer: s}, keyID: id}
}

// TestSignStatementMatchesEnvelope holds submit's signing, which does not
// parse the envelope it makes, to envelope.Sign and envelope.Parse: the same
// bytes, and the same Parsed.
func TestSignStatementMatchesEnvelope(t *testing.T) {
	n := signingNode(t)
	ctx := context.Background()
	for name, body := range testBodies() {
		for _, h := range []*parleyv1.Header{
			{AgreementId: "cbm-2027", Sender: "alpha", Seq: 1, IssuedAt: timestamppb.New(time.Date(2027, 1, 1, 0, 0, 0, 1, time.UTC))},
			{AgreementId: "cbm-2027", Sender: "alpha", Seq: 1 << 40, Prev: bytes.Repeat([]byte{0xab}, 32), IssuedAt: timestamppb.Now()},
		} {
			t.Run(name, func(t *testing.T) {
				bodyRaw, err := canonicalBody(body)
				if err != nil {
					t.Fatal(err)
				}
				got, err := n.signStatement(ctx, h, body, bodyRaw)
				if err != nil {
					t.Fatal(err)
				}
				want, err := envelope.Sign(ctx, &parleyv1.Statement{Header: h, Body: body}, n.cfg.Signer, n.keyID)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Raw, want) {
					t.Fatalf("got envelope %x, want envelope.Sign's %x", got.Raw, want)
				}
				p, err := envelope.Parse(want)
				if err != nil {
					t.Fatal(err)
				}
				if got.Digest != p.Digest || got.PayloadDigest != p.PayloadDigest {
					t.Fatalf("got digests %x, %x, want %x, %x", got.Digest, got.PayloadDigest, p.Digest, p.PayloadDigest)
				}
				if !proto.Equal(got.Envelope, p.Envelope) || !proto.Equal(got.Statement, p.Statement) {
					t.Fatalf("got %v, %v, want envelope.Parse's %v, %v", got.Envelope, got.Statement, p.Envelope, p.Statement)
				}
			})
		}
	}
}

// TestSubmitRefusesWhatParseRefuses checks that submit refuses, before
// signing, the bodies whose envelope envelope.Parse would refuse, with
// Parse's errors.
func TestSubmitRefusesWhatParseRefuses(t *testing.T) {
	field31 := []byte{0xf8, 0x01, 0x01} // field 31, varint 1
	for where, m := range map[string]func(b *parleyv1.Body) proto.Message{
		"body":                  func(b *parleyv1.Body) proto.Message { return b },
		"notification":          func(b *parleyv1.Body) proto.Message { return b.GetNotification() },
		"area (nested)":         func(b *parleyv1.Body) proto.Message { return b.GetNotification().GetArea() },
		"polygon[0] (list)":     func(b *parleyv1.Body) proto.Message { return b.GetNotification().GetArea().GetPolygon()[0] },
		"stages[0].start (wkt)": func(b *parleyv1.Body) proto.Message { return b.GetNotification().GetStages()[0].GetStart() },
	} {
		unknown := testBodies()["notification"]
		m(unknown).ProtoReflect().SetUnknown(field31)
		if _, err := canonicalBody(unknown); !errors.Is(err, envelope.ErrNonCanonical) {
			t.Errorf("body with an unknown field in %s: got %v, want ErrNonCanonical", where, err)
		}
	}
	receipt := testBodies()["receipt"]
	receipt.GetReceipt().GetAcks()[0].ProtoReflect().SetUnknown(field31)
	if _, err := canonicalBody(receipt); !errors.Is(err, envelope.ErrNonCanonical) {
		t.Errorf("receipt with an unknown field in acks[0]: got %v, want ErrNonCanonical", err)
	}
	big := testBodies()["notification"]
	big.GetNotification().Purpose = strings.Repeat("p", envelope.MaxSize)
	raw, err := canonicalBody(big)
	if err != nil {
		t.Fatal(err)
	}
	h := &parleyv1.Header{AgreementId: "cbm-2027", Sender: "alpha", Seq: 1, IssuedAt: timestamppb.Now()}
	if _, err := signingNode(t).signStatement(context.Background(), h, big, raw); !errors.Is(err, envelope.ErrTooLarge) {
		t.Fatalf("statement above the size limit: got %v, want ErrTooLarge", err)
	}
}

// TestSubmitRequestRules holds the validation interceptor's hand check of a
// SubmitRequest equal to protovalidate's, and checks its refusals are
// InvalidArgument naming the field.
func TestSubmitRequestRules(t *testing.T) {
	if n := (&parleyv1.SubmitRequest{}).ProtoReflect().Descriptor().Fields().Len(); n != 1 {
		t.Fatalf("SubmitRequest has %d fields, want 1: update submitRequestErr", n)
	}
	pv, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	invalid := testBodies()["notification"]
	invalid.GetNotification().Designation = ""
	tests := []struct {
		name  string
		req   *parleyv1.SubmitRequest
		field string // named in the refusal; "" if valid
	}{
		{"valid", &parleyv1.SubmitRequest{Body: testBodies()["notification"]}, ""},
		{"no body", &parleyv1.SubmitRequest{}, "body: required"},
		{"body without kind", &parleyv1.SubmitRequest{Body: &parleyv1.Body{}}, "body.kind"},
		{"invalid notification", &parleyv1.SubmitRequest{Body: invalid}, "body.notification.designation"},
	}
	validate := validateUnary(pv)
	info := &grpc.UnaryServerInfo{FullMethod: parleyv1.SubmissionService_Submit_FullMethodName}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := pv.Validate(tt.req)
			called := false
			_, err := validate(context.Background(), tt.req, info, func(context.Context, any) (any, error) { called = true; return nil, nil })
			if (err == nil) != (want == nil) || called != (err == nil) {
				t.Fatalf("got %v (handler called: %v), protovalidate says %v", err, called, want)
			}
			if err == nil {
				return
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("got %v, want InvalidArgument naming %s", err, tt.field)
			}
		})
	}
	// Other requests still go through protovalidate.
	_, err = validate(context.Background(), &parleyv1.SubmitEnvelopeRequest{}, &grpc.UnaryServerInfo{FullMethod: parleyv1.SubmissionService_SubmitEnvelope_FullMethodName},
		func(context.Context, any) (any, error) { return nil, nil })
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("SubmitEnvelope without envelope: got %v, want InvalidArgument", err)
	}
}

// TestCallLogger checks that successful calls are logged only at Debug and
// refusals at the library's levels, with the method, code and error.
func TestCallLogger(t *testing.T) {
	info := &grpc.UnaryServerInfo{FullMethod: parleyv1.SubmissionService_Submit_FullMethodName}
	refused := status.Error(codes.InvalidArgument, "bad body")
	for _, tt := range []struct {
		name  string
		level slog.Level
		err   error
		want  string // "" for no line
	}{
		{"ok at info", slog.LevelInfo, nil, ""},
		{"ok at debug", slog.LevelDebug, nil, "level=DEBUG msg=\"finished call\" protocol=grpc grpc.component=server grpc.service=parley.v1.SubmissionService grpc.method=Submit grpc.method_type=unary"},
		{"refused at info", slog.LevelInfo, refused, "level=INFO msg=\"finished call\""},
		{"refused at warn", slog.LevelWarn, refused, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := callLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level}))}
			_, err := l.unary(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, tt.err })
			if err != tt.err {
				t.Fatalf("got error %v, want the handler's %v", err, tt.err)
			}
			got := buf.String()
			if tt.want == "" {
				if got != "" {
					t.Fatalf("got %q, want no log line", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want it to contain %q", got, tt.want)
			}
			if tt.err != nil && (!strings.Contains(got, "grpc.code=InvalidArgument") || !strings.Contains(got, "bad body")) {
				t.Fatalf("got %q, want the code and the error", got)
			}
		})
	}
}

// BenchmarkSubmitSign measures what submit does per body outside and under
// the node's lock, before admission: the body's encoding and signing,
// against envelope.Sign followed by the parse admission did before.
func BenchmarkSubmitSign(b *testing.B) {
	n := signingNode(b)
	ctx := context.Background()
	body := testBodies()["notification"]
	h := &parleyv1.Header{AgreementId: "cbm-2027", Sender: "alpha", Seq: 12, Prev: make([]byte, 32), IssuedAt: timestamppb.Now()}
	b.Run("signStatement", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := canonicalBody(body)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := n.signStatement(ctx, h, body, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("envelope.Sign+Parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := envelope.Sign(ctx, &parleyv1.Statement{Header: h, Body: body}, n.cfg.Signer, n.keyID)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := envelope.Parse(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzCanonicalBody holds canonicalBody, which looks for unknown fields
// instead of decoding its encoding again, to the round trip that
// envelope.Parse makes of a signed body: it must refuse a body exactly when
// the round trip would not give back its encoding, and otherwise return an
// encoding that decodes to the body.
func FuzzCanonicalBody(f *testing.F) {
	for _, b := range testBodies() {
		raw, err := proto.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(append(raw, 0xf8, 0x01, 0x01))
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		b := new(parleyv1.Body)
		if proto.Unmarshal(wire, b) != nil { // gRPC's decoding: unknown fields kept
			return
		}
		raw, err := canonicalBody(b)
		want, werr := deterministic.Marshal(b)
		if werr != nil {
			if err == nil {
				t.Fatalf("canonicalBody took a body that doesn't encode: %v", werr)
			}
			return
		}
		again := new(parleyv1.Body)
		if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(want, again); err != nil {
			t.Fatalf("the deterministic encoding doesn't decode: %v", err)
		}
		round, _ := deterministic.Marshal(again)
		roundTrips := bytes.Equal(round, want)
		switch {
		case err != nil && roundTrips:
			t.Fatalf("canonicalBody refused a body whose encoding round-trips: %v", err)
		case err == nil && !roundTrips:
			t.Fatalf("canonicalBody took a body whose encoding doesn't round-trip")
		case err == nil && (!bytes.Equal(raw, want) || !proto.Equal(again, b)):
			t.Fatalf("canonicalBody's encoding %x doesn't decode to the body (want %x)", raw, want)
		case err != nil && !errors.Is(err, envelope.ErrNonCanonical) && !errors.Is(err, envelope.ErrMalformed):
			t.Fatalf("canonicalBody: got %v, want ErrNonCanonical or ErrMalformed", err)
		}
	})
}
