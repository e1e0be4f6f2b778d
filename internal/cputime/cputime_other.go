//go:build !linux

package cputime

import "time"

// Thread returns ErrUnsupported off Linux.
func Thread() (time.Duration, error) { return 0, ErrUnsupported }

// Process returns ErrUnsupported off Linux.
func Process() (time.Duration, error) { return 0, ErrUnsupported }

// TID returns 0 off Linux.
func TID() int { return 0 }

// ThreadName returns ErrUnsupported off Linux.
func ThreadName() (string, error) { return "", ErrUnsupported }

// SetThreadName returns ErrUnsupported off Linux.
func SetThreadName(string) error { return ErrUnsupported }

// Threads returns ErrUnsupported off Linux.
func Threads(func(name string) bool) ([]ThreadCPU, error) { return nil, ErrUnsupported }

// ReadMachine returns ErrUnsupported off Linux.
func ReadMachine() (Machine, error) { return Machine{}, ErrUnsupported }
