// Package cputime measures where a process spends its CPU: the CPU time of
// the calling OS thread (for timing one call on a locked thread), of the
// whole process, of each of its threads (by name, so threads that C code
// starts inside a call can be charged to that call's owner), and of the
// machine as a whole (to tell this process's load from everyone else's).
//
// Linux only: elsewhere every reading returns ErrUnsupported.
package cputime

import (
	"errors"
	"time"
)

// ErrUnsupported is returned where the platform has no per-thread CPU clock.
var ErrUnsupported = errors.New("cputime: per-thread CPU time is not supported on this platform")

// ThreadCPU is one thread's CPU time so far.
type ThreadCPU struct {
	TID  int
	Name string
	CPU  time.Duration
}

// Machine is the whole machine's CPU time since boot, summed over its cores.
type Machine struct {
	Busy, Idle time.Duration
}
