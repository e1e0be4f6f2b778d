// Package goprocs sizes the Go scheduler for a process whose detector
// goroutines spend most of their time inside cgo calls.
//
// A goroutine in a cgo call keeps its P (the scheduler's right to run Go
// code) until the runtime's monitor thread takes the P back. The monitor
// does that when the P has other goroutines queued, or when no P is idle,
// and after each take it polls every 20 µs for the next millisecond or so.
// With GOMAXPROCS at the core count and every detector session in a long
// ONNX Runtime call, both conditions held on nearly every inference, and
// the polling alone was a few percent of the process (docs/bench.md). One
// extra P per such goroutine keeps a P idle for the pipeline's Go code, and
// the detector yields before each run (infer), so its queue is empty when
// it enters the call and the monitor leaves it alone.
package goprocs

import (
	"os"
	"runtime"
	"sync/atomic"
)

// cores is the runtime's default seen by the last Reserve (0: none yet).
var cores atomic.Int64

// spare says whether the last Reserve added Ps.
var spare atomic.Bool

// Spare reports whether Reserve has added Ps beyond the cores. Only then
// should a goroutine yield before a long cgo call: with no idle P the yield
// just gives its P away and the call starts later (docs/bench.md).
func Spare() bool { return spare.Load() }

// Cores returns the runtime's default GOMAXPROCS, the usable cores, even
// after Reserve raised the setting: for sizing work by the cores, as the
// Ps Reserve adds are for goroutines parked in cgo.
func Cores() int {
	if n := cores.Load(); n > 0 {
		return int(n)
	}
	return runtime.GOMAXPROCS(0)
}

// Reserve sets GOMAXPROCS to the runtime's default (the usable cores,
// cgroup quotas included) plus n, one P for each goroutine that sits in
// long cgo calls. n <= 0 restores the default and its automatic updates.
// A GOMAXPROCS set in the environment always wins: Reserve then changes
// nothing. It returns the value in effect.
func Reserve(n int) int {
	if os.Getenv("GOMAXPROCS") != "" {
		spare.Store(false)
		return runtime.GOMAXPROCS(0)
	}
	runtime.SetDefaultGOMAXPROCS()
	base := runtime.GOMAXPROCS(0)
	cores.Store(int64(base))
	spare.Store(n > 0)
	if n <= 0 {
		return base
	}
	runtime.GOMAXPROCS(base + n)
	return base + n
}
