package cputime

import (
	"runtime"
	"testing"
	"time"
)

// spin burns about d of CPU on the calling thread.
func spin(d time.Duration) (x uint64) {
	for t0 := time.Now(); time.Since(t0) < d; {
		for i := range 10000 {
			x += uint64(i) * x
		}
	}
	return x
}

func TestThreadCountsOnlyThisThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, err := Thread()
	if err != nil {
		t.Fatal(err)
	}
	p0, err := Process()
	if err != nil {
		t.Fatal(err)
	}
	spin(30 * time.Millisecond)
	t1, _ := Thread()
	p1, _ := Process()
	// On a loaded machine the wall time is an upper bound only: the thread
	// may have been descheduled, but it cannot have run longer.
	if d := t1 - t0; d <= 0 || d > 200*time.Millisecond {
		t.Fatalf("thread CPU over a 30 ms spin: %v", d)
	}
	if p1-p0 < t1-t0 {
		t.Fatalf("process CPU %v is less than one of its threads' %v", p1-p0, t1-t0)
	}
}

func TestThreadsFindsANamedThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := ThreadName()
	if err != nil {
		t.Fatal(err)
	}
	if err := SetThreadName("osp:test-a-very-long-name"); err != nil {
		t.Fatal(err)
	}
	defer SetThreadName(old)
	if got, _ := ThreadName(); got != "osp:test-a-very" {
		t.Fatalf("thread name %q, want it cut to 15 bytes", got)
	}
	spin(10 * time.Millisecond)
	own, _ := Thread()
	ts, err := Threads(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range ts {
		if th.TID == TID() {
			if th.Name != "osp:test-a-very" {
				t.Fatalf("/proc names this thread %q", th.Name)
			}
			// schedstat and the thread clock are the same counter.
			if th.CPU < own-time.Millisecond || th.CPU > own+50*time.Millisecond {
				t.Fatalf("/proc says %v of CPU, the thread clock %v", th.CPU, own)
			}
			return
		}
	}
	t.Fatalf("thread %d not among %d threads", TID(), len(ts))
}

func TestThreadsMatch(t *testing.T) {
	ts, err := Threads(func(name string) bool { return name == "no such thread" })
	if err != nil || len(ts) != 0 {
		t.Fatalf("%d threads, %v", len(ts), err)
	}
}

func TestReadMachine(t *testing.T) {
	a, err := ReadMachine()
	if err != nil {
		t.Fatal(err)
	}
	spin(20 * time.Millisecond)
	b, err := ReadMachine()
	if err != nil {
		t.Fatal(err)
	}
	if a.Busy+a.Idle <= 0 || b.Busy < a.Busy || b.Idle < a.Idle {
		t.Fatalf("machine CPU went from %+v to %+v", a, b)
	}
}

func BenchmarkThreads(b *testing.B) {
	for b.Loop() {
		if _, err := Threads(nil); err != nil {
			b.Fatal(err)
		}
	}
}
