package verifier

import (
	"fmt"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// ValidateBody checks b against the schema's rules for Body and every
// message it contains (statement.proto), by hand: it gives protovalidate's
// verdict at a fraction of its cost. A node runs it on every body its
// operators submit. It is held equal to protovalidate by
// TestBodyRulesMatchSchema and FuzzBodyRules, and TestBodySchemaUnchanged
// fails when the body's messages gain fields or kinds.
//
// No rule of the body depends on the time, so the verdict holds whenever it
// is taken. The error wraps ErrInvalid and names the first rule b breaks,
// by its field path from the body.
func ValidateBody(b *parleyv1.Body) error {
	if err := bodyErr(b); err != nil {
		return fmt.Errorf("%w: body.%w", ErrInvalid, err)
	}
	return nil
}

// bodyErr returns the first rule of the schema that b breaks, or nil. A
// kind whose message is nil is checked as its empty message, as
// protovalidate does.
func bodyErr(b *parleyv1.Body) error {
	var err error
	switch k := b.GetKind().(type) {
	case *parleyv1.Body_Notification:
		err = prefix("notification", notificationErr(orEmpty(k.Notification)))
	case *parleyv1.Body_Amendment:
		err = prefix("amendment", amendmentErr(orEmpty(k.Amendment)))
	case *parleyv1.Body_Cancellation:
		err = prefix("cancellation", cancellationErr(orEmpty(k.Cancellation)))
	case *parleyv1.Body_Calendar:
		err = prefix("calendar", calendarErr(orEmpty(k.Calendar)))
	case *parleyv1.Body_Invitation:
		err = prefix("invitation", invitationErr(orEmpty(k.Invitation)))
	case *parleyv1.Body_ConsultationRequest:
		err = prefix("consultation_request", consultationRequestErr(orEmpty(k.ConsultationRequest)))
	case *parleyv1.Body_ConsultationResponse:
		err = prefix("consultation_response", consultationResponseErr(orEmpty(k.ConsultationResponse)))
	case *parleyv1.Body_Receipt:
		err = prefix("receipt", receiptErr(orEmpty(k.Receipt)))
	case *parleyv1.Body_Launch:
		err = prefix("launch", launchErr(orEmpty(k.Launch)))
	default: // no kind
		err = fmt.Errorf("kind: required: a body is one of notification, amendment, cancellation, calendar, invitation, consultation_request, consultation_response, receipt or launch")
	}
	return err
}

// orEmpty returns m, or a new empty message if m is nil.
func orEmpty[M any](m *M) *M {
	if m == nil {
		return new(M)
	}
	return m
}

// prefix puts field and a dot before err's field path.
func prefix(field string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s.%w", field, err)
}

func amendmentErr(a *parleyv1.Amendment) error {
	if a.TargetSeq < 1 {
		return fmt.Errorf("target_seq: must be at least 1")
	}
	if a.Activity == nil {
		return fmt.Errorf("activity: required")
	}
	if err := notificationErr(a.Activity); err != nil {
		return fmt.Errorf("activity.%w", err)
	}
	return textLen("reason", a.Reason, 0, 2000)
}

func cancellationErr(c *parleyv1.Cancellation) error {
	if c.TargetSeq < 1 {
		return fmt.Errorf("target_seq: must be at least 1")
	}
	return textLen("reason", c.Reason, 0, 2000)
}

func calendarErr(c *parleyv1.AnnualCalendar) error {
	if c.Year < 1990 || c.Year > 2200 {
		return fmt.Errorf("year: %d, want 1990 to 2200", c.Year)
	}
	if len(c.Activities) > 500 {
		return fmt.Errorf("activities: %d items, want at most 500", len(c.Activities))
	}
	for i, e := range c.Activities {
		if err := calendarEntryErr(orEmpty(e)); err != nil {
			return fmt.Errorf("activities[%d].%w", i, err)
		}
	}
	if (len(c.Activities) > 0) == c.NilCalendar {
		return fmt.Errorf("nil_or_entries: a calendar lists activities or is an explicit nil calendar, not both or neither")
	}
	return nil
}

func calendarEntryErr(e *parleyv1.CalendarEntry) error {
	if err := textLen("designation", e.Designation, 1, 200); err != nil {
		return err
	}
	if _, ok := parleyv1.ActivityType_name[int32(e.Type)]; !ok {
		return fmt.Errorf("type: %d is not a defined activity type", e.Type)
	}
	switch {
	case e.Start == nil:
		return fmt.Errorf("start: required")
	case e.End == nil:
		return fmt.Errorf("end: required")
	}
	if e.Area != nil {
		if err := areaErr(e.Area); err != nil {
			return fmt.Errorf("area.%w", err)
		}
	}
	if e.Forces != nil {
		if err := forcesErr(e.Forces); err != nil {
			return fmt.Errorf("forces.%w", err)
		}
	}
	return textLen("purpose", e.Purpose, 0, 2000)
}

func invitationErr(v *parleyv1.ObservationInvitation) error {
	if v.NotificationSeq < 1 {
		return fmt.Errorf("notification_seq: must be at least 1")
	}
	if len(v.Invited) > 64 {
		return fmt.Errorf("invited: %d items, want at most 64", len(v.Invited))
	}
	return textLen("programme", v.Programme, 0, 4000)
}

func consultationRequestErr(r *parleyv1.ConsultationRequest) error {
	if !validPartyID(r.Addressee) {
		return fmt.Errorf("addressee: %q is not a party id", clip(r.Addressee))
	}
	if _, ok := parleyv1.ConsultationKind_name[int32(r.Kind)]; !ok || r.Kind == parleyv1.ConsultationKind_CONSULTATION_KIND_UNSPECIFIED {
		return fmt.Errorf("kind: %d is not a defined consultation kind other than unspecified", r.Kind)
	}
	if err := textLen("concern", r.Concern, 1, 4000); err != nil {
		return err
	}
	if r.Area != nil {
		if err := areaErr(r.Area); err != nil {
			return fmt.Errorf("area.%w", err)
		}
	}
	return nil
}

func consultationResponseErr(r *parleyv1.ConsultationResponse) error {
	if !validPartyID(r.Requester) {
		return fmt.Errorf("requester: %q is not a party id", clip(r.Requester))
	}
	if r.RequestSeq < 1 {
		return fmt.Errorf("request_seq: must be at least 1")
	}
	return textLen("explanation", r.Explanation, 1, 8000)
}

func launchErr(l *parleyv1.LaunchNotification) error {
	if err := textLen("designation", l.Designation, 1, 200); err != nil {
		return err
	}
	if _, ok := parleyv1.MissileClass_name[int32(l.MissileClass)]; !ok || l.MissileClass == parleyv1.MissileClass_MISSILE_CLASS_UNSPECIFIED {
		return fmt.Errorf("missile_class: %d is not a defined missile class other than unspecified", l.MissileClass)
	}
	switch {
	case l.WindowStart == nil:
		return fmt.Errorf("window_start: required")
	case l.WindowEnd == nil:
		return fmt.Errorf("window_end: required")
	case l.LaunchArea == nil:
		return fmt.Errorf("launch_area: required")
	case l.ImpactArea == nil:
		return fmt.Errorf("impact_area: required")
	}
	if err := areaErr(l.LaunchArea); err != nil {
		return fmt.Errorf("launch_area.%w", err)
	}
	if err := areaErr(l.ImpactArea); err != nil {
		return fmt.Errorf("impact_area.%w", err)
	}
	if !after(l.WindowEnd, l.WindowStart) {
		return fmt.Errorf("window_order: window_end must be after window_start")
	}
	return nil
}
