package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// tuneGC sets the garbage collector's percent, and its soft memory limit
// unless limit is negative, where the environment (GOGC, GOMEMLIMIT) does
// not set them. It reports whether it set both.
func tuneGC(log *slog.Logger, percent int, limit int64) bool {
	both := true
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
		log.Debug("garbage collection", "gc_percent", percent)
	} else {
		both = false
	}
	if os.Getenv("GOMEMLIMIT") == "" && limit >= 0 {
		debug.SetMemoryLimit(limit)
		log.Debug("garbage collection", "memory_limit_bytes", limit)
	} else {
		both = false
	}
	return both
}
