package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// tuneGC sets the garbage collector's percent, and its soft memory limit
// unless limit is negative, where the environment (GOGC, GOMEMLIMIT) does
// not set them.
func tuneGC(log *slog.Logger, percent int, limit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
		log.Debug("garbage collection", "gc_percent", percent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && limit >= 0 {
		debug.SetMemoryLimit(limit)
		log.Debug("garbage collection", "memory_limit_bytes", limit)
	}
}
