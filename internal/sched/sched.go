// Package sched gives OS threads a scheduling class, a nice value and a CPU
// affinity, so the kernel runs inference first and background work
// (preview, recording and snapshot encoding) in what is left.
//
// Linux schedules threads, not processes: a goroutine that wants a policy
// locks itself to its OS thread (runtime.LockOSThread) and sets it there.
// Threads that C code starts from that thread (x264's, ONNX Runtime's pool)
// inherit policy, nice and affinity. A lowered thread never goes back to Go's
// pool: an unprivileged thread cannot raise its priority again, and any
// goroutine could land on it. So Run keeps the thread locked until its
// goroutine exits, and the runtime then ends the thread. The process's main
// thread is never changed: the runtime cannot end it (it would stay lowered,
// and tools such as ps show the process by its name and priority).
//
// What needs privileges (docs/design.md#scheduling): lowering a thread
// (higher nice, SCHED_BATCH, SCHED_IDLE) and narrowing its affinity within
// the process's cpuset work for any user; a nice value below the thread's
// current one, and real-time policies, need CAP_SYS_NICE (or RLIMIT_NICE).
package sched

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// ErrUnsupported is returned where threads cannot be given a policy (not Linux).
var ErrUnsupported = errors.New("sched: per-thread scheduling is not supported on this system")

// Class is a thread's scheduling class.
type Class string

// The classes. Normal leaves the thread's policy and nice value alone.
const (
	// Normal leaves the thread as the process started it (SCHED_OTHER).
	Normal Class = "normal"
	// Nice keeps SCHED_OTHER with a higher nice value: a smaller share of
	// a busy CPU (nice 10 weighs about a tenth of nice 0).
	Nice Class = "nice"
	// Batch is SCHED_BATCH with the nice value: the same share as Nice, but
	// the thread never preempts a running one when it wakes, so it does
	// not cut into an inference run's time slice.
	Batch Class = "batch"
	// Idle is SCHED_IDLE: the thread runs only on a CPU nothing else wants
	// (its weight is 3 against nice 0's 1024). Under a saturated detector
	// it gets almost nothing, and its work (a preview frame) is dropped.
	Idle Class = "idle"
)

// Classes lists the class names a pipeline file may use.
func Classes() []string { return []string{string(Idle), string(Batch), string(Nice), string(Normal)} }

// UnmarshalText parses a class name.
func (c *Class) UnmarshalText(b []byte) error {
	v := Class(b)
	if !slices.Contains(Classes(), string(v)) {
		return fmt.Errorf("unknown scheduling class %q: use %s", b, strings.Join(Classes(), ", "))
	}
	*c = v
	return nil
}

// Run runs fn on an OS thread with policy p, and returns when fn does. fn
// gets the kernel's refusal of p, if any (it then runs without p, or may
// return at once). Call Run as the last thing a goroutine does: the
// goroutine stays locked to the changed thread, which ends with it. A zero
// p runs fn on the calling goroutine, unlocked.
func Run(p Policy, fn func(err error)) {
	if p.IsZero() {
		fn(nil)
		return
	}
	runtime.LockOSThread()
	if onMainThread() {
		// This goroutine holds the main thread, so the one it starts runs
		// on another; the main thread goes back to the pool unchanged.
		done := make(chan struct{})
		go func() {
			defer close(done)
			Run(p, fn)
		}()
		<-done
		runtime.UnlockOSThread()
		return
	}
	fn(Apply(p))
	// Not unlocked: see the package comment.
}

// DefaultNice is the nice value of Nice and Batch threads when none is given.
const DefaultNice = 10

// Policy is what a thread gets. The zero value changes nothing.
type Policy struct {
	// Class is the scheduling class ("" means Normal).
	Class Class
	// Nice is the thread's nice value (-20..19) for Normal, Nice and Batch;
	// nil keeps the thread's own for Normal and means DefaultNice for
	// Nice and Batch. SCHED_IDLE ignores it.
	Nice *int
	// CPUs, when not empty, is the thread's CPU affinity.
	CPUs CPUs
}

// IsZero reports whether p changes nothing.
func (p Policy) IsZero() bool {
	return (p.Class == "" || p.Class == Normal) && p.Nice == nil && len(p.CPUs) == 0
}

// String describes p for logs.
func (p Policy) String() string {
	c := p.Class
	if c == "" {
		c = Normal
	}
	s := string(c)
	if n, ok := p.nice(); ok && c != Idle {
		s += fmt.Sprintf(" nice %d", n)
	}
	if len(p.CPUs) > 0 {
		s += " cpus " + p.CPUs.String()
	}
	return s
}

// nice returns the nice value p sets, if any.
func (p Policy) nice() (int, bool) {
	if p.Nice != nil {
		return *p.Nice, true
	}
	if p.Class == Nice || p.Class == Batch {
		return DefaultNice, true
	}
	return 0, false
}

// CPUs is a set of CPU numbers, sorted, without duplicates.
type CPUs []int

// MaxCPU bounds the CPU numbers a list may name.
const MaxCPU = 1023

// ParseCPUs parses a Linux CPU list ("0-1", "0,2-3", as in taskset -c and
// /sys/fs/cgroup/cpuset.cpus). The empty string is the empty set.
func ParseCPUs(s string) (CPUs, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out CPUs
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := cpuNumber(lo)
		if err != nil {
			return nil, fmt.Errorf("%q in %q: %w", part, s, err)
		}
		b := a
		if isRange {
			if b, err = cpuNumber(hi); err != nil {
				return nil, fmt.Errorf("%q in %q: %w", part, s, err)
			}
			if b < a {
				return nil, fmt.Errorf("%q in %q: range ends before it starts", part, s)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func cpuNumber(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, errors.New("want CPU numbers and ranges like 0-1,3")
	}
	if n > MaxCPU {
		return 0, fmt.Errorf("CPU %d is past %d", n, MaxCPU)
	}
	return n, nil
}

// String formats c as a CPU list ("0-1,3").
func (c CPUs) String() string {
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", c[i], c[j])
		} else {
			fmt.Fprintf(&b, "%d", c[i])
		}
		i = j + 1
	}
	return b.String()
}

// Missing returns the CPUs of c that are not in allowed.
func (c CPUs) Missing(allowed CPUs) CPUs {
	var out CPUs
	for _, x := range c {
		if !slices.Contains(allowed, x) {
			out = append(out, x)
		}
	}
	return out
}

// Info is a thread's scheduling state as the kernel reports it.
type Info struct {
	TID  int
	Name string
	// Class is Normal (SCHED_OTHER), Batch, Idle, or the kernel's policy
	// number for others ("policy 1" is SCHED_FIFO).
	Class Class
	Nice  int
	CPUs  CPUs
}

// ParseAllowed parses a CPU list and checks that the process may use every
// CPU in it (its cpuset and affinity); where that cannot be read, it only
// parses. The error says what to write instead.
func ParseAllowed(s string) (CPUs, error) {
	cpus, err := ParseCPUs(s)
	if err != nil || len(cpus) == 0 {
		return cpus, err
	}
	if allowed, err := Allowed(); err == nil {
		if miss := cpus.Missing(allowed); len(miss) > 0 {
			return nil, fmt.Errorf("CPU %s is not available to this process (it may use %s): name CPUs from that list", miss, allowed)
		}
	}
	return cpus, nil
}
