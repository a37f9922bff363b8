//go:build !linux

package bench

import (
	"errors"
	"os/exec"
)

// errNoProc is returned where the figure needs Linux's /proc.
var errNoProc = errors.New("process figures need Linux's /proc")

func cpuSeconds(int) (float64, error) { return 0, errNoProc }

func peakRSS(int) (uint64, error) { return 0, errNoProc }

func resetPeakRSS(int) error { return errNoProc }

func dieWithParent(*exec.Cmd) {}

func fsType(string) string { return "unknown" }

func cpuModel() string { return "unknown" }

func kernel() string { return "unknown" }

func loadAverage() float64 { return 0 }

func machineCPU() (busy, total uint64, err error) { return 0, 0, errNoProc }
