package verifier

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// validBodies are valid bodies of every kind, each using every field of
// its kind.
func validBodies() map[string]*parleyv1.Body {
	start := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	ts := timestamppb.New
	area := func() *parleyv1.Area { return validNotification().Area }
	return map[string]*parleyv1.Body{
		"notification": {Kind: &parleyv1.Body_Notification{Notification: validNotification()}},
		"amendment": {Kind: &parleyv1.Body_Amendment{Amendment: &parleyv1.Amendment{
			TargetSeq: 1, Activity: validNotification(), Reason: "dates moved",
		}}},
		"cancellation": {Kind: &parleyv1.Body_Cancellation{Cancellation: &parleyv1.Cancellation{TargetSeq: 1, Reason: "called off"}}},
		"calendar": {Kind: &parleyv1.Body_Calendar{Calendar: &parleyv1.AnnualCalendar{
			Year: 2027,
			Activities: []*parleyv1.CalendarEntry{{
				Designation: "Northern Shield", Type: parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
				Start: ts(start), End: ts(start.Add(72 * time.Hour)), Area: area(), Forces: validNotification().Forces, Purpose: "training",
			}},
		}}},
		"invitation": {Kind: &parleyv1.Body_Invitation{Invitation: &parleyv1.ObservationInvitation{
			NotificationSeq: 1, Invited: []string{"bravo"}, ReplyBy: ts(start), Programme: "day 1: arrival",
		}}},
		"consultation request": {Kind: &parleyv1.Body_ConsultationRequest{ConsultationRequest: &parleyv1.ConsultationRequest{
			Addressee: "bravo", Kind: parleyv1.ConsultationKind_CONSULTATION_KIND_EXPLANATION, Concern: "troops at the border", Area: area(),
		}}},
		"consultation response": {Kind: &parleyv1.Body_ConsultationResponse{ConsultationResponse: &parleyv1.ConsultationResponse{
			Requester: "bravo", RequestSeq: 1, Explanation: "a routine exercise",
		}}},
		"receipt": {Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("bravo", 1, 32, true)}}}},
		"launch": {Kind: &parleyv1.Body_Launch{Launch: &parleyv1.LaunchNotification{
			Designation: "Test 1", MissileClass: parleyv1.MissileClass_MISSILE_CLASS_ICBM,
			WindowStart: ts(start), WindowEnd: ts(start.Add(time.Hour)), LaunchArea: area(), ImpactArea: area(),
		}}},
	}
}

// TestBodyRulesMatchSchema holds ValidateBody equal to protovalidate on the
// schema's rules, at and beyond every bound of the kinds that
// TestNotificationRulesMatchSchema and TestReceiptRulesMatchSchema do not
// already cover.
func TestBodyRulesMatchSchema(t *testing.T) {
	pv, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	rep := strings.Repeat
	edit := func(kind string, f func(b *parleyv1.Body)) *parleyv1.Body {
		b := validBodies()[kind]
		f(b)
		return b
	}
	tests := []struct {
		name string
		b    *parleyv1.Body
	}{
		{"no kind", &parleyv1.Body{}},
		{"nil notification", &parleyv1.Body{Kind: &parleyv1.Body_Notification{}}},
		{"nil cancellation", &parleyv1.Body{Kind: &parleyv1.Body_Cancellation{}}},
		{"nil calendar", &parleyv1.Body{Kind: &parleyv1.Body_Calendar{}}},
		{"nil invitation", &parleyv1.Body{Kind: &parleyv1.Body_Invitation{}}},
		{"nil receipt", &parleyv1.Body{Kind: &parleyv1.Body_Receipt{}}},
		{"empty notification", &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: &parleyv1.ActivityNotification{}}}},
		{"notification without designation", edit("notification", func(b *parleyv1.Body) { b.GetNotification().Designation = "" })},
		{"notification ending at its start", edit("notification", func(b *parleyv1.Body) { n := b.GetNotification(); n.End = n.Start })},

		{"amendment target 0", edit("amendment", func(b *parleyv1.Body) { b.GetAmendment().TargetSeq = 0 })},
		{"amendment without activity", edit("amendment", func(b *parleyv1.Body) { b.GetAmendment().Activity = nil })},
		{"amendment with an invalid activity", edit("amendment", func(b *parleyv1.Body) { b.GetAmendment().Activity.Type = 9 })},
		{"amendment with an empty area", edit("amendment", func(b *parleyv1.Body) { b.GetAmendment().Activity.Area = &parleyv1.Area{} })},
		{"amendment reason of 2000", edit("amendment", func(b *parleyv1.Body) { b.GetAmendment().Reason = rep("é", 2000) })},
		{"amendment reason of 2001", edit("amendment", func(b *parleyv1.Body) { b.GetAmendment().Reason = rep("r", 2001) })},

		{"cancellation target 0", edit("cancellation", func(b *parleyv1.Body) { b.GetCancellation().TargetSeq = 0 })},
		{"cancellation without reason", edit("cancellation", func(b *parleyv1.Body) { b.GetCancellation().Reason = "" })},
		{"cancellation reason of 2001 runes", edit("cancellation", func(b *parleyv1.Body) { b.GetCancellation().Reason = rep("é", 2001) })},

		{"calendar year 1989", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Year = 1989 })},
		{"calendar year 1990", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Year = 1990 })},
		{"calendar year 2200", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Year = 2200 })},
		{"calendar year 2201", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Year = 2201 })},
		{"calendar: entries and nil", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().NilCalendar = true })},
		{"calendar: neither entries nor nil", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities = nil })},
		{"calendar: nil calendar", edit("calendar", func(b *parleyv1.Body) { c := b.GetCalendar(); c.Activities, c.NilCalendar = nil, true })},
		{"calendar: 500 entries", edit("calendar", func(b *parleyv1.Body) {
			c := b.GetCalendar()
			for range 499 {
				c.Activities = append(c.Activities, c.Activities[0])
			}
		})},
		{"calendar: 501 entries", edit("calendar", func(b *parleyv1.Body) {
			c := b.GetCalendar()
			for range 500 {
				c.Activities = append(c.Activities, c.Activities[0])
			}
		})},
		{"calendar entry: no designation", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Designation = "" })},
		{"calendar entry: designation of 201", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Designation = rep("d", 201) })},
		{"calendar entry: type unspecified", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Type = 0 })},
		{"calendar entry: type undefined", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Type = 7 })},
		{"calendar entry: type negative", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Type = -1 })},
		{"calendar entry: no start", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Start = nil })},
		{"calendar entry: no end", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].End = nil })},
		{"calendar entry: end before start", edit("calendar", func(b *parleyv1.Body) {
			e := b.GetCalendar().Activities[0]
			e.Start, e.End = e.End, e.Start
		})},
		{"calendar entry: no area", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Area = nil })},
		{"calendar entry: empty area", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Area = &parleyv1.Area{} })},
		{"calendar entry: NaN radius", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Area.RadiusKm = math.NaN() })},
		{"calendar entry: no forces", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Forces = nil })},
		{"calendar entry: empty forces", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Forces = &parleyv1.Forces{} })},
		{"calendar entry: tanks above", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Forces.BattleTanks++ })},
		{"calendar entry: purpose of 2001", edit("calendar", func(b *parleyv1.Body) { b.GetCalendar().Activities[0].Purpose = rep("p", 2001) })},

		{"invitation of notification 0", edit("invitation", func(b *parleyv1.Body) { b.GetInvitation().NotificationSeq = 0 })},
		{"invitation of 64", edit("invitation", func(b *parleyv1.Body) { b.GetInvitation().Invited = make([]string, 64) })},
		{"invitation of 65", edit("invitation", func(b *parleyv1.Body) { b.GetInvitation().Invited = make([]string, 65) })},
		{"invitation without reply_by", edit("invitation", func(b *parleyv1.Body) { b.GetInvitation().ReplyBy = nil })},
		{"invitation with invalid reply_by", edit("invitation", func(b *parleyv1.Body) {
			b.GetInvitation().ReplyBy = &timestamppb.Timestamp{Nanos: -1}
		})},
		{"invitation programme of 4000", edit("invitation", func(b *parleyv1.Body) { b.GetInvitation().Programme = rep("€", 4000) })},
		{"invitation programme of 4001", edit("invitation", func(b *parleyv1.Body) { b.GetInvitation().Programme = rep("p", 4001) })},

		{"request to no one", edit("consultation request", func(b *parleyv1.Body) { b.GetConsultationRequest().Addressee = "" })},
		{"request to Bravo", edit("consultation request", func(b *parleyv1.Body) { b.GetConsultationRequest().Addressee = "Bravo" })},
		{"request to a 63-character id", edit("consultation request", func(b *parleyv1.Body) {
			b.GetConsultationRequest().Addressee = "b" + rep("-", 62)
		})},
		{"request to a 64-character id", edit("consultation request", func(b *parleyv1.Body) {
			b.GetConsultationRequest().Addressee = "b" + rep("x", 63)
		})},
		{"request to an id with a newline", edit("consultation request", func(b *parleyv1.Body) { b.GetConsultationRequest().Addressee = "bravo\n" })},
		{"request kind unspecified", edit("consultation request", func(b *parleyv1.Body) { b.GetConsultationRequest().Kind = 0 })},
		{"request kind undefined", edit("consultation request", func(b *parleyv1.Body) { b.GetConsultationRequest().Kind = 4 })},
		{"request kind incident", edit("consultation request", func(b *parleyv1.Body) { b.GetConsultationRequest().Kind = 3 })},
		{"request without concern", edit("consultation request", func(b *parleyv1.Body) { b.GetConsultationRequest().Concern = "" })},
		{"request concern of 4001", edit("consultation request", func(b *parleyv1.Body) { b.GetConsultationRequest().Concern = rep("c", 4001) })},
		{"request without area", edit("consultation request", func(b *parleyv1.Body) { b.GetConsultationRequest().Area = nil })},
		{"request with an empty area", edit("consultation request", func(b *parleyv1.Body) { b.GetConsultationRequest().Area = &parleyv1.Area{} })},
		{"request with lat 91", edit("consultation request", func(b *parleyv1.Body) { b.GetConsultationRequest().Area.Polygon[2].Lat = 91 })},

		{"response to no one", edit("consultation response", func(b *parleyv1.Body) { b.GetConsultationResponse().Requester = "" })},
		{"response to 9bravo", edit("consultation response", func(b *parleyv1.Body) { b.GetConsultationResponse().Requester = "9bravo" })},
		{"response to request 0", edit("consultation response", func(b *parleyv1.Body) { b.GetConsultationResponse().RequestSeq = 0 })},
		{"response without explanation", edit("consultation response", func(b *parleyv1.Body) { b.GetConsultationResponse().Explanation = "" })},
		{"response explanation of 8000", edit("consultation response", func(b *parleyv1.Body) {
			b.GetConsultationResponse().Explanation = rep("é", 8000)
		})},
		{"response explanation of 8001", edit("consultation response", func(b *parleyv1.Body) {
			b.GetConsultationResponse().Explanation = rep("e", 8001)
		})},

		{"receipt without acks", edit("receipt", func(b *parleyv1.Body) { b.GetReceipt().Acks = nil })},
		{"receipt with a short digest", edit("receipt", func(b *parleyv1.Body) { b.GetReceipt().Acks[0].Digest = b.GetReceipt().Acks[0].Digest[1:] })},

		{"launch without designation", edit("launch", func(b *parleyv1.Body) { b.GetLaunch().Designation = "" })},
		{"launch designation of 201", edit("launch", func(b *parleyv1.Body) { b.GetLaunch().Designation = rep("d", 201) })},
		{"launch class unspecified", edit("launch", func(b *parleyv1.Body) { b.GetLaunch().MissileClass = 0 })},
		{"launch class ballistic", edit("launch", func(b *parleyv1.Body) { b.GetLaunch().MissileClass = 3 })},
		{"launch class undefined", edit("launch", func(b *parleyv1.Body) { b.GetLaunch().MissileClass = 4 })},
		{"launch without window start", edit("launch", func(b *parleyv1.Body) { b.GetLaunch().WindowStart = nil })},
		{"launch without window end", edit("launch", func(b *parleyv1.Body) { b.GetLaunch().WindowEnd = nil })},
		{"launch without launch area", edit("launch", func(b *parleyv1.Body) { b.GetLaunch().LaunchArea = nil })},
		{"launch without impact area", edit("launch", func(b *parleyv1.Body) { b.GetLaunch().ImpactArea = nil })},
		{"launch with an empty launch area", edit("launch", func(b *parleyv1.Body) { b.GetLaunch().LaunchArea = &parleyv1.Area{} })},
		{"launch with an impact radius above", edit("launch", func(b *parleyv1.Body) { b.GetLaunch().ImpactArea.RadiusKm = 20001 })},
		{"launch window ending at its start", edit("launch", func(b *parleyv1.Body) { l := b.GetLaunch(); l.WindowEnd = l.WindowStart })},
		{"launch window a nanosecond long", edit("launch", func(b *parleyv1.Body) {
			l := b.GetLaunch()
			l.WindowEnd = &timestamppb.Timestamp{Seconds: l.WindowStart.Seconds, Nanos: 1}
		})},
		{"launch window reversed", edit("launch", func(b *parleyv1.Body) { l := b.GetLaunch(); l.WindowStart, l.WindowEnd = l.WindowEnd, l.WindowStart })},
		{"launch window end beyond year 9999", edit("launch", func(b *parleyv1.Body) {
			b.GetLaunch().WindowEnd = &timestamppb.Timestamp{Seconds: 253402300800}
		})},
	}
	for kind, b := range validBodies() {
		tests = append(tests, struct {
			name string
			b    *parleyv1.Body
		}{"valid " + kind, b})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateBody(tt.b)
			agreesWithSchema(t, pv, tt.b, err)
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an error wrapping ErrInvalid", err)
			}
		})
	}
}

// TestValidateBodyMessages checks that an error names the field at fault
// by its path from the body.
func TestValidateBodyMessages(t *testing.T) {
	b := validBodies()["launch"]
	b.GetLaunch().ImpactArea.Polygon[1].Lng = 181
	err := ValidateBody(b)
	if want := "body.launch.impact_area.polygon[1].lng: 181, want -180 to 180"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
	if err := ValidateBody(&parleyv1.Body{}); err == nil || !strings.Contains(err.Error(), "body.kind: required") {
		t.Fatalf("got %v, want an error naming body.kind", err)
	}
}

// TestBodySchemaUnchanged fails when Body gains a kind, or a message that
// ValidateBody checks gains a field, so that ValidateBody is revisited. The
// messages of notifications and receipts are counted by
// TestNotificationSchemaUnchanged and TestReceiptSchemaUnchanged.
func TestBodySchemaUnchanged(t *testing.T) {
	checkFieldCounts(t, "ValidateBody", []fieldCount{
		{&parleyv1.Body{}, 9},
		{&parleyv1.Amendment{}, 3},
		{&parleyv1.Cancellation{}, 2},
		{&parleyv1.AnnualCalendar{}, 3},
		{&parleyv1.CalendarEntry{}, 7},
		{&parleyv1.ObservationInvitation{}, 4},
		{&parleyv1.ConsultationRequest{}, 4},
		{&parleyv1.ConsultationResponse{}, 3},
		{&parleyv1.LaunchNotification{}, 6},
	})
	if n := len(validBodies()); n != 9 {
		t.Errorf("validBodies has %d kinds, want every kind of Body", n)
	}
}

// BenchmarkValidateBody compares ValidateBody with protovalidate on a
// notification, the commonest submitted body.
func BenchmarkValidateBody(b *testing.B) {
	body := validBodies()["notification"]
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			if err := ValidateBody(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("protovalidate", func(b *testing.B) {
		pv, err := protovalidate.New()
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := pv.Validate(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzBodyRules checks ValidateBody against protovalidate on arbitrary
// bodies, seeded with a valid body of every kind.
func FuzzBodyRules(f *testing.F) {
	for _, b := range validBodies() {
		raw, err := proto.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	fuzzAgainstSchema(f, &parleyv1.Body{}, func() *parleyv1.Body { return &parleyv1.Body{} }, ValidateBody)
}
