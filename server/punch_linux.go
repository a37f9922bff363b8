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
// return an error and keep the blocks. f is a regular file, which Fd
// leaves as it is (always blocking).
func punch(f *os.File, n int64) error {
	for {
		err := syscall.Fallocate(int(f.Fd()), fallocPunchHole|fallocKeepSize, 0, n)
		if err != syscall.EINTR {
			return err
		}
	}
}
