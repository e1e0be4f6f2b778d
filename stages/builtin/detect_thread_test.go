package builtin

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/sched"
	"github.com/osprey-vision/osprey/stages"
)

// detectThreads returns the threads named after the detector's thread: its
// own and the ONNX Runtime pool threads started from it.
func detectThreads(t *testing.T) []sched.Info {
	t.Helper()
	all, err := sched.Threads()
	require.NoError(t, err)
	var out []sched.Info
	for _, in := range all {
		if in.Name == DetectThreadName {
			out = append(out, in)
		}
	}
	return out
}

// TestDetectThreadPolicy builds the detect stage with detect.cpus and
// detect.nice and checks, from the kernel's view of every thread, that the
// session's own thread and ONNX Runtime's pool both carry them, and that
// the stage still detects. (ONNX Runtime also starts one process-wide
// thread with the first session, which keeps its creator's policy after the
// stage closes; the worker's own exit is tested in internal/sched.)
func TestDetectThreadPolicy(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-thread scheduling is Linux's")
	}
	realpart.File(t, realpart.SSDModel, ssdModel)
	matcheck.Leaks(t)
	require.Empty(t, detectThreads(t), "no detector thread before the stage")
	allowed, err := sched.Allowed()
	require.NoError(t, err)
	last := allowed[len(allowed)-1:]
	seven := 7
	c := DetectDefaults()
	c.Model.Path, c.Model.Format, c.Model.Threads = ssdModel, "ssd", 2
	c.Detect.Classes = []string{"person"}
	c.Detect.CPUs, c.Detect.Nice = last.String(), &seven
	specs, err := buildDetect(&c, &stages.Resources{Resolve: func(p string) string { return p }, Shared: &stages.Shared{}})
	require.NoError(t, err)
	pre, det := specs[0].Stage, specs[1].Stage

	threads := detectThreads(t)
	// The session's thread plus Threads-1 pool threads.
	require.GreaterOrEqual(t, len(threads), 2, "threads: %+v", threads)
	for _, th := range threads {
		require.Equal(t, sched.Normal, th.Class, "thread %d", th.TID)
		require.Equal(t, 7, th.Nice, "thread %d", th.TID)
		require.Equal(t, last, th.CPUs, "thread %d", th.TID)
	}

	people := 0
	for _, f := range frames(t, 3) {
		out, err := pre.Process(context.Background(), f)
		require.NoError(t, err)
		out, err = det.Process(context.Background(), out[0])
		require.NoError(t, err)
		require.True(t, out[0].Inferred)
		people += len(out[0].Detections)
		out[0].Release()
	}
	require.Positive(t, people, "vtest.avi's first frames show people")

	require.NoError(t, det.Close(context.Background()))
	require.NoError(t, pre.Close(context.Background()))
}

// TestDetectThreadRefused: a nice value the kernel refuses fails the build
// with the reason, instead of running the detector unscheduled.
func TestDetectThreadRefused(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-thread scheduling is Linux's")
	}
	realpart.File(t, realpart.SSDModel, ssdModel)
	c := DetectDefaults()
	c.Model.Path, c.Model.Format = ssdModel, "ssd"
	c.Detect.CPUs = "1023" // validation would refuse it; the kernel does too
	_, err := buildDetect(&c, &stages.Resources{Resolve: func(p string) string { return p }, Shared: &stages.Shared{}})
	require.ErrorContains(t, err, "detect: thread with normal cpus 1023: sched: affinity 1023: invalid argument")
}
