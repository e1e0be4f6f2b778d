package sched

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseCPUs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want CPUs
		str  string
		err  string
	}{
		{in: "", want: nil},
		{in: "0-1", want: CPUs{0, 1}, str: "0-1"},
		{in: " 3, 1,1 ,0-1", want: CPUs{0, 1, 3}, str: "0-1,3"},
		{in: "0,2-4,7", want: CPUs{0, 2, 3, 4, 7}, str: "0,2-4,7"},
		{in: "a", err: `"a" in "a": want CPU numbers and ranges like 0-1,3`},
		{in: "3-1", err: `"3-1" in "3-1": range ends before it starts`},
		{in: "-1", err: `"-1" in "-1": want CPU numbers and ranges like 0-1,3`},
		{in: "0-", err: `"0-" in "0-": want CPU numbers and ranges like 0-1,3`},
		{in: "2000", err: `"2000" in "2000": CPU 2000 is past 1023`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseCPUs(tc.in)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.str, got.String())
		})
	}
}

func TestClassUnmarshal(t *testing.T) {
	var c Class
	require.NoError(t, c.UnmarshalText([]byte("batch")))
	require.Equal(t, Batch, c)
	require.EqualError(t, c.UnmarshalText([]byte("fifo")), `unknown scheduling class "fifo": use idle, batch, nice, normal`)
}

// procStat reads a thread's nice value and policy from
// /proc/self/task/TID/stat (fields 19 and 41), a second witness beside
// sched_getattr.
func procStat(t *testing.T, tid int) (nice, policy int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	require.NoError(t, err)
	// The name (field 2) may hold spaces; the fields after it start past ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	nice, err = strconv.Atoi(f[19-3])
	require.NoError(t, err)
	policy, err = strconv.Atoi(f[41-3])
	require.NoError(t, err)
	return nice, policy
}

// onLockedThread runs fn on a thread that gets nothing but is locked like
// one Run changes (Run's CPU list is all allowed CPUs, which changes nothing
// that matters), so fn's Apply lands on a thread that ends with it and
// never on the main thread.
func onLockedThread(t *testing.T, fn func()) {
	allowed, err := Allowed()
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(Policy{CPUs: allowed}, func(err error) {
			if err == nil {
				fn()
			}
		})
	}()
	<-done
}

func TestApplySetsThePolicy(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-thread scheduling is Linux's")
	}
	twelve := 12
	for _, tc := range []struct {
		name     string
		p        Policy
		class    Class
		policy   int // /proc's number
		nice     int // -1: the process's own
		procNice int
	}{
		{name: "idle", p: Policy{Class: Idle}, class: Idle, policy: 5, nice: -1},
		{name: "batch nice 12", p: Policy{Class: Batch, Nice: &twelve}, class: Batch, policy: 3, nice: 12},
		{name: "nice default", p: Policy{Class: Nice}, class: Normal, policy: 0, nice: DefaultNice},
		{name: "normal leaves it", p: Policy{Class: Normal}, class: Normal, policy: 0, nice: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			own, err := Thread(TID())
			require.NoError(t, err)
			want := tc.nice
			if want < 0 {
				want = own.Nice
			}
			var in Info
			var pnice, ppolicy int
			var applyErr, readErr error
			onLockedThread(t, func() {
				if applyErr = Apply(tc.p); applyErr != nil {
					return
				}
				in, readErr = Thread(TID())
				pnice, ppolicy = procStat(t, TID())
			})
			require.NoError(t, applyErr)
			require.NoError(t, readErr)
			require.Equal(t, tc.class, in.Class)
			require.Equal(t, want, in.Nice)
			require.Equal(t, tc.policy, ppolicy, "/proc policy")
			require.Equal(t, want, pnice, "/proc nice")
			// The calling thread is untouched.
			after, err := Thread(TID())
			require.NoError(t, err)
			require.Equal(t, own.Class, after.Class)
		})
	}
}

func TestAffinity(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-thread scheduling is Linux's")
	}
	allowed, err := Allowed()
	require.NoError(t, err)
	require.NotEmpty(t, allowed)
	last := CPUs{allowed[len(allowed)-1]}
	var got Info
	var applyErr error
	onLockedThread(t, func() {
		if applyErr = Apply(Policy{CPUs: last}); applyErr == nil {
			got, applyErr = Thread(TID())
		}
	})
	require.NoError(t, applyErr)
	require.Equal(t, last, got.CPUs)

	// CPUs outside the cpuset are refused with what to do.
	onLockedThread(t, func() { applyErr = Apply(Policy{CPUs: CPUs{MaxCPU}}) })
	require.ErrorContains(t, applyErr, "sched: affinity 1023: invalid argument: name CPUs the process may use")
}

func TestWorkerRunsOnItsThread(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-thread scheduling is Linux's")
	}
	w, err := Start("osp:sched-test", Policy{Class: Batch})
	require.NoError(t, err)
	var tids []int
	var in Info
	for range 3 {
		w.Do(func() {
			tids = append(tids, TID())
			in, err = Thread(TID())
		})
	}
	require.NoError(t, err)
	require.Equal(t, tids[0], tids[1])
	require.Equal(t, tids[0], tids[2])
	require.Equal(t, Batch, in.Class)
	require.Equal(t, DefaultNice, in.Nice)
	require.Equal(t, "osp:sched-test", in.Name)
	require.NotEqual(t, os.Getpid(), tids[0], "the main thread is never changed")
	w.Close()
	w.Close()
	// The lowered thread ended with the worker rather than going back to Go's pool.
	// (The runtime ends it just after the goroutine returns: poll.)
	require.Eventually(t, func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tids[0]))
		return os.IsNotExist(err)
	}, 5*time.Second, 10*time.Millisecond, "worker thread %d still exists", tids[0])
}

func TestWorkerRefusedPolicy(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-thread scheduling is Linux's")
	}
	_, err := Start("", Policy{CPUs: CPUs{MaxCPU}})
	require.ErrorContains(t, err, "sched: affinity 1023")
}

// TestRunAvoidsTheMainThread: Run from the goroutine that holds the main
// thread changes another thread and leaves the main one as it was.
func TestRunAvoidsTheMainThread(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-thread scheduling is Linux's")
	}
	main, err := Thread(os.Getpid())
	require.NoError(t, err)
	done := make(chan struct{})
	var ranOn int
	go func() {
		defer close(done)
		// Find the main thread: lock, and retry until this goroutine is on it.
		for range 1000 {
			runtime.LockOSThread()
			if TID() == os.Getpid() {
				Run(Policy{Class: Idle}, func(err error) {
					if err == nil {
						ranOn = TID()
					}
				})
				runtime.UnlockOSThread()
				return
			}
			runtime.UnlockOSThread()
			runtime.Gosched()
		}
	}()
	<-done
	if ranOn == 0 {
		t.Skip("the test never got onto the main thread (the runtime keeps it busy elsewhere)")
	}
	require.NotEqual(t, os.Getpid(), ranOn)
	after, err := Thread(os.Getpid())
	require.NoError(t, err)
	require.Equal(t, main.Class, after.Class)
	require.Equal(t, main.Nice, after.Nice)
}
