package mediator

import (
	"testing"
	"time"
)

func TestAuditDue(t *testing.T) {
	end := time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		since time.Duration // from the last audit's end to now
		took  time.Duration
		end   time.Time
		want  bool
	}{
		{"no audit yet", 0, 0, time.Time{}, true},
		{"a short audit, a minute later", time.Minute, 2 * time.Second, end, true},
		{"a 30 s audit, a minute later", time.Minute, 30 * time.Second, end, false},
		{"a 30 s audit, 4.5 minutes later", 270 * time.Second, 30 * time.Second, end, true},
		{"a 30 s audit, just short of that", 270*time.Second - time.Millisecond, 30 * time.Second, end, false},
	} {
		now := tc.end.Add(tc.since)
		if tc.end.IsZero() {
			now = end
		}
		if got := auditDue(now, tc.end, tc.took); got != tc.want {
			t.Errorf("%s: auditDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}
