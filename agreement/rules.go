package agreement

import (
	"fmt"
	"time"
)

// Names of the rule sets a [Rules] value may select.
const (
	// SetVD2011 is the Vienna Document 2011 rule set (see DOMAIN.md §1). It
	// is the default.
	SetVD2011 = "vd2011"
	// SetMissile1988 is the 1988 ballistic missile launch notification rule
	// set (see DOMAIN.md §2).
	SetMissile1988 = "missile1988"
)

// Default values of the [Rules] fields that are not rule-set parameters.
const (
	defaultClockSkewSeconds     = 300
	defaultReceiptWindowSeconds = 3600
	maxClockSkewSeconds         = 86400
	maxReceiptWindowSeconds     = 30 * 86400
)

// Rules selects and parameterises the agreed rule set.
//
// Every numeric field treats zero as "use the default": a field that is
// omitted in the agreement file gets the value in its comment. Negative
// values and values above the documented maximum are errors at load. Read
// the values through [Rules.EffectiveVD2011], [Rules.EffectiveMissile1988],
// [Rules.ClockSkew] and [Rules.ReceiptWindow], which apply the defaults.
// [Create] writes every value out explicitly, so that what the parties sign
// does not depend on the defaults of a particular Parley version.
type Rules struct {
	// Set names the rule set: "vd2011" (the default, also when empty) or
	// "missile1988". Anything else is an error at load. [Parse] replaces an
	// empty Set with "vd2011".
	Set string `yaml:"set"`
	// ClockSkewSeconds is how far a sender's issued_at may be from the
	// earliest counterpart receipt before it is no longer trusted.
	// Default 300 (5 minutes), at most 86400.
	ClockSkewSeconds int `yaml:"clock_skew_seconds"`
	// ReceiptWindowSeconds is how soon every counterpart must receipt a
	// substantive entry (rule RX.receipt). Default 3600, at most 2592000
	// (30 days).
	ReceiptWindowSeconds int `yaml:"receipt_window_seconds"`
	// VD2011 overrides parameters of the vd2011 rule set. Optional: nil, or
	// any zero field, means the default. Only valid with set vd2011.
	VD2011 *VD2011 `yaml:"vd2011,omitempty"`
	// Missile1988 overrides parameters of the missile1988 rule set.
	// Optional: nil, or any zero field, means the default. Only valid with
	// set missile1988.
	Missile1988 *Missile1988 `yaml:"missile1988,omitempty"`
}

// VD2011 holds the parameters of the Vienna Document 2011 rule set. Zero
// means the default given for each field. Thresholds are "reached" at
// equality (≥) except the Large* ones, which must be exceeded (>). Counts
// are at most 10,000,000; day counts at most 3650; hour counts at most 8760.
type VD2011 struct {
	// LeadTimeDays is the minimum number of UTC days between a notification
	// being given and the start of the activity (VD.V.lead). Default 42.
	LeadTimeDays int `yaml:"lead_time_days"`
	// NotifyTroops is the notification threshold in troops. Default 9000.
	NotifyTroops int `yaml:"notify_troops"`
	// NotifyBattleTanks is the notification threshold in battle tanks.
	// Default 250.
	NotifyBattleTanks int `yaml:"notify_battle_tanks"`
	// NotifyACVs is the notification threshold in armoured combat vehicles.
	// Default 500.
	NotifyACVs int `yaml:"notify_acvs"`
	// NotifyArtillery is the notification threshold in artillery pieces,
	// mortars and MRLs of calibre 100 mm and above. Default 250.
	NotifyArtillery int `yaml:"notify_artillery"`
	// NotifySorties is the notification threshold in planned fixed-wing
	// aircraft sorties. Default 200.
	NotifySorties int `yaml:"notify_sorties"`
	// NotifyLandingTroops is the notification threshold in troops for
	// amphibious, heliborne or parachute landings. Default 3000.
	NotifyLandingTroops int `yaml:"notify_landing_troops"`
	// ObserveTroops is the observation threshold in troops (VD.VI.invite).
	// Default 13000.
	ObserveTroops int `yaml:"observe_troops"`
	// ObserveBattleTanks is the observation threshold in battle tanks.
	// Default 300.
	ObserveBattleTanks int `yaml:"observe_battle_tanks"`
	// ObserveACVs is the observation threshold in armoured combat vehicles.
	// Default 500.
	ObserveACVs int `yaml:"observe_acvs"`
	// ObserveArtillery is the observation threshold in artillery pieces.
	// Default 250.
	ObserveArtillery int `yaml:"observe_artillery"`
	// ObserveLandingTroops is the observation threshold in troops for
	// landings. Default 3500.
	ObserveLandingTroops int `yaml:"observe_landing_troops"`
	// AlertObserveHours is how long an alert activity above the observation
	// threshold may last before it needs an invitation (VD.VI.alert72).
	// Default 72.
	AlertObserveHours int `yaml:"alert_observe_hours"`
	// CalendarMonth is the month (1-12) of the annual calendar deadline
	// (VD.VII.calendar). Default 11.
	CalendarMonth int `yaml:"calendar_month"`
	// CalendarDay is the day of CalendarMonth of the annual calendar
	// deadline; it must exist in that month in every year (so at most 28 in
	// February). Default 15.
	CalendarDay int `yaml:"calendar_day"`
	// LargeTroops is the troop count above which (>) the constraining
	// provisions apply (VD.VIII.large). Default 40000.
	LargeTroops int `yaml:"large_troops"`
	// LargeBattleTanks is the battle tank count above which (>) the
	// constraining provisions apply. Default 900.
	LargeBattleTanks int `yaml:"large_battle_tanks"`
	// LargeAdvanceYears is how many years ahead, by the calendar deadline,
	// a large activity must be communicated. Default 2, at most 10.
	LargeAdvanceYears int `yaml:"large_advance_years"`
	// LargePerYears is the span in calendar years in which at most
	// LargeMaxCount large activities are allowed (VD.VIII.three_years).
	// Default 3, at most 100.
	LargePerYears int `yaml:"large_per_years"`
	// LargeMaxCount is the number of large activities allowed per sender in
	// LargePerYears calendar years. Default 1, at most 1000.
	LargeMaxCount int `yaml:"large_max_count"`
	// ConsultReplyHours is how soon a consultation request must be answered
	// after its receipt (VD.III.consult). Default 48.
	ConsultReplyHours int `yaml:"consult_reply_hours"`
	// MeetingWithinHours is how soon a requested meeting must be held.
	// Default 48.
	MeetingWithinHours int `yaml:"meeting_within_hours"`
	// InvitationReplyDays is the deadline for replies to an observation
	// invitation. Default 21.
	InvitationReplyDays int `yaml:"invitation_reply_days"`
	// NearMarginPercent is the margin below a threshold within which a
	// declared value yields an advisory finding (VD.near). Default 5, at
	// most 100.
	NearMarginPercent int `yaml:"near_margin_percent"`
}

// Missile1988 holds the parameters of the missile launch notification rule
// set. Zero means the default given for each field; hours are at most 8760.
type Missile1988 struct {
	// LeadTimeHours is the minimum time between a notification being given
	// and the start of the launch window (BM.lead). Default 24.
	LeadTimeHours int `yaml:"lead_time_hours"`
	// MaxWindowHours is the longest launch window allowed. Default 96.
	MaxWindowHours int `yaml:"max_window_hours"`
}

// DefaultVD2011 returns the Vienna Document 2011 parameters (DOMAIN.md §1
// and §3).
func DefaultVD2011() VD2011 {
	return VD2011{
		LeadTimeDays:         42,
		NotifyTroops:         9000,
		NotifyBattleTanks:    250,
		NotifyACVs:           500,
		NotifyArtillery:      250,
		NotifySorties:        200,
		NotifyLandingTroops:  3000,
		ObserveTroops:        13000,
		ObserveBattleTanks:   300,
		ObserveACVs:          500,
		ObserveArtillery:     250,
		ObserveLandingTroops: 3500,
		AlertObserveHours:    72,
		CalendarMonth:        11,
		CalendarDay:          15,
		LargeTroops:          40000,
		LargeBattleTanks:     900,
		LargeAdvanceYears:    2,
		LargePerYears:        3,
		LargeMaxCount:        1,
		ConsultReplyHours:    48,
		MeetingWithinHours:   48,
		InvitationReplyDays:  21,
		NearMarginPercent:    5,
	}
}

// DefaultMissile1988 returns the 1988 missile launch notification
// parameters (DOMAIN.md §2).
func DefaultMissile1988() Missile1988 {
	return Missile1988{LeadTimeHours: 24, MaxWindowHours: 96}
}

// EffectiveVD2011 returns the vd2011 parameters with defaults applied for
// unset (zero) fields.
func (r Rules) EffectiveVD2011() VD2011 {
	v := DefaultVD2011()
	if r.VD2011 != nil {
		o := *r.VD2011
		dst, src := v.params(), o.params()
		for i := range dst {
			if *src[i].value != 0 {
				*dst[i].value = *src[i].value
			}
		}
	}
	return v
}

// EffectiveMissile1988 returns the missile1988 parameters with defaults
// applied for unset (zero) fields.
func (r Rules) EffectiveMissile1988() Missile1988 {
	m := DefaultMissile1988()
	if r.Missile1988 != nil {
		o := *r.Missile1988
		dst, src := m.params(), o.params()
		for i := range dst {
			if *src[i].value != 0 {
				*dst[i].value = *src[i].value
			}
		}
	}
	return m
}

// ClockSkew returns the agreed clock skew tolerance (default 5 minutes).
func (r Rules) ClockSkew() time.Duration {
	if r.ClockSkewSeconds == 0 {
		return defaultClockSkewSeconds * time.Second
	}
	return time.Duration(r.ClockSkewSeconds) * time.Second
}

// ReceiptWindow returns the agreed window for receipts (default 1 hour).
func (r Rules) ReceiptWindow() time.Duration {
	if r.ReceiptWindowSeconds == 0 {
		return defaultReceiptWindowSeconds * time.Second
	}
	return time.Duration(r.ReceiptWindowSeconds) * time.Second
}

// explicit returns r with every default written out: the set named and the
// parameters of the selected set filled in.
func (r Rules) explicit() Rules {
	out := Rules{
		Set:                  r.Set,
		ClockSkewSeconds:     int(r.ClockSkew() / time.Second),
		ReceiptWindowSeconds: int(r.ReceiptWindow() / time.Second),
	}
	switch r.Set {
	case "", SetVD2011:
		out.Set = SetVD2011
		v := r.EffectiveVD2011()
		out.VD2011 = &v
	case SetMissile1988:
		m := r.EffectiveMissile1988()
		out.Missile1988 = &m
	}
	return out
}

// param describes one numeric rule parameter for validation.
type param struct {
	name  string // YAML key
	value *int
	max   int
}

const (
	maxCount = 10_000_000
	maxDays  = 3650
	maxHours = 8760
)

func (v *VD2011) params() []param {
	return []param{
		{"lead_time_days", &v.LeadTimeDays, maxDays},
		{"notify_troops", &v.NotifyTroops, maxCount},
		{"notify_battle_tanks", &v.NotifyBattleTanks, maxCount},
		{"notify_acvs", &v.NotifyACVs, maxCount},
		{"notify_artillery", &v.NotifyArtillery, maxCount},
		{"notify_sorties", &v.NotifySorties, maxCount},
		{"notify_landing_troops", &v.NotifyLandingTroops, maxCount},
		{"observe_troops", &v.ObserveTroops, maxCount},
		{"observe_battle_tanks", &v.ObserveBattleTanks, maxCount},
		{"observe_acvs", &v.ObserveACVs, maxCount},
		{"observe_artillery", &v.ObserveArtillery, maxCount},
		{"observe_landing_troops", &v.ObserveLandingTroops, maxCount},
		{"alert_observe_hours", &v.AlertObserveHours, maxHours},
		{"calendar_month", &v.CalendarMonth, 12},
		{"calendar_day", &v.CalendarDay, 31},
		{"large_troops", &v.LargeTroops, maxCount},
		{"large_battle_tanks", &v.LargeBattleTanks, maxCount},
		{"large_advance_years", &v.LargeAdvanceYears, 10},
		{"large_per_years", &v.LargePerYears, 100},
		{"large_max_count", &v.LargeMaxCount, 1000},
		{"consult_reply_hours", &v.ConsultReplyHours, maxHours},
		{"meeting_within_hours", &v.MeetingWithinHours, maxHours},
		{"invitation_reply_days", &v.InvitationReplyDays, maxDays},
		{"near_margin_percent", &v.NearMarginPercent, 100},
	}
}

func (m *Missile1988) params() []param {
	return []param{
		{"lead_time_hours", &m.LeadTimeHours, maxHours},
		{"max_window_hours", &m.MaxWindowHours, maxHours},
	}
}

// daysIn is the number of days of each month in every year (February
// without its leap day).
var daysIn = [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// validate checks r and returns one error per problem, each naming its
// field path under prefix (e.g. "rules").
func (r Rules) validate(prefix string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldErrorf(prefix+"."+field, format, args...))
	}
	switch r.Set {
	case "", SetVD2011, SetMissile1988:
	default:
		bad("set", "unknown rule set %q (want %q or %q)", r.Set, SetVD2011, SetMissile1988)
	}
	checkRange := func(field string, v, max int) {
		switch {
		case v < 0:
			bad(field, "%d is negative (want 0 for the default, or 1..%d)", v, max)
		case v > max:
			bad(field, "%d is too large (want at most %d)", v, max)
		}
	}
	checkRange("clock_skew_seconds", r.ClockSkewSeconds, maxClockSkewSeconds)
	checkRange("receipt_window_seconds", r.ReceiptWindowSeconds, maxReceiptWindowSeconds)

	set := r.Set
	if set == "" {
		set = SetVD2011
	}
	if r.VD2011 != nil {
		if set != SetVD2011 {
			bad("vd2011", "overrides for rule set %q, but set is %q", SetVD2011, set)
		}
		for _, p := range r.VD2011.params() {
			checkRange("vd2011."+p.name, *p.value, p.max)
		}
		if e := r.EffectiveVD2011(); e.CalendarMonth >= 1 && e.CalendarMonth <= 12 &&
			e.CalendarDay >= 1 && e.CalendarDay <= 31 && e.CalendarDay > daysIn[e.CalendarMonth] {
			bad("vd2011.calendar_day", "%d does not exist in month %d (want 1..%d)", e.CalendarDay, e.CalendarMonth, daysIn[e.CalendarMonth])
		}
	}
	if r.Missile1988 != nil {
		if set != SetMissile1988 {
			bad("missile1988", "overrides for rule set %q, but set is %q", SetMissile1988, set)
		}
		for _, p := range r.Missile1988.params() {
			checkRange("missile1988."+p.name, *p.value, p.max)
		}
	}
	return errs
}

// fieldErrorf returns an error for the field at path.
func fieldErrorf(path, format string, args ...any) error {
	return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
}
