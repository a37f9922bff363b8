package agreement_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/agreement/agreementtest"
)

// withRules returns a valid agreement text whose rules section is rules
// (YAML lines indented for the "rules:" mapping, or "" for no section).
func withRules(t testing.TB, rules string) []byte {
	t.Helper()
	data := agreementtest.New(t, 2, 0).Bytes(t)
	i := bytes.Index(data, []byte("\nrules:\n"))
	if i < 0 {
		t.Fatal("no rules section in the fixture")
	}
	out := append([]byte{}, data[:i+1]...)
	if rules != "" {
		out = append(out, "rules:\n"+rules...)
	}
	return out
}

func parseRules(t *testing.T, rules string) agreement.Rules {
	t.Helper()
	file, err := agreement.Parse(withRules(t, rules))
	if err != nil {
		t.Fatal(err)
	}
	return file.Agreement.Rules
}

func TestRulesDefaults(t *testing.T) {
	for _, tt := range []struct{ name, rules string }{
		{"no rules section", ""},
		{"empty set", "  set: \"\"\n"},
		{"named set", "  set: vd2011\n"},
		{"explicit zeros", "  set: vd2011\n  clock_skew_seconds: 0\n  vd2011:\n    lead_time_days: 0\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := parseRules(t, tt.rules)
			if r.Set != agreement.SetVD2011 {
				t.Errorf("got set %q, want %q", r.Set, agreement.SetVD2011)
			}
			if got, want := r.EffectiveVD2011(), agreement.DefaultVD2011(); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if got, want := r.ClockSkew(), 5*time.Minute; got != want {
				t.Errorf("got clock skew %v, want %v", got, want)
			}
			if got, want := r.ReceiptWindow(), time.Hour; got != want {
				t.Errorf("got receipt window %v, want %v", got, want)
			}
		})
	}
}

func TestDefaultParameters(t *testing.T) {
	v := agreement.DefaultVD2011()
	for _, tt := range []struct {
		name      string
		got, want int
	}{
		{"lead_time_days", v.LeadTimeDays, 42},
		{"notify_troops", v.NotifyTroops, 9000},
		{"notify_battle_tanks", v.NotifyBattleTanks, 250},
		{"notify_acvs", v.NotifyACVs, 500},
		{"notify_artillery", v.NotifyArtillery, 250},
		{"notify_sorties", v.NotifySorties, 200},
		{"notify_landing_troops", v.NotifyLandingTroops, 3000},
		{"observe_troops", v.ObserveTroops, 13000},
		{"observe_battle_tanks", v.ObserveBattleTanks, 300},
		{"observe_acvs", v.ObserveACVs, 500},
		{"observe_artillery", v.ObserveArtillery, 250},
		{"observe_landing_troops", v.ObserveLandingTroops, 3500},
		{"alert_observe_hours", v.AlertObserveHours, 72},
		{"calendar_month", v.CalendarMonth, 11},
		{"calendar_day", v.CalendarDay, 15},
		{"large_troops", v.LargeTroops, 40000},
		{"large_battle_tanks", v.LargeBattleTanks, 900},
		{"large_advance_years", v.LargeAdvanceYears, 2},
		{"large_per_years", v.LargePerYears, 3},
		{"large_max_count", v.LargeMaxCount, 1},
		{"consult_reply_hours", v.ConsultReplyHours, 48},
		{"meeting_within_hours", v.MeetingWithinHours, 48},
		{"invitation_reply_days", v.InvitationReplyDays, 21},
		{"near_margin_percent", v.NearMarginPercent, 5},
		{"missile lead_time_hours", agreement.DefaultMissile1988().LeadTimeHours, 24},
		{"missile max_window_hours", agreement.DefaultMissile1988().MaxWindowHours, 96},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

func TestRulesOverrides(t *testing.T) {
	r := parseRules(t, "  clock_skew_seconds: 60\n  receipt_window_seconds: 7200\n  vd2011:\n    lead_time_days: 30\n    observe_troops: 12000\n    calendar_month: 2\n    calendar_day: 28\n")
	want := agreement.DefaultVD2011()
	want.LeadTimeDays = 30
	want.ObserveTroops = 12000
	want.CalendarMonth = 2
	want.CalendarDay = 28
	if got := r.EffectiveVD2011(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got, want := r.ClockSkew(), time.Minute; got != want {
		t.Errorf("got clock skew %v, want %v", got, want)
	}
	if got, want := r.ReceiptWindow(), 2*time.Hour; got != want {
		t.Errorf("got receipt window %v, want %v", got, want)
	}

	m := parseRules(t, "  set: missile1988\n  missile1988:\n    lead_time_hours: 72\n")
	if got, want := m.EffectiveMissile1988(), (agreement.Missile1988{LeadTimeHours: 72, MaxWindowHours: 96}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got, want := parseRules(t, "  set: missile1988\n").EffectiveMissile1988(), agreement.DefaultMissile1988(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestRulesErrors(t *testing.T) {
	for _, tt := range []struct{ name, rules, want string }{
		{"unknown set", "  set: vd1999\n", `rules.set: unknown rule set "vd1999" (want "vd2011" or "missile1988")`},
		{"negative clock skew", "  clock_skew_seconds: -1\n", "rules.clock_skew_seconds: -1 is negative"},
		{"clock skew too large", "  clock_skew_seconds: 86401\n", "rules.clock_skew_seconds: 86401 is too large (want at most 86400)"},
		{"negative receipt window", "  receipt_window_seconds: -5\n", "rules.receipt_window_seconds: -5 is negative"},
		{"vd2011 overrides for missile set", "  set: missile1988\n  vd2011:\n    lead_time_days: 30\n", `rules.vd2011: overrides for rule set "vd2011", but set is "missile1988"`},
		{"missile overrides for default set", "  missile1988:\n    lead_time_hours: 48\n", `rules.missile1988: overrides for rule set "missile1988", but set is "vd2011"`},
		{"negative threshold", "  vd2011:\n    notify_troops: -9000\n", "rules.vd2011.notify_troops: -9000 is negative"},
		{"negative lead time", "  vd2011:\n    lead_time_days: -1\n", "rules.vd2011.lead_time_days: -1 is negative"},
		{"month 13", "  vd2011:\n    calendar_month: 13\n", "rules.vd2011.calendar_month: 13 is too large (want at most 12)"},
		{"day 32", "  vd2011:\n    calendar_day: 32\n", "rules.vd2011.calendar_day: 32 is too large (want at most 31)"},
		{"February 30", "  vd2011:\n    calendar_month: 2\n    calendar_day: 30\n", "rules.vd2011.calendar_day: 30 does not exist in month 2 (want 1..28)"},
		{"February 29", "  vd2011:\n    calendar_month: 2\n    calendar_day: 29\n", "rules.vd2011.calendar_day: 29 does not exist in month 2 (want 1..28)"},
		{"April 31", "  vd2011:\n    calendar_month: 4\n    calendar_day: 31\n", "rules.vd2011.calendar_day: 31 does not exist in month 4 (want 1..30)"},
		{"default month, day 31", "  vd2011:\n    calendar_day: 31\n", "rules.vd2011.calendar_day: 31 does not exist in month 11 (want 1..30)"},
		{"margin over 100", "  vd2011:\n    near_margin_percent: 101\n", "rules.vd2011.near_margin_percent: 101 is too large (want at most 100)"},
		{"lead time too long", "  vd2011:\n    lead_time_days: 3651\n", "rules.vd2011.lead_time_days: 3651 is too large (want at most 3650)"},
		{"negative missile lead time", "  set: missile1988\n  missile1988:\n    lead_time_hours: -24\n", "rules.missile1988.lead_time_hours: -24 is negative"},
		{"missile window too long", "  set: missile1988\n  missile1988:\n    max_window_hours: 8761\n", "rules.missile1988.max_window_hours: 8761 is too large (want at most 8760)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := agreement.Parse(withRules(t, tt.rules))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRulesEffectiveWithoutParse(t *testing.T) {
	var r agreement.Rules
	if got, want := r.EffectiveVD2011(), agreement.DefaultVD2011(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got, want := r.EffectiveMissile1988(), agreement.DefaultMissile1988(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	r.VD2011 = &agreement.VD2011{NearMarginPercent: 10}
	if got := r.EffectiveVD2011().NearMarginPercent; got != 10 {
		t.Errorf("got near margin %d, want 10", got)
	}
	if r.VD2011.LeadTimeDays != 0 {
		t.Errorf("got the override modified by EffectiveVD2011, want it unchanged")
	}
}
