package cascade

import (
	"context"
	"encoding/json"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/object"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// colourFrame is a 320x240 blue frame with a red and a green rectangle, and
// tracks on both (a person on red, a car on green) and an event per track.
func colourFrame(seq uint64, at time.Time) *stages.Frame {
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(200, 0, 0, 0), 240, 320, gocv.MatTypeCV8UC3) // BGR blue
	gocv.Rectangle(&m, image.Rect(20, 20, 120, 200), color.RGBA{R: 220, A: 255}, -1)
	gocv.Rectangle(&m, image.Rect(180, 60, 300, 180), color.RGBA{G: 220, A: 255}, -1)
	f := stages.NewFrame("cam", seq, picture.New(m))
	f.Media, f.Captured = at, at
	f.Tracks = []object.Track{
		{ID: 1, Label: "person", Box: geom.Rect{X: 20, Y: 20, W: 100, H: 180}, Matched: true, Confirmed: true},
		{ID: 2, Label: "car", Box: geom.Rect{X: 180, Y: 60, W: 120, H: 120}, Matched: true, Confirmed: true},
	}
	e := event.New(event.TrackStarted, "p", "cam")
	e.TrackID, e.Label, e.FrameSeq, e.Box = 1, "person", seq, &geom.Rect{X: 20.0 / 320, Y: 20.0 / 240, W: 100.0 / 320, H: 180.0 / 240}
	f.Events = []event.Event{e}
	return f
}

// TestClassifierColour runs a real (planted) ONNX colour classifier in ONNX
// Runtime on crops of tracks: each track gets its own colour as an
// attribute, only tracks of the model's classes are cropped, the answer
// stands between reinfers and travels in the track's events.
func TestClassifierColour(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	s := newStage(t, Model{Name: "colour", Path: colourModel(t, 3), Format: "classify",
		Labels: labelsFile(t, "red", "green", "blue"), Classes: []string{"person", "car"}, Padding: 0.01, Reinfer: time.Second})
	ctx := context.Background()
	t0 := time.Unix(100, 0)
	f := colourFrame(1, t0)
	_, err := s.ProcessBatch(ctx, []*stages.Frame{f})
	require.NoError(t, err)
	require.Len(t, f.Tracks[0].Attributes, 1)
	a := f.Tracks[0].Attributes[0]
	require.Equal(t, "colour", a.Name)
	require.Equal(t, "red", a.Value)
	require.Greater(t, a.Confidence, float32(0.9))
	require.Equal(t, "green", f.Tracks[1].Attributes[0].Value)
	require.Equal(t, a, f.Events[0].Attributes[0], "the track.started event carries the attribute")
	b, err := json.Marshal(f.Events[0])
	require.NoError(t, err)
	require.NoError(t, event.Validate(b))
	f.Release()

	// 0.5 s later: no crop (reinfer 1s), the answer stays; the car has
	// turned blue but keeps "green" until its reinfer.
	g := colourFrame(2, t0.Add(500*time.Millisecond))
	g.Tracks[1].Box = geom.Rect{X: 150, Y: 20, W: 40, H: 40} // plain blue, but not due
	_, err = s.ProcessBatch(ctx, []*stages.Frame{g})
	require.NoError(t, err)
	require.Equal(t, "green", g.Tracks[1].Attributes[0].Value)
	require.Equal(t, t0, s.streams["cam"][2].results[0].at)
	g.Release()

	// 1 s after the first run the car is due again and is now blue.
	h := colourFrame(3, t0.Add(time.Second))
	h.Tracks[1].Box = geom.Rect{X: 130, Y: 200, W: 40, H: 36}
	_, err = s.ProcessBatch(ctx, []*stages.Frame{h})
	require.NoError(t, err)
	require.Equal(t, "blue", h.Tracks[1].Attributes[0].Value)
	h.Release()

	// A track gone from the frame is forgotten.
	k := colourFrame(4, t0.Add(2*time.Second))
	k.Tracks = k.Tracks[:1]
	_, err = s.ProcessBatch(ctx, []*stages.Frame{k})
	require.NoError(t, err)
	require.NotContains(t, s.streams["cam"], uint64(2))
	k.Release()
}

// TestClassifierActivations: softmax and sigmoid turn the same logits
// into the scores they should. The planted model's logits for the red
// object are (10*R, 10*G, 10*B) with channels in 0..1.
func TestClassifierActivations(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	path, labels := colourModel(t, 3), labelsFile(t, "red", "green", "blue")
	red := 10 * 220.0 / 255
	for _, tc := range []struct {
		output string
		want   float64
	}{
		{"softmax", 1 / (1 + 2*math.Exp(-red))},
		{"sigmoid", 1 / (1 + math.Exp(-red))},
	} {
		s := newStage(t, Model{Name: "colour", Path: path, Format: "classify", Labels: labels, Output: tc.output,
			Classes: []string{"person"}, Padding: 0.001})
		f := colourFrame(1, time.Unix(1, 0))
		f.Tracks[0].Box = geom.Rect{X: 30, Y: 30, W: 80, H: 160} // inside the red rectangle
		_, err := s.ProcessBatch(context.Background(), []*stages.Frame{f})
		require.NoError(t, err)
		a := f.Tracks[0].Attributes[0]
		require.Equal(t, "red", a.Value, tc.output)
		require.InDelta(t, tc.want, float64(a.Confidence), 2e-3, tc.output)
		f.Release()
	}
}

// TestBatchAcrossStreams: frames of two cameras taken together share one
// inference run, and each camera's tracks keep their own answers (track
// IDs are per stream).
func TestBatchAcrossStreams(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	s := newStage(t, Model{Name: "colour", Path: colourModel(t, 3), Format: "classify",
		Labels: labelsFile(t, "red", "green", "blue"), Classes: []string{"person", "car"}})
	a, b := colourFrame(1, time.Unix(1, 0)), colourFrame(1, time.Unix(1, 0))
	b.Stream = "door"
	b.Tracks[0].Label = "bicycle" // not a model class: only the car is cropped there
	_, err := s.ProcessBatch(context.Background(), []*stages.Frame{a, b})
	require.NoError(t, err)
	var m dto.Metric
	require.NoError(t, s.seconds.WithLabelValues("colour").(prometheus.Metric).Write(&m))
	require.EqualValues(t, 1, m.GetHistogram().GetSampleCount(), "one run for both frames")
	require.Equal(t, "red", a.Tracks[0].Attributes[0].Value)
	require.Empty(t, b.Tracks[0].Attributes)
	require.Equal(t, "green", b.Tracks[1].Attributes[0].Value)
	require.Len(t, s.streams["cam"], 2)
	require.Len(t, s.streams["door"], 1)
	a.Release()
	b.Release()
}

// TestCropRules checks the classes filter, min_size, max_crops (largest
// never-run first, the rest counted as cap) and the latency budget (a crop
// that would finish after the frame's deadline is skipped and counted).
func TestCropRules(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	s := newStage(t, Model{Name: "colour", Path: colourModel(t, 3), Format: "classify",
		Labels: labelsFile(t, "red", "green", "blue"), Classes: []string{"person"}, MinSize: 50, MaxCrops: 1})
	ctx := context.Background()
	f := colourFrame(1, time.Unix(100, 0))
	f.Tracks = append(f.Tracks,
		object.Track{ID: 3, Label: "person", Box: geom.Rect{X: 200, Y: 10, W: 40, H: 200}, Matched: true},  // too narrow
		object.Track{ID: 4, Label: "person", Box: geom.Rect{X: 130, Y: 10, W: 50, H: 50}, Matched: true},   // smaller than track 1
		object.Track{ID: 5, Label: "person", Box: geom.Rect{X: 130, Y: 100, W: 60, H: 60}, Matched: false}, // predicted only
	)
	_, err := s.ProcessBatch(ctx, []*stages.Frame{f})
	require.NoError(t, err)
	require.NotEmpty(t, f.Tracks[0].Attributes, "the largest due person goes first")
	for _, tk := range f.Tracks[1:] {
		require.Empty(t, tk.Attributes, "track %d", tk.ID)
	}
	require.Equal(t, 1.0, counter(t, s, SkipCap))
	f.Release()

	// Past its deadline with a known per-crop cost: skipped as late, the
	// frame still passes on (its events must not be lost).
	g := colourFrame(2, time.Unix(101, 0))
	g.Tracks = g.Tracks[:1]
	g.Tracks[0].ID = 9
	g.Deadline = time.Now().Add(-time.Millisecond)
	out, err := s.ProcessBatch(ctx, []*stages.Frame{g})
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Empty(t, g.Tracks[0].Attributes)
	require.Equal(t, 1.0, counter(t, s, SkipLate))
	g.Release()
}

func counter(t *testing.T, s *Stage, reason string) float64 {
	t.Helper()
	c, err := s.skipped.GetMetricWithLabelValues("colour", reason)
	require.NoError(t, err)
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// TestClassifierLabelsMismatch: a labels file whose length differs from
// the model's outputs is refused with both counts: by the config check
// (reading the model's declared output, as `pipeline validate` does) and
// by ONNX Runtime's view when the model opens.
func TestClassifierLabelsMismatch(t *testing.T) {
	requireRuntime(t)
	model, labels := colourModel(t, 5), labelsFile(t, "red", "green", "blue")
	c := Config{Secondary: []Model{{Name: "colour", Path: model, Format: "classify", Labels: labels, Classes: []string{"car"}}}}
	err := c.Validate(stages.Env{})
	require.Error(t, err)
	require.Contains(t, err.Error(), "secondary[0].labels: labels file "+labels+" has 3 labels but the model "+model+" outputs 5 classes")
	_, err = New(c, &stages.Resources{Log: quietLog})
	require.Error(t, err)
	require.Contains(t, err.Error(), "secondary[0].path: ")
	require.Contains(t, err.Error(), "has 3 labels but the model outputs 5 classes")
}

// TestBlazeFaceOnPersonCrops is the first real cascade: the shipped SSD
// finds people in Megamind.avi, the tracker follows them and BlazeFace
// runs on their crops; faces come back as children inside the person's box.
func TestBlazeFaceOnPersonCrops(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	s := newStage(t, Model{Name: "faces", Path: blazefacePath, Format: "auto", Classes: []string{"person"},
		MinSize: 48, Reinfer: 500 * time.Millisecond, Confidence: 0.6})
	run := runVideo(t, s, megamindPath, 60)
	t.Log("Megamind.avi, 60 frames: ", run)
	require.NotZero(t, run.crops)
	require.NotZero(t, run.childrenFound, "BlazeFace finds Megamind's face in the person crops")
	require.NotEmpty(t, run.withChild)
	for _, tk := range run.tracksWithChildren {
		for _, c := range tk.Children {
			require.Equal(t, "face", c.Label)
			grow := geom.Rect{X: tk.Box.X - tk.Box.W*0.2, Y: tk.Box.Y - tk.Box.H*0.2, W: tk.Box.W * 1.4, H: tk.Box.H * 1.4}
			require.True(t, grow.X <= c.Box.X && grow.Y <= c.Box.Y && c.Box.Right() <= grow.Right() && c.Box.Bottom() <= grow.Bottom(),
				"face %v inside person %v (padded)", c.Box, tk.Box)
		}
	}
}

// TestMeasureFaces measures the BlazeFace cascade on whole videos
// (OSPREY_CASCADE_MEASURE=1; minutes on 2 cores): the figures in
// docs/cascade.md.
func TestMeasureFaces(t *testing.T) {
	if os.Getenv("OSPREY_CASCADE_MEASURE") != "1" {
		t.Skip("opt-in measurement: OSPREY_CASCADE_MEASURE=1")
	}
	requireRuntime(t)
	back := "../third_party/blazeface/ONNX/face_detection_back_256x256_barracuda.onnx"
	for _, v := range []string{vtestPath, megamindPath} {
		for _, c := range []struct {
			model   string
			reinfer time.Duration
		}{{blazefacePath, time.Nanosecond}, {blazefacePath, time.Second}, {back, time.Nanosecond}} {
			s := newStage(t, Model{Name: "faces", Path: c.model, Classes: []string{"person"}, MinSize: 32,
				Reinfer: c.reinfer, MaxCrops: 64, Confidence: 0.6, Threads: 1})
			run := runVideo(t, s, v, 0)
			t.Logf("%s, %s, reinfer %s: %s", filepath.Base(v), filepath.Base(c.model), c.reinfer, run)
		}
	}
}
