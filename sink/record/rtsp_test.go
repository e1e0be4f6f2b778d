package record

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/app"
	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/rtsptest"
	"github.com/osprey-vision/osprey/internal/testlog"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/stages/builtin"
)

const (
	vtest     = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
	modelPath = "../../models/ssd_mobilenet_v2_coco.onnx"
)

// tap is a sink that keeps a thumbnail of every frame the pipeline saw, with
// its capture time, and every event (clip.ready included, as Emit sends it).
type tap struct {
	mu     sync.Mutex
	frames []tapFrame
	events chan event.Event
}

type tapFrame struct {
	at time.Time
	th []byte
}

func (t *tap) Connect(context.Context) error { return nil }
func (t *tap) Close(context.Context) error   { return nil }
func (t *tap) EventsOnly() bool              { return false }
func (t *tap) Write(_ context.Context, f *stages.Frame) error {
	if m, err := picture.Mat(f); err == nil {
		th := thumb(m)
		t.mu.Lock()
		t.frames = append(t.frames, tapFrame{f.Captured, th})
		t.mu.Unlock()
	}
	for _, e := range f.Events {
		select {
		case t.events <- e:
		default:
		}
	}
	return nil
}

// firstSegment returns the start of the oldest segment in dir, from its
// name (start in Unix ms, duration in ms); zero before any.
func firstSegment(dir string) time.Time {
	ents, _ := os.ReadDir(dir)
	var first time.Time
	for _, e := range ents {
		var ms, dms int64
		if n, _ := fmt.Sscanf(e.Name(), "%d-%d.ts", &ms, &dms); n == 2 {
			if st := time.UnixMilli(ms); first.IsZero() || st.Before(first) {
				first = st
			}
		}
	}
	return first
}

// startOf returns the capture time of the frame the pipeline saw that looks
// most like m, among those captured in [from, to].
func (t *tap) startOf(m []byte, from, to time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ths [][]byte
	var ats []time.Time
	for _, f := range t.frames {
		if !f.at.Before(from) && !f.at.After(to) {
			ths, ats = append(ths, f.th), append(ats, f.at)
		}
	}
	if len(ths) == 0 {
		return time.Time{}, false
	}
	return ats[nearest(m, ths)], true
}

func registry() *stages.Registry {
	return stages.NewRegistry().AddSource(capture.Plugin()).AddStage(builtin.DetectPlugin()).
		AddStage(builtin.TrackPlugin()).AddSink(Plugin())
}

// TestRTSPLineCrossingClip runs the real pipeline (detector, tracker, line)
// on the GStreamer RTSP test camera with the recorder copying the camera's
// H.264: the first crossing with enough video before it yields a clip that
// starts at least pre_capture before the crossing (within one key-frame
// interval of the camera, 1 s) and lasts, within 1 s, from there to
// post_capture after it; ffprobe reads it, ffmpeg decodes it without error.
func TestRTSPLineCrossingClip(t *testing.T) {
	abs, _ := filepath.Abs(modelPath)
	realpart.File(t, realpart.SSDModel, abs)
	realpart.Command(t, realpart.FFmpeg, "ffmpeg")
	matcheck.Leaks(t)
	srv := rtsptest.Start(t, rtsptest.FreePort(t), vtest)
	dir := t.TempDir()
	const pre, post = 2 * time.Second, 2 * time.Second
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "p.yaml"), fmt.Appendf(nil, `name: rec
streams:
  - {id: door, url: "%s", tcp: true}
model: {path: %s, format: ssd, threads: 1}
detect: {confidence: 0.5, classes: [person]}
track: {min_hits: 2}
lines:
  - {name: walkway, stream: door, from: [0.55, 0.3], to: [0.55, 0.8]}
sinks:
  record: {dir: %s, segment: 1s, pre_capture: %s, post_capture: %s, events: [line.crossed]}
`, srv.URL(), abs, dir, pre, post), registry())
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{events: make(chan event.Event, 1000)}
	a, err := app.New(cfg, testlog.New(t), app.Options{ExtraSinks: []stages.SinkSpec{{Name: "tap", Sink: tp, In: stages.Link{Size: 64, Policy: stages.Block}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := time.Now()
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	var cross event.Event
	deadline := time.After(90 * time.Second) // generous: a loaded machine starves the detector
	for cross.ID == "" {
		select {
		case e := <-tp.events:
			// The recorder needs pre_capture of video before the crossing,
			// counted from its first segment (ffmpeg's connect to the camera
			// takes seconds of its own), plus one key-frame interval.
			if rec := firstSegment(filepath.Join(dir, "segments", "door")); e.Type == event.LineCrossed && !rec.IsZero() && e.Time.After(rec.Add(pre+time.Second)) {
				cross = e
			}
		case <-deadline:
			t.Fatal("no line crossing within 90 s")
		}
	}
	var ready event.Event
	for ready.ID == "" {
		select {
		case e := <-tp.events:
			if e.Type == event.ClipReady && e.ClipOf == cross.ID {
				ready = e
			}
		case <-deadline:
			t.Fatal("no clip.ready for the crossing")
		}
	}
	if ready.ClipError != "" {
		t.Fatalf("clip.ready has clip_error %q", ready.ClipError)
	}
	path := filepath.Join(dir, ready.Clip)
	checkClip(t, path)
	p, dur := ffprobe(t, path)
	if p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 768 {
		t.Fatalf("clip stream %+v, want the camera's own 768x576 H.264", p.Streams[0])
	}
	m := firstFrame(t, path)
	at, ok := tp.startOf(thumb(m), cross.Time.Add(-pre-3*time.Second), cross.Time)
	m.Close()
	if !ok {
		t.Fatal("no frames seen before the crossing")
	}
	lead := cross.Time.Sub(at)
	// The recorder's timeline against the pipeline's: the segment the clip
	// starts with, by its name (start in Unix ms), against the capture time
	// of the frame that matched the clip's first frame.
	if ents, err := os.ReadDir(filepath.Join(dir, "segments", "door")); err == nil {
		for _, e := range ents {
			var ms, dms int64
			if n, _ := fmt.Sscanf(e.Name(), "%d-%d.ts", &ms, &dms); n == 2 {
				st := time.UnixMilli(ms)
				if !st.After(at.Add(time.Second)) && st.Add(time.Duration(dms)*time.Millisecond).After(at) {
					t.Logf("segment from %s for %dms; the pipeline captured its first frame at %s (recorder clock %+v)",
						st.Format("15:04:05.000"), dms, at.Format("15:04:05.000"), st.Sub(at).Round(time.Millisecond))
				}
			}
		}
	}
	const keyint = time.Second // the test camera: key-int-max=10 at 10 fps
	t.Logf("crossing at +%v; clip %.3fs (clip_duration %.3f) starts %v before it (pre_capture %v)",
		cross.Time.Sub(started).Round(time.Millisecond), dur, ready.ClipDuration, lead.Round(time.Millisecond), pre)
	// 200 ms: the recorder's and the detector's connections see a frame at
	// slightly different times.
	if lead < pre-200*time.Millisecond || lead > pre+keyint+200*time.Millisecond {
		t.Fatalf("clip starts %v before the crossing, want %v to %v", lead, pre, pre+keyint)
	}
	if want := (lead + post).Seconds(); math.Abs(dur-want) > 1 {
		t.Fatalf("clip lasts %.3fs, want %.3fs within 1s", dur, want)
	}
}
