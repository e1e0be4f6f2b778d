package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/stages"
)

// recorder keeps what each frame of one run carried: the objects the
// pipeline reports (detections where the detector looked, the tracks'
// boxes where it did not) and the analytics events.
type recorder struct {
	mu      sync.Mutex
	objects map[uint64][]geom.Rect
	events  []recordedEvent
	frames  int
	// detections counts confident person detections (not tracks).
	detections int
}

type recordedEvent struct {
	seq uint64
	e   event.Event
}

func newRecorder() *recorder { return &recorder{objects: map[uint64][]geom.Rect{}} }

func (r *recorder) Connect(context.Context) error { return nil }
func (r *recorder) Close(context.Context) error   { return nil }
func (r *recorder) Write(_ context.Context, f *stages.Frame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames++
	var boxes []geom.Rect
	if f.Inferred {
		for _, d := range f.Detections {
			if d.Label == "person" {
				boxes = append(boxes, d.Box)
				r.detections++
			}
		}
	}
	// Where the detector did not look (a skipped frame, or outside the
	// regions) the pipeline reports what its tracks say.
	for _, t := range f.Tracks {
		if t.Label == "person" && (!f.Inferred || (len(f.Focus.Regions) > 0 && !inRegions(t.Box, f.Focus.Regions))) {
			boxes = append(boxes, t.Box)
		}
	}
	r.objects[f.Seq] = boxes
	for _, e := range f.Events {
		switch e.Type {
		case event.LineCrossed, event.ZoneEntered:
			r.events = append(r.events, recordedEvent{f.Seq, e})
		}
	}
	return nil
}

// inRegions reports whether b's centre lies in one of the regions.
func inRegions(b geom.Rect, regions []geom.Rect) bool {
	cx, cy := b.X+b.W/2, b.Y+b.H/2
	for _, r := range regions {
		if cx >= r.X && cx <= r.X+r.W && cy >= r.Y && cy <= r.Y+r.H {
			return true
		}
	}
	return false
}

// guardRun runs the demo's analytics offline on url with motion gating on
// or off and records every frame.
func guardRun(t *testing.T, url string, frames int, motion string) *recorder {
	t.Helper()
	model := needModel(t)
	cfg := parse(t, fmt.Sprintf(`name: guard
streams:
  - {id: plaza, url: "file://%s"}
model: {path: %s, threads: 2}
detect: {confidence: 0.45, classes: [person], batch: 1}
motion: %s
zones:
  - {name: road, stream: plaza, polygon: [[0.0, 0.3], [1.0, 0.3], [1.0, 0.9], [0.0, 0.9]]}
lines:
  - {name: walkway, stream: plaza, from: [0.55, 0.3], to: [0.55, 0.8]}
`, url, model, motion))
	rec := newRecorder()
	a, err := New(cfg, quietLog(), Options{MaxFrames: frames,
		ExtraSinks: []stages.SinkSpec{{Name: "rec", Sink: rec, In: stages.Link{Size: 8, Policy: stages.Block}}}})
	require.NoError(t, err)
	require.NoError(t, a.Run(context.Background()))
	require.Equal(t, frames, rec.frames)
	return rec
}

// The motion settings the guard compares.
const (
	motionOff   = "{enabled: false}"
	motionOn    = "{enabled: true, refresh: 5s}"
	motionWhole = "{enabled: true, refresh: 5s, regions: {enabled: false}}"
)

// recall is the share of ref's boxes that got a box at IoU >= 0.5 in got on
// the same frame.
func recall(ref, got map[uint64][]geom.Rect) float64 {
	n, hit := 0, 0
	for seq, rs := range ref {
		used := make([]bool, len(got[seq]))
		for _, r := range rs {
			n++
			for j, g := range got[seq] {
				if !used[j] && r.IoU(g) >= 0.5 {
					used[j], hit = true, hit+1
					break
				}
			}
		}
	}
	if n == 0 {
		return 1
	}
	return float64(hit) / float64(n)
}

// agreement is the share of a's line crossings and zone entries that b has
// too: same type, zone or line and direction, within 1 s (10 frames of
// vtest.avi), each matched once.
func agreement(a, b []recordedEvent) float64 {
	if len(a) == 0 {
		return 1
	}
	used := make([]bool, len(b))
	hit := 0
	for _, x := range a {
		for j, y := range b {
			d := int64(x.seq) - int64(y.seq)
			if !used[j] && x.e.Type == y.e.Type && x.e.Zone == y.e.Zone && x.e.Line == y.e.Line &&
				x.e.Direction == y.e.Direction && d >= -10 && d <= 10 {
				used[j], hit = true, hit+1
				break
			}
		}
	}
	return float64(hit) / float64(len(a))
}

// The accuracy guard of motion gating (opt-in, a few minutes on 2 cores:
// OSPREY_MOTION_GUARD=1 go test -run TestMotionGatingAccuracyGuard -v
// ./app): on vtest.avi offline, gated + regions against the ungated
// pipeline, person recall at IoU 0.5 and event agreement both ways; and on
// vtest scaled to 1920x1080, how many confident persons regions find
// against full frames.
func TestMotionGatingAccuracyGuard(t *testing.T) {
	if os.Getenv("OSPREY_MOTION_GUARD") == "" {
		t.Skip("opt-in accuracy guard: OSPREY_MOTION_GUARD=1 (a few minutes)")
	}
	realpart.File(t, realpart.SampleVideo, vtest)
	const frames = 600
	plain := guardRun(t, vtest, frames, motionOff)
	gated := guardRun(t, vtest, frames, motionOn)
	again := guardRun(t, vtest, frames, motionOff)
	t.Logf("ungated twice (run-to-run noise): person recall %.3f, events %d and %d, agreement %.3f / %.3f",
		recall(plain.objects, again.objects), len(plain.events), len(again.events), agreement(plain.events, again.events), agreement(again.events, plain.events))
	whole := guardRun(t, vtest, frames, motionWhole)
	t.Logf("gated on full frames only (regions off): person recall %.3f, events %d, agreement %.3f / %.3f",
		recall(plain.objects, whole.objects), len(whole.events), agreement(plain.events, whole.events), agreement(whole.events, plain.events))
	r := recall(plain.objects, gated.objects)
	ab, ba := agreement(plain.events, gated.events), agreement(gated.events, plain.events)
	t.Logf("vtest %d frames: person recall gated vs ungated %.3f; events ungated %d gated %d, agreement %.3f / %.3f",
		frames, r, len(plain.events), len(gated.events), ab, ba)

	ffmpeg := realpart.Command(t, realpart.FFmpeg, "ffmpeg")
	big := filepath.Join(t.TempDir(), "vtest1080.avi")
	out, err := exec.Command(ffmpeg, "-v", "error", "-i", vtest, "-frames:v", "300", "-vf", "scale=1920:1080",
		"-c:v", "mjpeg", "-q:v", "3", big).CombinedOutput()
	require.NoError(t, err, "%s", out)
	fullBig, gatedBig := guardRun(t, big, 300, motionOff), guardRun(t, big, 300, motionOn)
	t.Logf("vtest at 1920x1080, 300 frames: person detections (confidence >= 0.45) full-frame %d, regions %d",
		fullBig.detections, gatedBig.detections)
	require.GreaterOrEqual(t, r, 0.97, "person recall against the ungated run")
	require.GreaterOrEqual(t, min(ab, ba), 0.97, "line and zone event agreement both ways")
}
