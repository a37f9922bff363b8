package bench

import (
	"strings"
	"testing"
)

func TestParseCPUStat(t *testing.T) {
	for name, tc := range map[string]struct {
		line        string
		busy, total uint64
		err         string
	}{
		"a recent kernel":  {line: "cpu  100 5 50 800 40 3 2 1 7 0", busy: 161, total: 1001},
		"no steal, guest":  {line: "cpu 10 0 10 80 0 0 0", busy: 20, total: 100},
		"only four counts": {line: "cpu 1 2 3 4", busy: 6, total: 10},
		"a single CPU":     {line: "cpu0 1 2 3 4 5", err: `want "cpu"`},
		"too short":        {line: "cpu 1 2 3", err: "at least 4 counts"},
		"not a number":     {line: "cpu 1 x 3 4", err: `count 2 is "x"`},
		"empty":            {line: "", err: "at least 4 counts"},
	} {
		t.Run(name, func(t *testing.T) {
			busy, total, err := parseCPUStat(tc.line)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseCPUStat(%q): got %d, %d, %v; want an error containing %q", tc.line, busy, total, err, tc.err)
				}
				return
			}
			if err != nil || busy != tc.busy || total != tc.total {
				t.Errorf("parseCPUStat(%q) = %d, %d, %v; want %d, %d, nil", tc.line, busy, total, err, tc.busy, tc.total)
			}
		})
	}
}
