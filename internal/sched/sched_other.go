//go:build !linux

package sched

import "runtime"

// Lock locks the calling goroutine to its OS thread; elsewhere than Linux
// it cannot apply p and says so when p would change anything.
func Lock(p Policy) error {
	runtime.LockOSThread()
	return Apply(p)
}

// Apply returns ErrUnsupported unless p changes nothing.
func Apply(p Policy) error {
	if p.IsZero() {
		return nil
	}
	return ErrUnsupported
}

// Allowed returns ErrUnsupported.
func Allowed() (CPUs, error) { return nil, ErrUnsupported }

// Thread returns ErrUnsupported.
func Thread(int) (Info, error) { return Info{}, ErrUnsupported }

// Threads returns ErrUnsupported.
func Threads() ([]Info, error) { return nil, ErrUnsupported }

// TID returns 0.
func TID() int { return 0 }

func setName(string) error { return nil }
