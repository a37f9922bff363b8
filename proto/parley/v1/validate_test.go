package parleyv1_test

import (
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

func validNotification() *parleyv1.ActivityNotification {
	start := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	return &parleyv1.ActivityNotification{
		Designation: "Northern Shield 2027",
		Type:        parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
		Start:       timestamppb.New(start),
		End:         timestamppb.New(start.Add(10 * 24 * time.Hour)),
		Area:        &parleyv1.Area{PlaceNames: []string{"Training area North"}},
		Forces:      &parleyv1.Forces{Troops: 9000},
	}
}

// TestValidationRules checks that every CEL rule of the schema compiles and
// that the shape rules accept and reject what they should.
func TestValidationRules(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatalf("protovalidate.New: %v", err)
	}
	tests := []struct {
		name    string
		msg     proto.Message
		wantErr string
	}{
		{"valid notification", validNotification(), ""},
		{"end before start", func() proto.Message {
			n := validNotification()
			n.End = timestamppb.New(n.Start.AsTime().Add(-time.Hour))
			return n
		}(), "end must be after start"},
		{"empty area", func() proto.Message {
			n := validNotification()
			n.Area = &parleyv1.Area{}
			return n
		}(), "an area needs"},
		{"absurd troops", func() proto.Message {
			n := validNotification()
			n.Forces.Troops = 50_000_000
			return n
		}(), "troops"},
		{"unspecified type", func() proto.Message {
			n := validNotification()
			n.Type = parleyv1.ActivityType_ACTIVITY_TYPE_UNSPECIFIED
			return n
		}(), "type"},
		{"nil calendar with entries", &parleyv1.AnnualCalendar{Year: 2027, NilCalendar: true, Activities: []*parleyv1.CalendarEntry{{
			Designation: "x", Start: timestamppb.Now(), End: timestamppb.Now(),
		}}}, "nil calendar"},
		{"empty calendar without nil flag", &parleyv1.AnnualCalendar{Year: 2027}, "nil calendar"},
		{"explicit nil calendar", &parleyv1.AnnualCalendar{Year: 2027, NilCalendar: true}, ""},
		{"body without kind", &parleyv1.Body{}, "kind"},
		{"receipt digest length", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{{
			Sender: "alpha", Seq: 1, Digest: []byte("short"), ReceivedAt: timestamppb.Now(),
		}}}, "digest"},
		{"bad sender id", &parleyv1.Header{AgreementId: "a", Sender: "Alpha!", Seq: 1, IssuedAt: timestamppb.Now()}, "sender"},
		{"seq zero", &parleyv1.Header{AgreementId: "a", Sender: "alpha", Seq: 0, IssuedAt: timestamppb.Now()}, "seq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(tt.msg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("got no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("got error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
