package server

import (
	"os"
	"syscall"
)

// fallocate(2) modes (linux/falloc.h).
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
)

// punch frees the disk blocks of f's first n bytes, which read as zeros
// afterwards; the file keeps its size. Filesystems without hole punching
// return an error and keep the blocks.
func punch(f *os.File, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fallocate(int(fd), fallocPunchHole|fallocKeepSize, 0, n)
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
