package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// fmtTime formats an instant in UTC to the minute, or to the second (and
// below) when it has them: "2027-03-01T00:00Z", "2026-11-15T23:59:59Z".
func fmtTime(t time.Time) string {
	t = t.UTC()
	switch {
	case t.Second() == 0 && t.Nanosecond() == 0:
		return t.Format("2006-01-02T15:04Z")
	case t.Nanosecond() == 0:
		return t.Format("2006-01-02T15:04:05Z")
	}
	return t.Format("2006-01-02T15:04:05.999999999Z")
}

// fmtDur formats a duration as "34d14h" (days) or "47h59m" (hours), from
// the largest to the smallest non-zero unit: "42d", "48h0m1s", "0s".
func fmtDur(d time.Duration, days bool) string {
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	var parts [4]int64
	if days {
		parts[0] = int64(d / (24 * time.Hour))
		d %= 24 * time.Hour
	}
	parts[1] = int64(d / time.Hour)
	d %= time.Hour
	parts[2] = int64(d / time.Minute)
	d %= time.Minute
	frac := d % time.Second
	parts[3] = int64(d / time.Second)
	units := [4]string{"d", "h", "m", "s"}
	first, last := -1, -1
	for i, p := range parts {
		if p != 0 || (i == 3 && frac != 0) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return b.String() + "0s"
	}
	for i := first; i <= last; i++ {
		if i == 3 && frac != 0 {
			ns := strings.TrimRight(fmt.Sprintf("%09d", int64(frac)), "0")
			b.WriteString(strconv.FormatInt(parts[3], 10) + "." + ns + "s")
			continue
		}
		b.WriteString(strconv.FormatInt(parts[i], 10) + units[i])
	}
	return b.String()
}

// fmtCount formats a count with thousands separators: "12,700".
func fmtCount(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// plural returns "1 activity" or "2 activities" style counts: n followed by
// one or many.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
