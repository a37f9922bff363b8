package verifier

import (
	"math"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// validNotification is a notification that uses every field.
func validNotification() *parleyv1.ActivityNotification {
	start := time.Date(2027, 1, 10, 0, 0, 0, 0, time.UTC)
	return &parleyv1.ActivityNotification{
		Designation:         "Northern Shield",
		Type:                parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
		Purpose:             "training",
		ParticipatingStates: []string{"alpha", "bravo"},
		HostState:           "alpha",
		LevelOfCommand:      "army corps",
		Start:               timestamppb.New(start),
		End:                 timestamppb.New(start.Add(72 * time.Hour)),
		Area: &parleyv1.Area{
			PlaceNames: []string{"Range 1"},
			Polygon:    []*parleyv1.LatLng{{Lat: 1, Lng: 2}, {Lat: 3, Lng: 4}, {Lat: 5, Lng: 6}},
			Centre:     &parleyv1.LatLng{Lat: -90, Lng: 180},
			RadiusKm:   20000,
		},
		Forces:     &parleyv1.Forces{Troops: 5000000, BattleTanks: 100000, Acvs: 200000, Artillery: 100000, AtgmLaunchers: 100000, CombatHelicopters: 20000, FixedWingSorties: 1000000, AirborneTroops: 1000000, AmphibiousTroops: 1000000},
		Formations: []*parleyv1.Formation{{Type: "brigade", Count: 10000}},
		Stages:     []*parleyv1.Stage{{Description: "deployment", Start: timestamppb.New(start), End: timestamppb.New(start)}},
		Alert:      true,
	}
}

// TestNotificationRulesMatchSchema holds notificationErr equal to
// protovalidate on the schema's rules, at and beyond every bound.
func TestNotificationRulesMatchSchema(t *testing.T) {
	pv, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	rep := strings.Repeat
	edit := func(f func(n *parleyv1.ActivityNotification)) *parleyv1.ActivityNotification {
		n := validNotification()
		f(n)
		return n
	}
	many := func(k int, s string) []string {
		out := make([]string, k)
		for i := range out {
			out[i] = s
		}
		return out
	}
	points := func(k int) []*parleyv1.LatLng {
		out := make([]*parleyv1.LatLng, k)
		for i := range out {
			out[i] = &parleyv1.LatLng{}
		}
		return out
	}
	tests := []struct {
		name string
		n    *parleyv1.ActivityNotification
	}{
		{"valid", validNotification()},
		{"minimal", &parleyv1.ActivityNotification{Designation: "x", Type: 6, Start: timestamppb.New(time.Unix(0, 0)), End: timestamppb.New(time.Unix(0, 1)), Area: &parleyv1.Area{PlaceNames: []string{"p"}}, Forces: &parleyv1.Forces{}}},
		{"empty designation", edit(func(n *parleyv1.ActivityNotification) { n.Designation = "" })},
		{"designation of 200", edit(func(n *parleyv1.ActivityNotification) { n.Designation = rep("é", 200) })},
		{"designation of 201", edit(func(n *parleyv1.ActivityNotification) { n.Designation = rep("x", 201) })},
		{"designation of 201 runes", edit(func(n *parleyv1.ActivityNotification) { n.Designation = rep("é", 201) })},
		{"type unspecified", edit(func(n *parleyv1.ActivityNotification) { n.Type = 0 })},
		{"type undefined", edit(func(n *parleyv1.ActivityNotification) { n.Type = 7 })},
		{"type negative", edit(func(n *parleyv1.ActivityNotification) { n.Type = -1 })},
		{"purpose of 2000", edit(func(n *parleyv1.ActivityNotification) { n.Purpose = rep("€", 2000) })},
		{"purpose of 2001", edit(func(n *parleyv1.ActivityNotification) { n.Purpose = rep("€", 2001) })},
		{"64 states", edit(func(n *parleyv1.ActivityNotification) { n.ParticipatingStates = many(64, "a") })},
		{"65 states", edit(func(n *parleyv1.ActivityNotification) { n.ParticipatingStates = many(65, "a") })},
		{"empty state", edit(func(n *parleyv1.ActivityNotification) { n.ParticipatingStates = []string{""} })},
		{"state of 100", edit(func(n *parleyv1.ActivityNotification) { n.ParticipatingStates = []string{rep("s", 100)} })},
		{"state of 101", edit(func(n *parleyv1.ActivityNotification) { n.ParticipatingStates = []string{rep("s", 101)} })},
		{"host of 65", edit(func(n *parleyv1.ActivityNotification) { n.HostState = rep("h", 65) })},
		{"level of 201", edit(func(n *parleyv1.ActivityNotification) { n.LevelOfCommand = rep("l", 201) })},
		{"no start", edit(func(n *parleyv1.ActivityNotification) { n.Start = nil })},
		{"no end", edit(func(n *parleyv1.ActivityNotification) { n.End = nil })},
		{"no area", edit(func(n *parleyv1.ActivityNotification) { n.Area = nil })},
		{"no forces", edit(func(n *parleyv1.ActivityNotification) { n.Forces = nil })},
		{"end at start", edit(func(n *parleyv1.ActivityNotification) { n.End = n.Start })},
		{"end a nanosecond after start", edit(func(n *parleyv1.ActivityNotification) {
			n.End = &timestamppb.Timestamp{Seconds: n.Start.Seconds, Nanos: n.Start.Nanos + 1}
		})},
		{"end with nanos out of range", edit(func(n *parleyv1.ActivityNotification) {
			n.End = &timestamppb.Timestamp{Seconds: n.Start.Seconds, Nanos: 1_500_000_000}
		})},
		{"start with negative nanos", edit(func(n *parleyv1.ActivityNotification) {
			n.Start = &timestamppb.Timestamp{Seconds: n.Start.Seconds, Nanos: -1}
		})},
		{"end beyond year 9999", edit(func(n *parleyv1.ActivityNotification) { n.End = &timestamppb.Timestamp{Seconds: 253402300800} })},
		{"start before year 1", edit(func(n *parleyv1.ActivityNotification) { n.Start = &timestamppb.Timestamp{Seconds: -62135596801} })},
		{"stage with invalid timestamps", edit(func(n *parleyv1.ActivityNotification) {
			n.Stages[0].Start = &timestamppb.Timestamp{Nanos: -7}
		})},
		{"end before start", edit(func(n *parleyv1.ActivityNotification) { n.Start, n.End = n.End, n.Start })},
		{"empty area", edit(func(n *parleyv1.ActivityNotification) { n.Area = &parleyv1.Area{} })},
		{"area: polygon of 2", edit(func(n *parleyv1.ActivityNotification) { n.Area = &parleyv1.Area{Polygon: points(2)} })},
		{"area: polygon of 3", edit(func(n *parleyv1.ActivityNotification) { n.Area = &parleyv1.Area{Polygon: points(3)} })},
		{"area: polygon of 257", edit(func(n *parleyv1.ActivityNotification) { n.Area = &parleyv1.Area{Polygon: points(257)} })},
		{"area: centre without radius", edit(func(n *parleyv1.ActivityNotification) { n.Area = &parleyv1.Area{Centre: &parleyv1.LatLng{}} })},
		{"area: radius without centre", edit(func(n *parleyv1.ActivityNotification) { n.Area = &parleyv1.Area{RadiusKm: 5} })},
		{"area: centre and radius", edit(func(n *parleyv1.ActivityNotification) {
			n.Area = &parleyv1.Area{Centre: &parleyv1.LatLng{}, RadiusKm: 0.5}
		})},
		{"area: negative radius", edit(func(n *parleyv1.ActivityNotification) { n.Area.RadiusKm = -0.1 })},
		{"area: radius above 20000", edit(func(n *parleyv1.ActivityNotification) { n.Area.RadiusKm = 20000.5 })},
		{"area: NaN radius", edit(func(n *parleyv1.ActivityNotification) { n.Area.RadiusKm = math.NaN() })},
		{"area: infinite radius", edit(func(n *parleyv1.ActivityNotification) { n.Area.RadiusKm = math.Inf(1) })},
		{"area: 65 places", edit(func(n *parleyv1.ActivityNotification) { n.Area.PlaceNames = many(65, "p") })},
		{"area: empty place", edit(func(n *parleyv1.ActivityNotification) { n.Area.PlaceNames = []string{""} })},
		{"area: place of 201", edit(func(n *parleyv1.ActivityNotification) { n.Area.PlaceNames = []string{rep("p", 201)} })},
		{"area: lat 90.5", edit(func(n *parleyv1.ActivityNotification) { n.Area.Polygon[0].Lat = 90.5 })},
		{"area: lng -180.5", edit(func(n *parleyv1.ActivityNotification) { n.Area.Polygon[1].Lng = -180.5 })},
		{"area: NaN lat in centre", edit(func(n *parleyv1.ActivityNotification) { n.Area.Centre.Lat = math.NaN() })},
		{"troops above", edit(func(n *parleyv1.ActivityNotification) { n.Forces.Troops++ })},
		{"tanks above", edit(func(n *parleyv1.ActivityNotification) { n.Forces.BattleTanks++ })},
		{"acvs above", edit(func(n *parleyv1.ActivityNotification) { n.Forces.Acvs++ })},
		{"artillery above", edit(func(n *parleyv1.ActivityNotification) { n.Forces.Artillery++ })},
		{"atgm above", edit(func(n *parleyv1.ActivityNotification) { n.Forces.AtgmLaunchers++ })},
		{"helicopters above", edit(func(n *parleyv1.ActivityNotification) { n.Forces.CombatHelicopters++ })},
		{"sorties above", edit(func(n *parleyv1.ActivityNotification) { n.Forces.FixedWingSorties++ })},
		{"airborne above", edit(func(n *parleyv1.ActivityNotification) { n.Forces.AirborneTroops++ })},
		{"amphibious above", edit(func(n *parleyv1.ActivityNotification) { n.Forces.AmphibiousTroops++ })},
		{"101 formations", edit(func(n *parleyv1.ActivityNotification) {
			for range 100 {
				n.Formations = append(n.Formations, &parleyv1.Formation{Type: "t"})
			}
		})},
		{"formation without type", edit(func(n *parleyv1.ActivityNotification) { n.Formations[0].Type = "" })},
		{"formation count above", edit(func(n *parleyv1.ActivityNotification) { n.Formations[0].Count++ })},
		{"101 stages", edit(func(n *parleyv1.ActivityNotification) {
			for range 100 {
				n.Stages = append(n.Stages, n.Stages[0])
			}
		})},
		{"stage description of 1001", edit(func(n *parleyv1.ActivityNotification) { n.Stages[0].Description = rep("d", 1001) })},
		{"stage without start", edit(func(n *parleyv1.ActivityNotification) { n.Stages[0].Start = nil })},
		{"stage without end", edit(func(n *parleyv1.ActivityNotification) { n.Stages[0].End = nil })},
		{"stage ending before it starts", edit(func(n *parleyv1.ActivityNotification) { n.Stages[0].End = timestamppb.New(time.Unix(0, 0)) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agreesWithSchema(t, pv, tt.n, notificationErr(tt.n))
		})
	}
}

// TestNotificationSchemaUnchanged fails when the messages notificationErr
// checks gain fields, so that it is revisited.
func TestNotificationSchemaUnchanged(t *testing.T) {
	checkFieldCounts(t, "notificationErr", []fieldCount{
		{&parleyv1.ActivityNotification{}, 13},
		{&parleyv1.Area{}, 4},
		{&parleyv1.LatLng{}, 2},
		{&parleyv1.Forces{}, 9},
		{&parleyv1.Formation{}, 2},
		{&parleyv1.Stage{}, 3},
	})
}

// fieldCount is how many fields a message of the schema has.
type fieldCount struct {
	m      proto.Message
	fields int
}

// checkFieldCounts fails for every message whose number of fields is not
// the one the hand-written check (named check) was written for.
func checkFieldCounts(t *testing.T, check string, want []fieldCount) {
	t.Helper()
	for _, c := range want {
		d := c.m.ProtoReflect().Descriptor()
		if n := d.Fields().Len(); n != c.fields {
			t.Errorf("%s has %d fields, want %d: update %s", d.FullName(), n, c.fields, check)
		}
	}
}

// FuzzNotificationRules checks notificationErr against protovalidate on
// arbitrary notifications.
func FuzzNotificationRules(f *testing.F) {
	fuzzAgainstSchema(f, validNotification(), func() *parleyv1.ActivityNotification { return &parleyv1.ActivityNotification{} }, notificationErr)
}

// fuzzAgainstSchema fuzzes a hand-written check of messages of type M
// against protovalidate, from seed and the empty message.
func fuzzAgainstSchema[M proto.Message](f *testing.F, seed M, newM func() M, hand func(M) error) {
	b, err := proto.Marshal(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	pv, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := newM()
		if proto.Unmarshal(b, m) != nil {
			return
		}
		agreesWithSchema(t, pv, m, hand(m))
	})
}

// agreesWithSchema fails t unless hand, the verdict of a hand-written
// check on m, and protovalidate's agree on whether m is valid.
func agreesWithSchema(t *testing.T, pv protovalidate.Validator, m proto.Message, hand error) {
	t.Helper()
	if want := pv.Validate(m); (hand == nil) != (want == nil) {
		t.Fatalf("got valid=%v (%v), protovalidate says valid=%v (%v)", hand == nil, hand, want == nil, want)
	}
}
