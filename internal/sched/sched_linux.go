package sched

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// onMainThread reports whether the calling thread is the process's first.
func onMainThread() bool { return unix.Gettid() == unix.Getpid() }

// Apply gives the calling OS thread policy p. The caller must have locked
// its goroutine to the thread. An error names what the kernel refused; an
// EPERM means the change needs CAP_SYS_NICE (a nice value below the
// thread's own) or CPUs outside the process's cpuset (EINVAL).
func Apply(p Policy) error {
	if p.IsZero() {
		return nil
	}
	tid := unix.Gettid()
	var errs []error
	if len(p.CPUs) > 0 {
		var set unix.CPUSet
		for _, c := range p.CPUs {
			set.Set(c)
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			errs = append(errs, fmt.Errorf("sched: affinity %s: %w%s", p.CPUs, err, hint(err, "name CPUs the process may use (taskset -cp $$, the cgroup's cpuset.cpus)")))
		}
	}
	if err := setClass(tid, p); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func setClass(tid int, p Policy) error {
	n, hasNice := p.nice()
	class := p.Class
	if class == "" {
		class = Normal
	}
	if class == Normal && !hasNice {
		return nil
	}
	var policy uint32
	switch class {
	case Normal, Nice:
		policy = unix.SCHED_NORMAL
	case Batch:
		policy = unix.SCHED_BATCH
	case Idle:
		policy = unix.SCHED_IDLE
	default:
		return fmt.Errorf("sched: unknown class %q", class)
	}
	if !hasNice {
		// SCHED_IDLE: keep the nice value, which sched_setattr would
		// otherwise reset (it matters again if the thread is ever moved
		// back to SCHED_OTHER).
		cur, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
		if err != nil {
			return fmt.Errorf("sched: getpriority: %w", err)
		}
		n = 20 - cur // Linux's getpriority returns 20 - nice
	}
	if n < -20 || n > 19 {
		return fmt.Errorf("sched: nice %d is outside -20..19", n)
	}
	attr := unix.SchedAttr{Policy: policy, Nice: int32(n)}
	if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
		return fmt.Errorf("sched: %s: %w%s", p.String(), err, hint(err, "a nice value below the thread's own needs CAP_SYS_NICE; lower the background instead (scheduling.background)"))
	}
	return nil
}

func hint(err error, what string) string {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) {
		return ": " + what
	}
	return ""
}

// Allowed returns the CPUs the calling thread may run on (the process's
// cpuset, unless its affinity was narrowed).
func Allowed() (CPUs, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched: affinity: %w", err)
	}
	return fromSet(&set), nil
}

func fromSet(set *unix.CPUSet) CPUs {
	var out CPUs
	for c := 0; c <= MaxCPU && len(out) < set.Count(); c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

// Thread reads the scheduling state of thread tid of this process.
func Thread(tid int) (Info, error) {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return Info{}, fmt.Errorf("sched: thread %d: %w", tid, err)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &set); err != nil {
		return Info{}, fmt.Errorf("sched: thread %d affinity: %w", tid, err)
	}
	in := Info{TID: tid, Nice: int(attr.Nice), CPUs: fromSet(&set)}
	switch attr.Policy {
	case unix.SCHED_NORMAL:
		in.Class = Normal
	case unix.SCHED_BATCH:
		in.Class = Batch
	case unix.SCHED_IDLE:
		in.Class = Idle
	default:
		in.Class = Class(fmt.Sprintf("policy %d", attr.Policy))
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/comm", tid)); err == nil {
		in.Name = strings.TrimSpace(string(b))
	}
	return in, nil
}

// Threads reads the scheduling state of every thread of this process; a
// thread that exits while they are read is left out.
func Threads() ([]Info, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("sched: %w", err)
	}
	out := make([]Info, 0, len(ents))
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if in, err := Thread(tid); err == nil {
			out = append(out, in)
		}
	}
	return out, nil
}

// TID returns the calling OS thread's id.
func TID() int { return unix.Gettid() }

// setName names the calling thread (PR_SET_NAME keeps 15 bytes).
func setName(name string) error {
	var buf [16]byte
	copy(buf[:15], name)
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&buf[0])), 0, 0, 0); err != nil {
		return fmt.Errorf("sched: thread name: %w", err)
	}
	return nil
}
