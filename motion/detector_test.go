package motion

import (
	"errors"
	"image"
	"image/color"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocv.io/x/gocv"
	"golang.org/x/sys/unix"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
)

func newDetector(t testing.TB, cfg Config) *Detector {
	t.Helper()
	d, err := NewDetector(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return d
}

func TestBusyVideoHasMotion(t *testing.T) {
	matcheck.Leaks(t)
	frames := vtestFrames(t, 200)
	d := newDetector(t, Defaults())
	withMotion, boxes := 0, 0
	maxShare, maxCover := 0.0, 0.0
	for i, f := range frames {
		r, err := d.Detect(f)
		require.NoError(t, err)
		if i == 0 {
			require.True(t, r.Calibrating, "the first frame builds the background")
			continue
		}
		require.False(t, r.Calibrating, "frame %d: people walking are not a whole-frame change (share %.3f)", i, r.Share)
		if len(r.Boxes) > 0 {
			withMotion++
		}
		boxes += len(r.Boxes)
		maxShare, maxCover = math.Max(maxShare, r.Share), math.Max(maxCover, r.Coverage)
		for _, b := range r.Boxes {
			require.True(t, b.X >= 0 && b.Y >= 0 && b.Right() <= 768+1e-9 && b.Bottom() <= 576+1e-9 && b.Area() > 0, "frame %d: box %+v", i, b)
		}
	}
	t.Logf("vtest: motion in %d of %d frames, %.1f boxes per frame, max changed share %.3f, max box coverage %.3f",
		withMotion, len(frames)-1, float64(boxes)/float64(len(frames)-1), maxShare, maxCover)
	// People walk through every frame of vtest.
	require.GreaterOrEqual(t, withMotion, len(frames)-2)
	st := d.Stats()
	require.Equal(t, Stats{Frames: 200, MotionFrames: withMotion, LastCalibrationFrames: 1}, st)
}

func TestIdleSceneOnlyLightChange(t *testing.T) {
	matcheck.Leaks(t)
	still := vtestFrames(t, 1)[0]
	const n, change = 100, 60
	frames := idleScene(t, still, n, change)
	d := newDetector(t, Defaults())
	recalAt, settledAt, calFrames := -1, -1, 0
	for i, f := range frames {
		r, err := d.Detect(f)
		require.NoError(t, err)
		switch {
		case i == 0:
			require.True(t, r.Calibrating)
		case r.WholeFrame:
			require.Equal(t, -1, recalAt, "frame %d: a second whole-frame change", i)
			recalAt = i
		case r.CalibrationFrames > 0 && i > 1:
			settledAt, calFrames = i, r.CalibrationFrames
		}
		if i > 0 && !r.Calibrating {
			require.Empty(t, r.Boxes, "frame %d: idle scene reported motion (share %.4f)", i, r.Share)
		}
		if i > 0 && i < change {
			require.False(t, r.Calibrating, "frame %d: noise and drift taken for a whole-frame change (share %.3f)", i, r.Share)
		}
	}
	t.Logf("light change at frame %d: recognised at %d, detection resumed at %d after %d calibrating frames", change, recalAt, settledAt, calFrames)
	require.Equal(t, change, recalAt, "the light change is recognised on the frame it happens")
	require.LessOrEqual(t, calFrames, 3)
	require.Equal(t, recalAt+calFrames, settledAt)
	require.Equal(t, 1, d.Stats().Recalibrations)
	require.Equal(t, 0, d.Stats().MotionFrames)
}

func TestUniformExposureChangeIsNotMotion(t *testing.T) {
	matcheck.Leaks(t)
	still := vtestFrames(t, 1)[0]
	dark := gocv.NewMat()
	defer dark.Close()
	// Auto-exposure halves the picture's brightness at once.
	still.ConvertToWithParams(&dark, gocv.MatTypeCV8UC3, 0.5, 0)
	d := newDetector(t, Defaults())
	for i := 0; i < 3; i++ {
		_, err := d.Detect(still)
		require.NoError(t, err)
	}
	r, err := d.Detect(dark)
	require.NoError(t, err)
	require.False(t, r.Calibrating)
	require.Empty(t, r.Boxes, "contrast normalisation cancels a uniform gain (share %.4f)", r.Share)

	off := Defaults()
	off.Contrast = false
	d2 := newDetector(t, off)
	for i := 0; i < 3; i++ {
		_, err = d2.Detect(still)
		require.NoError(t, err)
	}
	r, err = d2.Detect(dark)
	require.NoError(t, err)
	require.True(t, r.WholeFrame, "without contrast normalisation the same change is a whole-frame change (share %.3f)", r.Share)
}

func TestMasksSuppressMotion(t *testing.T) {
	matcheck.Leaks(t)
	frames := vtestFrames(t, 40)
	run := func(masks [][][]float64) (boxes []geom.Rect) {
		cfg := Defaults()
		cfg.Masks = masks
		d := newDetector(t, cfg)
		for _, f := range frames {
			r, err := d.Detect(f)
			require.NoError(t, err)
			require.False(t, r.WholeFrame)
			boxes = append(boxes, r.Boxes...)
		}
		return boxes
	}
	leftOf := func(bs []geom.Rect, x float64) (n int) {
		for _, b := range bs {
			if b.Right() <= x {
				n++
			}
		}
		return n
	}
	require.NotZero(t, leftOf(run(nil), 384), "people walk in the left half of vtest")
	left := run([][][]float64{{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}})
	require.NotEmpty(t, left, "the right half still moves")
	require.Zero(t, leftOf(left, 384), "no motion box lies in the masked left half")
	require.Empty(t, run([][][]float64{{{0, 0}, {1, 0}, {1, 1}, {0, 1}}}), "a mask over the whole frame leaves nothing")
}

func TestDetectBadInput(t *testing.T) {
	matcheck.Leaks(t)
	d := newDetector(t, Defaults())
	empty := gocv.NewMat()
	defer empty.Close()
	_, err := d.Detect(empty)
	require.EqualError(t, err, "motion: empty frame")
	f32 := gocv.NewMatWithSize(10, 10, gocv.MatTypeCV32F)
	defer f32.Close()
	_, err = d.Detect(f32)
	require.EqualError(t, err, "motion: frame type CV32F, want BGR (CV_8UC3) or grey (CV_8UC1)")

	frames := vtestFrames(t, 2)
	for _, f := range frames {
		_, err = d.Detect(f)
		require.NoError(t, err)
	}
	// A new frame size (the camera reconnected at another resolution)
	// restarts the background instead of failing.
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(frames[1], &small, image.Pt(640, 480), 0, 0, gocv.InterpolationArea)
	r, err := d.Detect(small)
	require.NoError(t, err)
	require.True(t, r.Calibrating)
	require.Equal(t, image.Pt(240, 180), d.MotionSize())
	// Grey frames work as they are.
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(small, &grey, gocv.ColorBGRToGray)
	_, err = d.Detect(grey)
	require.NoError(t, err)

	require.NoError(t, d.Close())
	require.NoError(t, d.Close())
	_, err = d.Detect(frames[0])
	require.True(t, errors.Is(err, ErrClosed))
}

func TestDetectAllocatesNothing(t *testing.T) {
	matcheck.Leaks(t)
	frames := vtestFrames(t, 8)
	cfg := Defaults()
	cfg.Masks = [][][]float64{{{0, 0}, {0.2, 0}, {0.2, 0.2}}}
	d := newDetector(t, cfg)
	for _, f := range frames {
		_, err := d.Detect(f)
		require.NoError(t, err)
	}
	i := 0
	allocs := testing.AllocsPerRun(40, func() {
		if _, err := d.Detect(frames[i%len(frames)]); err != nil {
			t.Error(err)
		}
		i++
	})
	require.Zero(t, allocs)
}

// cpuTime returns the process's user+system CPU time: on a shared machine
// it is a steadier cost than wall time, which counts time others ran.
func cpuTime(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDetect measures Detect on 768x576 vtest frames at the default
// frame_height (180): wall ms and process CPU ms per frame.
func BenchmarkDetect(b *testing.B) {
	frames := vtestFrames(b, 50)
	d, err := NewDetector(Defaults())
	require.NoError(b, err)
	defer d.Close()
	for _, f := range frames {
		if _, err := d.Detect(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for i := 0; i < b.N; i++ {
		if _, err := d.Detect(frames[i%len(frames)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/1e6/float64(b.N), "cpu-ms/frame")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/frame")
}

// BenchmarkDecodeH264 is the floor Detect is compared with: decoding the
// same 768x576 frames from H.264 (made from vtest.avi by ffmpeg), as a
// camera's stream arrives, in the same run.
func BenchmarkDecodeH264(b *testing.B) {
	clip := filepath.Join(b.TempDir(), "vtest.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", vtestPath, "-frames:v", "200",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", clip).CombinedOutput()
	if err != nil {
		b.Fatalf("ffmpeg: %v: %s", err, out)
	}
	m := gocv.NewMat()
	defer m.Close()
	var vc *gocv.VideoCapture
	open := func() {
		if vc != nil {
			vc.Close()
		}
		if vc, err = gocv.OpenVideoCapture(clip); err != nil {
			b.Fatal(err)
		}
	}
	open()
	defer func() { vc.Close() }()
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		c0 := cpuTime(b)
		ok := vc.Read(&m)
		cpu += cpuTime(b) - c0
		if !ok {
			b.StopTimer()
			open() // rewind: reopen outside the measurement
			b.StartTimer()
			i--
		}
	}
	b.ReportMetric(float64(cpu)/1e6/float64(b.N), "cpu-ms/frame")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/frame")
}

func TestContrastFindsMotionInADarkScene(t *testing.T) {
	matcheck.Leaks(t)
	frames := vtestFrames(t, 40)
	// Night: the picture spans about 20 grey levels instead of 255.
	dark := make([]gocv.Mat, len(frames))
	for i, f := range frames {
		dark[i] = gocv.NewMat()
		defer dark[i].Close()
		f.ConvertToWithParams(&dark[i], gocv.MatTypeCV8UC3, 0.08, 8)
	}
	count := func(contrast bool) (motionFrames int) {
		cfg := Defaults()
		cfg.Contrast = contrast
		d := newDetector(t, cfg)
		for _, f := range dark {
			r, err := d.Detect(f)
			require.NoError(t, err)
			if len(r.Boxes) > 0 {
				motionFrames++
			}
		}
		return motionFrames
	}
	on, off := count(true), count(false)
	t.Logf("dark vtest: motion in %d of %d frames with contrast normalisation, %d without", on, len(dark)-1, off)
	require.GreaterOrEqual(t, on, len(dark)-2)
	require.Less(t, off, on/2)
}

func TestContrastKeepsDarkNoiseQuiet(t *testing.T) {
	matcheck.Leaks(t)
	still := vtestFrames(t, 1)[0]
	dark, noise, f32, out := gocv.NewMat(), gocv.NewMatWithSize(576, 768, gocv.MatTypeCV32FC3), gocv.NewMat(), gocv.NewMat()
	for _, m := range []*gocv.Mat{&dark, &noise, &f32, &out} {
		defer m.Close()
	}
	still.ConvertToWithParams(&dark, gocv.MatTypeCV32FC3, 0.08, 8)
	d := newDetector(t, Defaults())
	for i := 0; i < 60; i++ {
		// Night sensor noise: sigma 3 grey levels on a 20-level picture.
		gocv.RandN(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(3, 3, 3, 0))
		gocv.Add(dark, noise, &f32)
		f32.ConvertTo(&out, gocv.MatTypeCV8UC3)
		r, err := d.Detect(out)
		require.NoError(t, err)
		if i > 0 {
			require.False(t, r.Calibrating, "frame %d", i)
			require.Empty(t, r.Boxes, "frame %d: stretched night noise taken for motion (share %.4f)", i, r.Share)
		}
	}
}

func TestCameraBumpRecalibrates(t *testing.T) {
	matcheck.Leaks(t)
	still := vtestFrames(t, 1)[0]
	// The camera is knocked 12 pixels right and 6 down at frame 30.
	bumped := gocv.NewMat()
	defer bumped.Close()
	m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer m.Close()
	m.SetDoubleAt(0, 0, 1)
	m.SetDoubleAt(0, 2, 12)
	m.SetDoubleAt(1, 1, 1)
	m.SetDoubleAt(1, 2, 6)
	gocv.WarpAffineWithParams(still, &bumped, m, image.Pt(still.Cols(), still.Rows()), gocv.InterpolationLinear, gocv.BorderReflect, color.RGBA{})
	const n, bump = 60, 30
	before, after := idleScene(t, still, n, -1), idleScene(t, bumped, n, -1)
	d := newDetector(t, Defaults())
	recalAt, calFrames := -1, 0
	for i := 0; i < n; i++ {
		f := before[i]
		if i >= bump {
			f = after[i]
		}
		r, err := d.Detect(f)
		require.NoError(t, err)
		if r.WholeFrame {
			recalAt = i
			t.Logf("bump at frame %d: changed share %.3f, motion boxes' coverage %.3f", i, r.Share, r.Coverage)
		}
		if r.CalibrationFrames > 0 && i > 1 {
			calFrames = r.CalibrationFrames
		}
		if i > 0 && !r.Calibrating {
			require.Empty(t, r.Boxes, "frame %d: share %.4f coverage %.3f", i, r.Share, r.Coverage)
		}
	}
	require.Equal(t, bump, recalAt)
	require.LessOrEqual(t, calFrames, 3)
	require.Equal(t, 1, d.Stats().Recalibrations)
}
