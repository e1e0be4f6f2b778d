package cputime

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Thread returns the CPU time of the calling OS thread. Lock the goroutine
// to its thread (runtime.LockOSThread) around the work being timed, or the
// two readings may come from different threads.
func Thread() (time.Duration, error) { return clock(unix.CLOCK_THREAD_CPUTIME_ID) }

// Process returns the CPU time of the whole process, every thread it ever
// had included (also those that have exited).
func Process() (time.Duration, error) { return clock(unix.CLOCK_PROCESS_CPUTIME_ID) }

func clock(id int32) (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0, fmt.Errorf("cputime: clock_gettime: %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

// TID returns the calling OS thread's id.
func TID() int { return unix.Gettid() }

// ThreadName returns the calling OS thread's name (at most 15 bytes).
func ThreadName() (string, error) {
	var buf [16]byte
	if err := unix.Prctl(unix.PR_GET_NAME, uintptr(unsafe.Pointer(&buf)), 0, 0, 0); err != nil {
		return "", fmt.Errorf("cputime: get thread name: %w", err)
	}
	return string(bytes.TrimRight(buf[:], "\x00")), nil
}

// SetThreadName names the calling OS thread (cut to 15 bytes). Threads
// that C code creates from it with pthread_create inherit the name; the Go
// runtime never clones its own threads from a locked thread, so on a locked
// thread only foreign threads inherit it.
func SetThreadName(name string) error {
	var buf [16]byte
	copy(buf[:15], name)
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&buf)), 0, 0, 0); err != nil {
		return fmt.Errorf("cputime: set thread name: %w", err)
	}
	return nil
}

// Threads returns the CPU time of the live threads of the process whose
// name match accepts (nil: every thread), read from /proc/self/task
// (schedstat: nanoseconds on the CPU). A thread that exits between listing
// and reading is left out. Each thread read costs two small files.
func Threads(match func(name string) bool) ([]ThreadCPU, error) {
	dir := "/proc/self/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cputime: %w", err)
	}
	out := make([]ThreadCPU, 0, len(ents))
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		name, err := os.ReadFile(filepath.Join(dir, e.Name(), "comm"))
		if err != nil {
			continue // exited meanwhile
		}
		n := strings.TrimSpace(string(name))
		if match != nil && !match(n) {
			continue
		}
		st, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(st))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cputime: %s/%s/schedstat: %q: %w", dir, e.Name(), st, err)
		}
		out = append(out, ThreadCPU{TID: tid, Name: n, CPU: time.Duration(ns)})
	}
	return out, nil
}

// ReadMachine returns the machine's CPU time from /proc/stat: busy (user,
// nice, system, irq, softirq, steal) and idle (idle, iowait), over all cores.
func ReadMachine() (Machine, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return Machine{}, fmt.Errorf("cputime: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return Machine{}, fmt.Errorf("cputime: /proc/stat: unexpected first line %q", line)
	}
	var v [8]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return Machine{}, fmt.Errorf("cputime: /proc/stat: %q: %w", line, err)
		}
	}
	tick := time.Second / time.Duration(clkTck)
	user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	return Machine{
		Busy: time.Duration(user+nice+system+irq+softirq+steal) * tick,
		Idle: time.Duration(idle+iowait) * tick,
	}, nil
}

// clkTck is USER_HZ, the unit of /proc/stat: 100 on every Linux ABI Go
// supports.
const clkTck = 100
