package envelope_test

import (
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// walkedTypes are the message types whose canonical check the fuzz target
// holds to the reference: every message of package parley.v1 that the
// walk handles. Envelope and Statement come first.
func walkedTypes(tb testing.TB) []protoreflect.MessageType {
	tb.Helper()
	types := []protoreflect.MessageType{
		(&parleyv1.Envelope{}).ProtoReflect().Type(),
		(&parleyv1.Statement{}).ProtoReflect().Type(),
	}
	for _, fd := range []protoreflect.FileDescriptor{
		parleyv1.File_parley_v1_envelope_proto, parleyv1.File_parley_v1_statement_proto,
		parleyv1.File_parley_v1_findings_proto, parleyv1.File_parley_v1_services_proto,
	} {
		for i := range fd.Messages().Len() {
			md := fd.Messages().Get(i)
			if md.FullName() == types[0].Descriptor().FullName() || md.FullName() == types[1].Descriptor().FullName() || !envelope.Walked(md) {
				continue
			}
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
			if err != nil {
				tb.Fatal(err)
			}
			types = append(types, mt)
		}
	}
	return types
}

// TestCanonicalSchema checks that the walk handles Envelope, Statement and
// what they contain (a schema change that needs the slower re-encoding
// fails here), and that it covers a message mixing a oneof with other
// fields, which the runtime writes oneof last.
func TestCanonicalSchema(t *testing.T) {
	for _, m := range []proto.Message{&parleyv1.Envelope{}, &parleyv1.Statement{}, &parleyv1.SubscribeResponse{}} {
		if md := m.ProtoReflect().Descriptor(); !envelope.Walked(md) {
			t.Errorf("%s: checked by re-encoding, want the walk", md.FullName())
		}
	}
	if n := len(walkedTypes(t)); n < 20 {
		t.Errorf("the walk handles %d message types of parley.v1, want most of them", n)
	}
}

// canonicalSeeds are canonical encodings of each body kind, and of a
// message with a oneof after other fields.
func canonicalSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	ts := timestamppb.New(time.Date(2027, 3, 1, 0, 0, 0, 5, time.UTC))
	neg := &timestamppb.Timestamp{Seconds: -62135596800, Nanos: 0}
	hdr := &parleyv1.Header{AgreementId: "a", Sender: "alpha", Seq: 7, Prev: make([]byte, 32), IssuedAt: ts}
	area := &parleyv1.Area{PlaceNames: []string{"x", ""}, Polygon: []*parleyv1.LatLng{{Lat: -1.5, Lng: math.Copysign(0, -1)}, {}}, RadiusKm: 2}
	bodies := []*parleyv1.Body{
		{Kind: &parleyv1.Body_Notification{Notification: testStatement().GetBody().GetNotification()}},
		{Kind: &parleyv1.Body_Amendment{Amendment: &parleyv1.Amendment{TargetSeq: 1, Activity: &parleyv1.ActivityNotification{Type: parleyv1.ActivityType(-3), Area: area}}}},
		{Kind: &parleyv1.Body_Cancellation{Cancellation: &parleyv1.Cancellation{}}},
		{Kind: &parleyv1.Body_Calendar{Calendar: &parleyv1.AnnualCalendar{Year: math.MaxUint32, NilCalendar: true, Activities: []*parleyv1.CalendarEntry{{}, {Designation: "d"}}}}},
		{Kind: &parleyv1.Body_Invitation{Invitation: &parleyv1.ObservationInvitation{Invited: []string{"b", "c"}, ReplyBy: neg}}},
		{Kind: &parleyv1.Body_ConsultationRequest{ConsultationRequest: &parleyv1.ConsultationRequest{Kind: parleyv1.ConsultationKind(math.MinInt32), Area: area}}},
		{Kind: &parleyv1.Body_ConsultationResponse{ConsultationResponse: &parleyv1.ConsultationResponse{RequestSeq: math.MaxUint64}}},
		{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{{Sender: "b", Seq: 1, Digest: make([]byte, 32), ReceivedAt: ts}, {}}}}},
		{Kind: &parleyv1.Body_Launch{Launch: &parleyv1.LaunchNotification{MissileClass: 2, LaunchArea: &parleyv1.Area{}, ImpactArea: area}}},
		{},
	}
	var seeds [][]byte
	for _, body := range bodies {
		seeds = append(seeds, mustMarshal(tb, &parleyv1.Statement{Header: hdr, Body: body}))
	}
	seeds = append(seeds, mustMarshal(tb, &parleyv1.SubscribeResponse{
		Kind: &parleyv1.SubscribeResponse_Finding{Finding: &parleyv1.Finding{Rule: "r", At: ts}}, At: ts}))
	return seeds
}

// padded is the varint encoding of v one byte longer than it need be.
func padded(v uint64) []byte {
	b := protowire.AppendVarint(nil, v)
	b[len(b)-1] |= 0x80
	return append(b, 0)
}

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// checkCanonical fails t if the walk and the reference disagree on raw as
// a message of type mt (when raw unmarshals at all), and returns the
// verdict.
func checkCanonical(t *testing.T, mt protoreflect.MessageType, raw []byte) (canonical, decodes bool) {
	t.Helper()
	m := mt.New().Interface()
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, m); err != nil {
		return false, false
	}
	got, want := envelope.Canonical(m, raw), envelope.Reencodes(m, raw)
	if got != want {
		t.Fatalf("%s %x: walk says canonical %v, re-encoding says %v", mt.Descriptor().FullName(), raw, got, want)
	}
	return got, true
}

// TestCanonicalNearMisses holds the walk to the reference on canonical
// statements and on re-encodings of them that decode to the same
// statement, all of which must be refused.
func TestCanonicalNearMisses(t *testing.T) {
	st := (&parleyv1.Statement{}).ProtoReflect().Type()
	good := mustMarshal(t, testStatement())
	hdr := mustMarshal(t, testStatement().GetHeader())
	body := mustMarshal(t, testStatement().GetBody())
	rec := func(num protowire.Number, b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	// header is the test statement's header with the given sender and seq
	// records.
	h := testStatement().GetHeader()
	header := func(sender, seq []byte) []byte {
		return cat(rec(1, []byte(h.AgreementId)), sender, seq, rec(5, mustMarshal(t, h.IssuedAt)))
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	seq := func(v uint64) []byte { return varint(3, v) }
	tests := []struct {
		name string
		raw  []byte
		want bool
	}{
		{"canonical", good, true},
		{"fields swapped", cat(rec(2, body), rec(1, hdr)), false},
		{"header twice", cat(rec(1, hdr), rec(1, hdr), rec(2, body)), false},
		{"unknown field", cat(good, protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1)), false},
		{"known number, wrong wire type", cat(good, protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1)), false},
		{"padded tag", cat([]byte{0x8a, 0x00}, protowire.AppendVarint(nil, uint64(len(hdr))), hdr, rec(2, body)), false},
		{"padded length", cat([]byte{0x0a}, padded(uint64(len(hdr))), hdr, rec(2, body)), false},
		{"padded seq", cat(rec(1, header(rec(2, []byte(h.Sender)), cat(protowire.AppendTag(nil, 3, protowire.VarintType), padded(1)))), rec(2, body)), false},
		{"enum -1 in 10 bytes", cat(rec(1, hdr), rec(2, rec(1, varint(2, math.MaxUint64)))), true},
		{"enum -1 in 5 bytes", cat(rec(1, hdr), rec(2, rec(1, varint(2, math.MaxUint32)))), false},
		{"enum above 2^32", cat(rec(1, hdr), rec(2, rec(1, varint(2, 1<<32|1)))), false},
		{"bool 1", cat(rec(1, hdr), rec(2, rec(1, varint(13, 1)))), true},
		{"bool 2", cat(rec(1, hdr), rec(2, rec(1, varint(13, 2)))), false},
		{"uint32 above 2^32", cat(rec(1, hdr), rec(2, rec(1, rec(10, varint(1, 1<<32|1))))), false},
		{"header by hand", cat(rec(1, header(rec(2, []byte(h.Sender)), seq(1))), rec(2, body)), true},
		{"zero seq written", cat(rec(1, header(rec(2, []byte(h.Sender)), seq(0))), rec(2, body)), false},
		{"empty sender written", cat(rec(1, header(rec(2, nil), seq(1))), rec(2, body)), false},
		{"empty body", cat(rec(1, hdr), rec(2, nil)), true},
		{"two body kinds", cat(rec(1, hdr), rec(2, cat(rec(3, nil), rec(8, nil)))), false},
		{"body kind twice", cat(rec(1, hdr), rec(2, cat(rec(3, nil), rec(3, nil)))), false},
	}
	for _, s := range canonicalSeeds(t) {
		tests = append(tests, struct {
			name string
			raw  []byte
			want bool
		}{"seed", s, true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mt := st
			if tt.name == "seed" && len(tt.raw) > 0 && tt.raw[0] != 0x0a {
				mt = (&parleyv1.SubscribeResponse{}).ProtoReflect().Type()
			}
			got, ok := checkCanonical(t, mt, tt.raw)
			if !ok {
				t.Fatalf("%x does not decode", tt.raw)
			}
			if got != tt.want {
				t.Fatalf("got canonical %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzCanonical holds the wire-format walk that Parse uses to the
// reference check it replaced (re-encode deterministically, compare), on
// every message type of parley.v1 that the walk handles.
func FuzzCanonical(f *testing.F) {
	for _, s := range canonicalSeeds(f) {
		f.Add(s, uint8(1))
	}
	for i, alg := range []keys.Algorithm{keys.Ed25519, keys.ECDSAP256} {
		k := newTestKey(f, alg, byte(40+i))
		f.Add(sign(f, k, testStatement()), uint8(0))
	}
	types := walkedTypes(f)
	f.Fuzz(func(t *testing.T, raw []byte, which uint8) {
		checkCanonical(t, types[int(which)%len(types)], raw)
	})
}

// TestIsCanonical checks IsCanonical on the walk's path (a statement) and
// on the re-encoding fallback (a message with a map): a deterministic
// encoding is canonical, the same bytes with an unknown field are not.
func TestIsCanonical(t *testing.T) {
	st := &parleyv1.Statement{Header: &parleyv1.Header{AgreementId: "cbm-2027", Sender: "alpha", Seq: 3}}
	withMap, err := structpb.NewStruct(map[string]any{"b": 1, "a": "x", "c": true})
	if err != nil {
		t.Fatal(err)
	}
	if envelope.Walked(withMap.ProtoReflect().Descriptor()) {
		t.Fatal("google.protobuf.Struct is walked; the test needs a type checked by re-encoding")
	}
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 31, protowire.VarintType), 1)
	for _, m := range []proto.Message{st, withMap} {
		name := m.ProtoReflect().Descriptor().FullName()
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !envelope.IsCanonical(m, raw) {
			t.Errorf("%s: its deterministic encoding is not canonical", name)
		}
		if envelope.IsCanonical(m, append(raw, unknown...)) {
			t.Errorf("%s: the encoding with an unknown field is canonical", name)
		}
		// As a node uses it: on the encoding of a message decoded with the
		// unknown field kept, which encodes it again.
		kept := m.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(append(raw, unknown...), kept); err != nil {
			t.Fatal(err)
		}
		again, err := proto.MarshalOptions{Deterministic: true}.Marshal(kept)
		if err != nil {
			t.Fatal(err)
		}
		if envelope.IsCanonical(kept, again) {
			t.Errorf("%s: the encoding of a message holding an unknown field is canonical", name)
		}
	}
}
