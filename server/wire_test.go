package server

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier/rules"
)

// readerSeeds returns encodings of statements of several kinds and shapes.
func readerSeeds(t testing.TB) [][]byte {
	t.Helper()
	at := time.Date(2027, 3, 1, 6, 30, 0, 123, time.UTC)
	header := func(seq uint64) *parleyv1.Header {
		return &parleyv1.Header{AgreementId: "test", Sender: "alpha", Seq: seq, Prev: make([]byte, 32), IssuedAt: timestamppb.New(at.Add(-50 * 24 * time.Hour))}
	}
	full := &parleyv1.ActivityNotification{
		Designation: "Northern Shield 2027", Type: parleyv1.ActivityType_ACTIVITY_TYPE_PARACHUTE_ASSAULT,
		Purpose: "training", ParticipatingStates: []string{"alpha", "bravo"}, HostState: "bravo", LevelOfCommand: "corps",
		Start: timestamppb.New(at), End: timestamppb.New(at.Add(240 * time.Hour)),
		Area:   &parleyv1.Area{PlaceNames: []string{"  Training Area North", "Lakeside", "lakeside"}, Polygon: []*parleyv1.LatLng{{Lat: 1, Lng: 2}}, RadiusKm: 3},
		Forces: &parleyv1.Forces{Troops: 9500, BattleTanks: 310, Acvs: 400, Artillery: 250, AtgmLaunchers: 7, CombatHelicopters: 12, FixedWingSorties: 220, AirborneTroops: 3000, AmphibiousTroops: 1},
		Alert:  true,
	}
	bodies := []*parleyv1.Body{
		{Kind: &parleyv1.Body_Notification{Notification: full}},
		{Kind: &parleyv1.Body_Notification{Notification: &parleyv1.ActivityNotification{Designation: "Bare"}}},
		{Kind: &parleyv1.Body_Notification{Notification: &parleyv1.ActivityNotification{}}},
		{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{
			{Sender: "bravo", Seq: 7, Digest: make([]byte, 32), ReceivedAt: timestamppb.New(at)},
			{Sender: "charlie", Seq: 1 << 40, Digest: []byte{1, 2, 3}, ReceivedAt: timestamppb.New(at.Add(time.Second))},
			{Sender: "bravo", Seq: 8, Digest: make([]byte, 32)},
		}}}},
		{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{}}},
		{Kind: &parleyv1.Body_Cancellation{Cancellation: &parleyv1.Cancellation{TargetSeq: 3}}},
	}
	var out [][]byte
	for i, b := range bodies {
		for _, st := range []*parleyv1.Statement{{Header: header(uint64(i + 1)), Body: b}, {Body: b}, {Header: &parleyv1.Header{Sender: "bravo"}, Body: b}} {
			raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, raw)
		}
	}
	return out
}

// checkReader holds statementReader to the reflective decoding of payload:
// whatever it reads compacts as the decoded statement does, and it reads
// every canonical notification and receipt (the entries a node logs).
func checkReader(t *testing.T, r *statementReader, payload []byte) {
	t.Helper()
	want := new(parleyv1.Statement)
	if err := proto.Unmarshal(payload, want); err != nil {
		return // the node decodes it in full and fails as before
	}
	got, ok := r.read(payload)
	kind := want.GetBody().GetKind()
	_, isNote := kind.(*parleyv1.Body_Notification)
	_, isReceipt := kind.(*parleyv1.Body_Receipt)
	if !ok {
		if (isNote || isReceipt) && envelope.IsCanonical(want, payload) {
			t.Fatalf("did not read a canonical %T statement: %x", kind, payload)
		}
		return
	}
	if !isNote && !isReceipt {
		t.Fatalf("read a %T statement, want only notifications and receipts", kind)
	}
	entry := func(st *parleyv1.Statement) rules.Entry {
		return rules.Compact(rules.Entry{Sender: st.GetHeader().GetSender(), Seq: st.GetHeader().GetSeq(), Statement: st})
	}
	if g, w := entry(got), entry(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("payload %x: read %+v (%+v %+v), want %+v (%+v %+v)", payload, g, g.Notification, g.Receipt, w, w.Notification, w.Receipt)
	}
}

func TestStatementReader(t *testing.T) {
	seeds := readerSeeds(t)
	var reused statementReader
	for i, payload := range seeds {
		checkReader(t, new(statementReader), payload)
		// Read after every other seed, so that nothing of one statement
		// is left in the next.
		for _, before := range seeds {
			reused.read(before)
			checkReader(t, &reused, payload)
		}
		if _, ok := new(statementReader).read(payload); !ok && i < 15 { // the cancellation's are the last three
			t.Errorf("seed %d (a notification or receipt) was not read", i)
		}
	}
	// Shapes read in full instead: a field twice, a wrong wire type.
	note := seeds[0]
	for name, payload := range map[string][]byte{
		"header twice":          append(append([]byte{}, note...), 0x0a, 0x00),
		"body of two fields":    {0x12, 0x04, 0x42, 0x00, 0x0a, 0x00},
		"seq as a length field": {0x0a, 0x02, 0x1a, 0x00, 0x12, 0x02, 0x42, 0x00},
		"designation not UTF-8": {0x12, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff},
	} {
		if _, ok := new(statementReader).read(payload); ok {
			t.Errorf("%s: read %x, want it left to the full decoding", name, payload)
		}
	}
}

func FuzzStatementReader(f *testing.F) {
	for _, s := range readerSeeds(f) {
		f.Add(s)
	}
	var reused statementReader
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkReader(t, new(statementReader), payload)
		checkReader(t, &reused, payload)
	})
}
