package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// parseCPUStat parses the first line of /proc/stat, the machine's CPU time
// in clock ticks by state ("cpu user nice system idle iowait irq softirq
// steal guest guest_nice"; older kernels give fewer fields), into busy and
// total time: idle and iowait are not busy; guest and guest_nice are
// counted in user and nice already, so they are left out.
func parseCPUStat(line string) (busy, total uint64, err error) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("couldn't parse the machine's CPU time: got %q, want \"cpu\" and at least 4 counts", line)
	}
	var ticks [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range min(len(f)-1, len(ticks)) {
		v, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("couldn't parse the machine's CPU time: count %d is %q, want a number", i+1, f[i+1])
		}
		ticks[i] = v
	}
	idle := ticks[3] + ticks[4]
	for i, v := range ticks {
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, busy + idle, nil
}
