package verifier

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// Activity notifications are, with receipts, nearly every entry of a busy
// log, and protovalidate's evaluation of their rules cost more than parsing
// them. notificationErr checks the schema's rules for ActivityNotification
// and the messages it contains (statement.proto) by hand; it is held equal
// to protovalidate by TestNotificationRulesMatchSchema and
// FuzzNotificationRules, and TestNotificationSchemaUnchanged fails when the
// messages gain fields. Amendments, which embed a notification, are rare
// and still go through protovalidate.

// notificationErr returns the first rule of the schema that n breaks, or
// nil.
func notificationErr(n *parleyv1.ActivityNotification) error {
	if err := textLen("designation", n.Designation, 1, 200); err != nil {
		return err
	}
	if _, ok := parleyv1.ActivityType_name[int32(n.Type)]; !ok || n.Type == parleyv1.ActivityType_ACTIVITY_TYPE_UNSPECIFIED {
		return fmt.Errorf("type: %d is not a defined activity type other than unspecified", n.Type)
	}
	if err := textLen("purpose", n.Purpose, 0, 2000); err != nil {
		return err
	}
	if len(n.ParticipatingStates) > 64 {
		return fmt.Errorf("participating_states: %d items, want at most 64", len(n.ParticipatingStates))
	}
	for i, s := range n.ParticipatingStates {
		if err := textLen(fmt.Sprintf("participating_states[%d]", i), s, 1, 100); err != nil {
			return err
		}
	}
	if err := textLen("host_state", n.HostState, 0, 64); err != nil {
		return err
	}
	if err := textLen("level_of_command", n.LevelOfCommand, 0, 200); err != nil {
		return err
	}
	switch {
	case n.Start == nil:
		return fmt.Errorf("start: required")
	case n.End == nil:
		return fmt.Errorf("end: required")
	case n.Area == nil:
		return fmt.Errorf("area: required")
	case n.Forces == nil:
		return fmt.Errorf("forces: required")
	}
	if err := areaErr(n.Area); err != nil {
		return fmt.Errorf("area.%w", err)
	}
	if err := forcesErr(n.Forces); err != nil {
		return fmt.Errorf("forces.%w", err)
	}
	if len(n.Formations) > 100 {
		return fmt.Errorf("formations: %d items, want at most 100", len(n.Formations))
	}
	for i, f := range n.Formations {
		if err := textLen(fmt.Sprintf("formations[%d].type", i), f.GetType(), 1, 200); err != nil {
			return err
		}
		if f.GetCount() > 10000 {
			return fmt.Errorf("formations[%d].count: %d, want at most 10000", i, f.GetCount())
		}
	}
	if len(n.Stages) > 100 {
		return fmt.Errorf("stages: %d items, want at most 100", len(n.Stages))
	}
	for i, s := range n.Stages {
		if err := textLen(fmt.Sprintf("stages[%d].description", i), s.GetDescription(), 0, 1000); err != nil {
			return err
		}
		if s.GetStart() == nil || s.GetEnd() == nil {
			return fmt.Errorf("stages[%d]: start and end are required", i)
		}
	}
	if !after(n.End, n.Start) {
		return fmt.Errorf("end must be after start")
	}
	return nil
}

// areaErr checks an Area.
func areaErr(a *parleyv1.Area) error {
	if len(a.PlaceNames) > 64 {
		return fmt.Errorf("place_names: %d items, want at most 64", len(a.PlaceNames))
	}
	for i, p := range a.PlaceNames {
		if err := textLen(fmt.Sprintf("place_names[%d]", i), p, 1, 200); err != nil {
			return err
		}
	}
	if len(a.Polygon) > 256 {
		return fmt.Errorf("polygon: %d points, want at most 256", len(a.Polygon))
	}
	for i, p := range a.Polygon {
		if err := latLngErr(p); err != nil {
			return fmt.Errorf("polygon[%d].%w", i, err)
		}
	}
	if a.Centre != nil {
		if err := latLngErr(a.Centre); err != nil {
			return fmt.Errorf("centre.%w", err)
		}
	}
	if !(a.RadiusKm >= 0 && a.RadiusKm <= 20000) {
		return fmt.Errorf("radius_km: %v, want 0 to 20000", a.RadiusKm)
	}
	if len(a.PlaceNames) == 0 && len(a.Polygon) < 3 && (a.Centre == nil || !(a.RadiusKm > 0)) {
		return fmt.Errorf("not_empty: an area needs place names, a polygon of at least 3 points, or a centre and radius")
	}
	return nil
}

func latLngErr(p *parleyv1.LatLng) error {
	if !(p.GetLat() >= -90 && p.GetLat() <= 90) {
		return fmt.Errorf("lat: %v, want -90 to 90", p.GetLat())
	}
	if !(p.GetLng() >= -180 && p.GetLng() <= 180) {
		return fmt.Errorf("lng: %v, want -180 to 180", p.GetLng())
	}
	return nil
}

// forcesErr checks a Forces: upper bounds that reject absurd values.
func forcesErr(f *parleyv1.Forces) error {
	for _, c := range []struct {
		name  string
		v, lm uint32
	}{
		{"troops", f.Troops, 5000000},
		{"battle_tanks", f.BattleTanks, 100000},
		{"acvs", f.Acvs, 200000},
		{"artillery", f.Artillery, 100000},
		{"atgm_launchers", f.AtgmLaunchers, 100000},
		{"combat_helicopters", f.CombatHelicopters, 20000},
		{"fixed_wing_sorties", f.FixedWingSorties, 1000000},
		{"airborne_troops", f.AirborneTroops, 1000000},
		{"amphibious_troops", f.AmphibiousTroops, 1000000},
	} {
		if c.v > c.lm {
			return fmt.Errorf("%s: %d, want at most %d", c.name, c.v, c.lm)
		}
	}
	return nil
}

// textLen checks that s has from min to max characters (code points, as
// the schema counts them).
func textLen(field, s string, min, max int) error {
	if len(s) < min || (len(s) > max && utf8.RuneCountInString(s) > max) || (min > 0 && utf8.RuneCountInString(s) < min) {
		return fmt.Errorf("%s: %d characters, want %d to %d", field, utf8.RuneCountInString(s), min, max)
	}
	return nil
}

// after reports whether a is after b, as the schema's CEL compares
// timestamps.
func after(a, b *timestamppb.Timestamp) bool {
	if a.Seconds != b.Seconds {
		return a.Seconds > b.Seconds
	}
	return a.Nanos > b.Nanos
}
