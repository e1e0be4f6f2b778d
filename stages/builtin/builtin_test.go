package builtin

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/analytics"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/object"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/track"
)

const (
	ssdModel = "../../models/ssd_mobilenet_v2_coco.onnx"
	vtest    = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
)

func openSSD(t *testing.T) *infer.Detector {
	t.Helper()
	realpart.File(t, realpart.SSDModel, ssdModel)
	det, err := infer.Open(infer.Config{Path: ssdModel, Format: "ssd", Threads: 2, Batch: 4, Classes: []string{"person"}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = det.Close() })
	return det
}

// frames decodes n consecutive vtest.avi frames, captured 100 ms apart.
func frames(t *testing.T, n int) []*stages.Frame {
	t.Helper()
	realpart.File(t, realpart.SampleVideo, vtest)
	vc, err := gocv.VideoCaptureFile(vtest)
	require.NoError(t, err)
	defer vc.Close()
	start := time.Now()
	var out []*stages.Frame
	for i := 0; i < n; i++ {
		m := gocv.NewMat()
		require.True(t, vc.Read(&m))
		f := stages.NewFrame("plaza", uint64(i+1), picture.New(m))
		f.Captured = start.Add(time.Duration(i) * 100 * time.Millisecond)
		out = append(out, f)
	}
	return out
}

func TestSamplingEveryAndMaxFPS(t *testing.T) {
	matcheck.Leaks(t)
	det := openSSD(t)
	fs := frames(t, 12)
	inputs := NewInputs()
	pre := NewPreprocess(det, NewSampling(3, 0), inputs)
	var inferred []uint64
	for _, f := range fs {
		out, err := pre.Process(context.Background(), f)
		require.NoError(t, err)
		require.Len(t, out, 1, "skipped frames pass through")
		if inputs.has(f) {
			inferred = append(inferred, f.Seq)
		}
		f.Release()
	}
	require.Equal(t, []uint64{1, 4, 7, 10}, inferred)

	// 10 fps frames with max_fps 4: at most one frame in every 250 ms.
	fs = frames(t, 12)
	pre = NewPreprocess(det, NewSampling(1, 4), inputs)
	inferred = nil
	for _, f := range fs {
		_, err := pre.Process(context.Background(), f)
		require.NoError(t, err)
		if inputs.has(f) {
			inferred = append(inferred, f.Seq)
		}
		f.Release()
	}
	require.Equal(t, []uint64{1, 4, 7, 10}, inferred)
	require.Zero(t, inputs.Len(), "a released frame returns its input")
}

// Preprocess -> batched detect -> track on real frames: people are detected
// in one batched run, tracked with stable IDs, and frames that skipped
// inference still carry predicted tracks.
func TestDetectAndTrackOnRealFrames(t *testing.T) {
	matcheck.Leaks(t)
	det := openSSD(t)
	ctx := context.Background()
	sampling := NewSampling(2, 0)
	inputs := NewInputs()
	pre := NewPreprocess(det, sampling, inputs)
	detect := NewDetect(det, 4, inputs, nil)
	require.Equal(t, 4, detect.BatchSize())
	tcfg := track.DefaultConfig()
	tcfg.MinHits = 2
	tr := NewTrack("p", tcfg, analytics.Config{})
	var emitted []event.Event
	tr.OnClose(func(_ string, evs ...event.Event) { emitted = append(emitted, evs...) })

	fs := frames(t, 24)
	for _, f := range fs {
		_, err := pre.Process(ctx, f)
		require.NoError(t, err)
	}
	var out []*stages.Frame
	for i := 0; i < len(fs); i += 4 {
		o, err := detect.ProcessBatch(ctx, fs[i:i+4])
		require.NoError(t, err)
		out = append(out, o...)
	}
	require.Len(t, out, 24)
	ids := map[uint64]int{}
	for _, f := range out {
		require.False(t, inputs.has(f), "detect consumes the input")
		require.Equal(t, f.Seq%2 == 1, f.Inferred, "every second frame is inferred")
		_, err := tr.Process(ctx, f)
		require.NoError(t, err)
		if f.Seq > 6 {
			require.NotEmpty(t, f.Tracks, "frame %d (inferred %v) has tracks", f.Seq, f.Inferred)
		}
		for _, tk := range f.Tracks {
			ids[tk.ID]++
		}
		emitted = append(emitted, f.Events...)
	}
	// Eight or so people walk through these 2.4 s; IDs are stable, so a
	// handful of IDs each cover most frames.
	stable := 0
	for _, n := range ids {
		if n >= 12 {
			stable++
		}
	}
	require.GreaterOrEqual(t, stable, 3, "track IDs persist across frames: %v", ids)
	require.NoError(t, tr.Close(ctx))
	require.NoError(t, detect.Close(ctx))
	started, ended := 0, 0
	for _, e := range emitted {
		switch e.Type {
		case event.TrackStarted:
			started++
		case event.TrackEnded:
			ended++
		}
	}
	require.Positive(t, started)
	require.Equal(t, started, ended, "closing ends every open track")
	for _, f := range out {
		f.Release()
	}
}

// Offline, the tracker runs on the file's own clock: the same frames give
// the same tracks and events however fast they were read.
func TestTrackOfflineRunsOnTheFileClock(t *testing.T) {
	run := func(offline bool, readEvery time.Duration) (ended []uint64, times []time.Duration) {
		tcfg := track.DefaultConfig()
		tcfg.MinHits, tcfg.MaxLost = 1, 500*time.Millisecond
		tr := NewTrack("p", tcfg, analytics.Config{})
		tr.offline = offline
		start := time.Now()
		var first time.Time
		for i := 0; i < 30; i++ {
			f := &stages.Frame{Stream: "cam", Seq: uint64(i + 1), Width: 640, Height: 480,
				Captured: start.Add(time.Duration(i) * readEvery),
				Media:    time.Unix(0, 0).Add(time.Duration(i) * 100 * time.Millisecond), Inferred: true}
			// A person walks right, and is out of sight on frames 10-19 (1 s).
			if i < 10 || i >= 20 {
				f.Detections = []object.Detection{{Label: "person", Confidence: 0.9, Box: geom.Rect{X: float64(20 + 10*i), Y: 100, W: 40, H: 100}}}
			}
			_, err := tr.Process(context.Background(), f)
			require.NoError(t, err)
			for _, e := range f.Events {
				if first.IsZero() {
					first = e.Time
				}
				times = append(times, e.Time.Sub(first))
				if e.Type == event.TrackEnded {
					ended = append(ended, e.TrackID)
				}
			}
		}
		return ended, times
	}
	paced, pacedTimes := run(true, 100*time.Millisecond)
	fast, fastTimes := run(true, time.Millisecond)
	require.Equal(t, []uint64{1}, paced, "the first track ends in the 1 s gap (max_lost 500ms)")
	require.Equal(t, paced, fast)
	require.Equal(t, pacedTimes, fastTimes, "event times follow the file's clock")
	live, _ := run(false, time.Millisecond)
	require.Empty(t, live, "live, 10 frames 1 ms apart are no gap at all")
}
