package privacy_test

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/internal/cvthreads"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/object"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/privacy"
	"github.com/osprey-vision/osprey/sink/preview"
	"github.com/osprey-vision/osprey/sink/record"
	"github.com/osprey-vision/osprey/stages"
)

const (
	megamindPath  = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
	blazefacePath = "../third_party/blazeface/ONNX/face_detection_front_128x128_barracuda.onnx"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// face is one Megamind frame and the faces BlazeFace finds on it.
type face struct {
	index int
	img   gocv.Mat
	dets  []object.Detection
}

// megamindFaces reads Megamind.avi and keeps the frames among every 30th
// of the first 120 on which the real BlazeFace finds a face (label face).
func megamindFaces(t *testing.T) []face {
	t.Helper()
	realpart.File(t, realpart.SampleVideo, megamindPath)
	realpart.File(t, realpart.BlazeFace, blazefacePath)
	d, err := infer.Open(infer.Config{Path: blazefacePath, Format: "blazeface"}, quiet)
	if err != nil {
		realpart.Missing(t, realpart.ORT, err)
	}
	defer d.Close()
	vc, err := gocv.VideoCaptureFile(megamindPath)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	var out []face
	m := gocv.NewMat()
	defer m.Close()
	for i := 0; i < 120 && vc.Read(&m) && !m.Empty(); i++ {
		if i%30 != 10 {
			continue
		}
		dets, err := d.DetectImage(m)
		if err != nil {
			t.Fatal(err)
		}
		if len(dets) > 0 && dets[0].Label == "face" {
			out = append(out, face{index: i, img: m.Clone(), dets: dets[:1]})
		}
	}
	t.Cleanup(func() {
		for _, f := range out {
			f.img.Close()
		}
	})
	if len(out) == 0 {
		t.Fatal("BlazeFace found no face on Megamind frames 10, 40, 70, 100")
	}
	return out
}

// frameOf returns a frame owning a copy of img with dets, redacted with m
// through the real stage when m is not empty.
func frameOf(t *testing.T, img gocv.Mat, dets []object.Detection, m privacy.Method, seq uint64) *stages.Frame {
	t.Helper()
	f := stages.NewFrame("cam", seq, picture.New(img.Clone()))
	f.Detections = dets
	if m == "" {
		return f
	}
	st, err := privacy.NewStage(privacy.StageConfig{Privacy: privacy.Config{Redact: []string{"face"}, Method: m, Padding: 0.1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	out, err := st.Process(context.Background(), f)
	if err != nil || len(out) != 1 {
		t.Fatalf("process: %v (%d frames)", err, len(out))
	}
	return out[0]
}

// lapVar is the variance of the grey picture's Laplacian over r: the
// region's high-frequency energy.
func lapVar(img gocv.Mat, r image.Rectangle) float64 {
	grey, lap := gocv.NewMat(), gocv.NewMat()
	defer grey.Close()
	defer lap.Close()
	roi := img.Region(r)
	defer roi.Close()
	gocv.CvtColor(roi, &grey, gocv.ColorBGRToGray)
	gocv.Laplacian(grey, &lap, gocv.MatTypeCV64F, 3, 1, 0, gocv.BorderDefault)
	mean, sd := gocv.NewMat(), gocv.NewMat()
	defer mean.Close()
	defer sd.Close()
	gocv.MeanStdDev(lap, &mean, &sd)
	s := sd.GetDoubleAt(0, 0)
	return s * s
}

// madOutside is the mean absolute grey difference of a and b outside box.
func madOutside(a, b gocv.Mat, box image.Rectangle) float64 {
	ga, gb, diff := gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	defer ga.Close()
	defer gb.Close()
	defer diff.Close()
	gocv.CvtColor(a, &ga, gocv.ColorBGRToGray)
	gocv.CvtColor(b, &gb, gocv.ColorBGRToGray)
	gocv.AbsDiff(ga, gb, &diff)
	box = box.Intersect(image.Rect(0, 0, a.Cols(), a.Rows()))
	roi := diff.Region(box)
	roi.SetTo(gocv.NewScalar(0, 0, 0, 0))
	_ = roi.Close()
	outside := float64(a.Cols()*a.Rows() - box.Dx()*box.Dy())
	return diff.Sum().Val1 / outside
}

// figures compares an encoded redacted picture with the same frame encoded
// unredacted: the Laplacian variance inside the face box (inset past the
// preview's box outline), and the mean grey difference outside the padded
// box grown by two JPEG/H.264 blocks, against the codec's own error there.
type figures struct {
	varOrig, varRed, reduction float64
	outside, codecNoise        float64
}

func measure(raw, enc, encRed gocv.Mat, det object.Detection) figures {
	b := det.Box
	inner := image.Rect(int(b.X)+4, int(b.Y)+4, int(b.Right())-4, int(b.Bottom())-4)
	dx, dy := int(b.W*0.1)+32, int(b.H*0.1)+32
	outer := image.Rect(int(b.X)-dx, int(b.Y)-dy, int(b.Right())+dx, int(b.Bottom())+dy)
	var f figures
	f.varOrig, f.varRed = lapVar(enc, inner), lapVar(encRed, inner)
	f.reduction = 1 - f.varRed/f.varOrig
	f.outside = madOutside(enc, encRed, outer)
	f.codecNoise = madOutside(raw, enc, outer)
	return f
}

func (f figures) check(t *testing.T, path string, m privacy.Method, frame int) {
	t.Helper()
	t.Logf("%s %-8s frame %3d: Laplacian variance in the face %.1f -> %.1f (%+.1f%%); outside it mean |diff| %.3f grey levels, codec's own error there %.3f",
		path, m, frame, f.varOrig, f.varRed, -100*f.reduction, f.outside, f.codecNoise)
	if f.reduction < 0.9 {
		t.Errorf("%s %s frame %d: high-frequency energy fell %.1f%%, want >= 90%%", path, m, frame, 100*f.reduction)
	}
	if f.outside > f.codecNoise+0.5 {
		t.Errorf("%s %s frame %d: outside the face the picture changed by %.3f grey levels, more than the codec's own %.3f (+0.5)", path, m, frame, f.outside, f.codecNoise)
	}
}

var methods = []privacy.Method{privacy.Blur, privacy.Pixelate, privacy.Fill}

// TestRedactedMJPEG sends real Megamind frames with BlazeFace's faces
// through the privacy stage into the real preview sink and reads them back
// from its MJPEG endpoint (OpenCV's JPEG encoder, the preview's overlays):
// in the JPEG the face's high-frequency energy falls by at least 90% for
// each method, and outside it the picture is the unredacted one's.
func TestRedactedMJPEG(t *testing.T) {
	faces := megamindFaces(t)
	matcheck.Leaks(t)
	cfg := preview.Defaults()
	cfg.Listen = "127.0.0.1:0"
	s, err := preview.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var seq uint64
	write := func(f *stages.Frame) {
		time.Sleep(100 * time.Millisecond) // below the preview's max_fps
		if err := s.Write(ctx, f); err != nil {
			t.Fatal(err)
		}
		f.Release()
	}
	seq++
	write(frameOf(t, faces[0].img, faces[0].dets, "", seq))
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.Addr().String()+"/mjpeg/cam", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(bufio.NewReader(res.Body), params["boundary"])
	next := func() gocv.Mat {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		// The part ends at the next frame's boundary: read what its header says.
		n, err := strconv.Atoi(part.Header.Get("Content-Length"))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(part, b); err != nil {
			t.Fatal(err)
		}
		m, err := gocv.IMDecode(b, gocv.IMReadColor)
		if err != nil || m.Empty() {
			t.Fatalf("decode the preview's JPEG: %v", err)
		}
		return m
	}
	for i, fc := range faces {
		if i > 0 {
			seq++
			write(frameOf(t, fc.img, fc.dets, "", seq))
		}
		enc := next()
		for _, m := range methods {
			seq++
			write(frameOf(t, fc.img, fc.dets, m, seq))
			red := next()
			measure(fc.img, enc, red, fc.dets[0]).check(t, "mjpeg", m, fc.index)
			red.Close()
		}
		enc.Close()
	}
}

// TestRedactedRecording records 3 s of a Megamind frame through the real
// recording sink (libx264 into MPEG-TS segments, an MP4 clip cut by ffmpeg
// around a line crossing), unredacted and once per method, and decodes each
// clip's first frame with OpenCV's FFmpeg backend: the same figures as the
// MJPEG test, on H.264.
func TestRedactedRecording(t *testing.T) {
	faces := megamindFaces(t)
	realpart.Command(t, realpart.FFmpeg, "ffmpeg")
	matcheck.Leaks(t)
	fc := faces[0]
	clip := func(m privacy.Method) gocv.Mat {
		cfg := record.Defaults()
		cfg.Dir = t.TempDir()
		cfg.Segment, cfg.PreCapture, cfg.PostCapture = time.Second, time.Second, time.Second
		cfg.Encode.Queue = 1000
		ready := make(chan event.Event, 10)
		res := &stages.Resources{Pipeline: "test", Log: quiet, Metrics: prometheus.NewRegistry(), Emit: func(_ string, evs ...event.Event) {
			for _, e := range evs {
				ready <- e
			}
		}}
		sk, err := record.Plugin().Build(&cfg, res)
		if err != nil {
			t.Fatal(err)
		}
		defer sk.Close(context.Background())
		if err := sk.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		const fps, n = 20, 60
		t0 := time.Now().Add(-n * time.Second / fps)
		for k := range n {
			f := frameOf(t, fc.img, fc.dets, m, uint64(k+1))
			f.Captured = t0.Add(time.Duration(k) * time.Second / fps)
			if k == n/2 {
				e := event.New(event.LineCrossed, "test", "cam")
				e.Time, e.TrackID, e.Label, e.Line, e.Direction, e.Count = f.Captured, 1, "person", "gate", "in", 1
				f.Events = []event.Event{e}
			}
			if err := sk.Write(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			f.Release()
			time.Sleep(5 * time.Millisecond)
		}
		var ev event.Event
		select {
		case ev = <-ready:
		case <-time.After(30 * time.Second):
			t.Fatal("no clip.ready within 30 s")
		}
		if ev.Type != event.ClipReady || ev.ClipError != "" {
			t.Fatalf("got %+v, want a clip", ev)
		}
		vc, err := gocv.OpenVideoCapture(filepath.Join(cfg.Dir, ev.Clip))
		if err != nil {
			t.Fatal(err)
		}
		defer vc.Close()
		// Past the key frame: a predicted frame is what most of a clip is.
		img := gocv.NewMat()
		for range 5 {
			if !vc.Read(&img) || img.Empty() {
				img.Close()
				t.Fatalf("cannot decode %s", ev.Clip)
			}
		}
		return img
	}
	enc := clip("")
	defer enc.Close()
	if enc.Cols() != fc.img.Cols() || enc.Rows() != fc.img.Rows() {
		t.Fatalf("clip is %dx%d, the frame %dx%d", enc.Cols(), enc.Rows(), fc.img.Cols(), fc.img.Rows())
	}
	for _, m := range methods {
		red := clip(m)
		measure(fc.img, enc, red, fc.dets[0]).check(t, "h264", m, fc.index)
		red.Close()
	}
}

// The stage leaves frames without faces alone (no copy), and a redacted
// frame closes both pictures exactly once on its last Release.
func TestStageOwnership(t *testing.T) {
	matcheck.Leaks(t)
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 120, 150, 0), 120, 160, gocv.MatTypeCV8UC3)
	defer img.Close()
	st, err := privacy.NewStage(privacy.StageConfig{Privacy: privacy.Config{Redact: []string{"face"}, Method: privacy.Fill}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	f := stages.NewFrame("cam", 1, picture.New(img.Clone()))
	f.Detections = []object.Detection{{Label: "person"}}
	before := f.Image
	out, err := st.Process(context.Background(), f)
	if err != nil || len(out) != 1 || out[0].Image != before {
		t.Fatalf("a frame with nothing to redact was changed: %v", err)
	}
	f.Release()

	f = stages.NewFrame("cam", 2, picture.New(img.Clone()))
	orig, _ := picture.Mat(f)
	f.Tracks = []object.Track{{Label: "person", Children: []object.Detection{{Label: "face", Box: geom.Rect{X: 10, Y: 10, W: 20, H: 20}}}}}
	out, err = st.Process(context.Background(), f)
	if err != nil || len(out) != 1 {
		t.Fatal(err)
	}
	red, _ := picture.Mat(out[0])
	if v := red.GetVecbAt(20, 20); v[0] != 0 || v[1] != 0 || v[2] != 0 {
		t.Fatalf("the child face was not filled: %v", v)
	}
	if v := orig.GetVecbAt(20, 20); v[0] != 90 {
		t.Fatalf("the original changed: %v", v)
	}
	if v := red.GetVecbAt(100, 100); v[0] != 90 || v[1] != 120 || v[2] != 150 {
		t.Fatalf("outside the face changed: %v", v)
	}
	out[0].Release()
}

// BenchmarkStage is the privacy stage's cost per frame on a 720x528
// Megamind frame with one BlazeFace face: the copy plus the redaction. Each
// op also makes the frame (one copy of the picture); "none" (no face on the
// frame, so the stage passes it on) is that cost alone. OpenCV runs on one
// thread, as in the pipeline (opencv_threads: 1).
func BenchmarkStage(b *testing.B) {
	// The pipeline's default (opencv_threads: 1).
	prev := cvthreads.Get()
	cvthreads.Set(1)
	defer cvthreads.Set(prev)
	for _, m := range append([]privacy.Method{"none"}, methods...) {
		b.Run(string(m), func(b *testing.B) {
			img, dets := benchFace(b)
			if m == "none" {
				dets, m = nil, privacy.Blur
			}
			defer img.Close()
			st, err := privacy.NewStage(privacy.StageConfig{Privacy: privacy.Config{Redact: []string{"face"}, Method: m, Padding: 0.1}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close(context.Background())
			for b.Loop() {
				f := stages.NewFrame("cam", 1, picture.New(img.Clone()))
				f.Detections = dets
				out, _ := st.Process(context.Background(), f)
				out[0].Release()
			}
		})
	}
}

// benchFace returns Megamind frame 10 and BlazeFace's face on it.
func benchFace(b *testing.B) (gocv.Mat, []object.Detection) {
	realpart.File(b, realpart.SampleVideo, megamindPath)
	d, err := infer.Open(infer.Config{Path: blazefacePath, Format: "blazeface"}, quiet)
	if err != nil {
		realpart.Missing(b, realpart.ORT, err)
	}
	defer d.Close()
	vc, err := gocv.VideoCaptureFile(megamindPath)
	if err != nil {
		b.Fatal(err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	for range 11 {
		vc.Read(&m)
	}
	dets, err := d.DetectImage(m)
	if err != nil || len(dets) == 0 {
		b.Fatal(fmt.Sprint("no face: ", err))
	}
	return m, dets[:1]
}

// A face's detection and its track's box are redacted once, as their
// union; a second face and other labels are kept apart.
func TestRegionsMergeADetectionWithItsTrack(t *testing.T) {
	f := &stages.Frame{
		Detections: []object.Detection{{Label: "face", Box: geom.Rect{X: 100, Y: 100, W: 50, H: 50}}, {Label: "person", Box: geom.Rect{X: 0, Y: 0, W: 10, H: 10}}},
		Tracks: []object.Track{
			{Label: "face", Box: geom.Rect{X: 104, Y: 102, W: 50, H: 50}},
			{Label: "face", Box: geom.Rect{X: 300, Y: 100, W: 40, H: 40}},
		},
	}
	got := privacy.Regions(f, privacy.Config{Redact: []string{"face"}}, nil)
	want := []image.Rectangle{image.Rect(100, 100, 154, 152), image.Rect(300, 100, 340, 140)}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("regions %v, want %v", got, want)
	}
}

// Fixed masks are redacted on every frame, inside the polygon only: a
// triangle over the top-left of a noise picture is filled or blurred, and
// the pixels outside it are untouched.
func TestMasks(t *testing.T) {
	matcheck.Leaks(t)
	noise := gocv.NewMatWithSize(100, 200, gocv.MatTypeCV8UC3)
	defer noise.Close()
	gocv.RandU(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(255, 255, 255, 0))
	tri := [][][]float64{{{0, 0}, {0.5, 0}, {0, 1}}}
	for _, m := range methods {
		st, err := privacy.NewStage(privacy.StageConfig{Privacy: privacy.Config{Method: m, Masks: tri}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		f := stages.NewFrame("cam", 1, picture.New(noise.Clone()))
		out, err := st.Process(context.Background(), f)
		if err != nil || len(out) != 1 {
			t.Fatal(err)
		}
		red, _ := picture.Mat(out[0])
		inside := image.Rect(5, 5, 30, 30) // well inside the triangle (x + y < 100)
		if v := lapVar(red, inside); v > 0.1*lapVar(noise, inside) {
			t.Errorf("%s: inside the mask the Laplacian variance is %.1f of the noise's %.1f", m, v, lapVar(noise, inside))
		}
		if m == privacy.Fill {
			if v := red.GetVecbAt(10, 10); v[0] != 0 || v[1] != 0 || v[2] != 0 {
				t.Errorf("fill: pixel inside the mask is %v", v)
			}
		}
		if d := madOutside(noise, red, image.Rect(0, 0, 101, 101)); d != 0 { // the vertex at x=100 is the mask's
			t.Errorf("%s: outside the mask's bounds the picture changed by %.3f", m, d)
		}
		for _, p := range []image.Point{{95, 90}, {60, 60}} { // right of the hypotenuse
			if a, b := noise.GetVecbAt(p.Y, p.X), red.GetVecbAt(p.Y, p.X); !slices.Equal(a, b) {
				t.Errorf("%s: pixel %v outside the triangle changed: %v -> %v", m, p, a, b)
			}
		}
		out[0].Release()
		_ = st.Close(context.Background())
	}
}
