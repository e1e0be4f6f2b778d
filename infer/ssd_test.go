package infer

import (
	"context"
	"flag"
	"image"
	"testing"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// requireSSD stops t (realpart) when the imported COCO SSD is not there yet; it
// is built by `pipeline model import --from tfjs ... --out models/ssd_mobilenet_v2_coco.onnx`.
func requireSSD(t testing.TB) {
	t.Helper()
	realpart.File(t, realpart.SSDModel, ssdPath)
}

// vtestFrames sets how many vtest.avi frames TestSSDPersonsPerFrame reads;
// the report's number uses -vtest.frames=200 (about 10 s on 2 cores).
var vtestFrames = flag.Int("vtest.frames", 20, "vtest.avi frames for TestSSDPersonsPerFrame")

func persons(dets []Detection) []Detection {
	var out []Detection
	for _, d := range dets {
		if d.Label == "person" {
			out = append(out, d)
		}
	}
	return out
}

func TestSSDPersonsPerFrame(t *testing.T) {
	requireRuntime(t)
	requireSSD(t)
	matcheck.Leaks(t)
	d := openTest(t, Config{Path: ssdPath, Format: "ssd", Labels: "coco", Confidence: 0.5, Batch: 4})
	if w, h := d.InputSize(); w != 300 || h != 300 {
		t.Fatalf("input %dx%d, want 300x300", w, h)
	}
	vc, err := gocv.VideoCaptureFile(vtestPath)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	pool := d.NewInputPool()
	frames, total := 0, 0
	var batch []*Input
	flush := func() {
		out, err := d.Detect(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		for i, dets := range out {
			total += len(persons(dets))
			for _, p := range persons(dets) {
				if p.Box.H < p.Box.W*0.8 {
					t.Logf("frame %d: wide person box %v %.2f", frames-len(batch)+i, p.Box, p.Confidence)
				}
			}
			batch[i].Release()
		}
		batch = batch[:0]
	}
	for frames < *vtestFrames && vc.Read(&img) && !img.Empty() {
		in := pool.Get()
		if err := d.Preprocess(img, in); err != nil {
			t.Fatal(err)
		}
		batch = append(batch, in)
		frames++
		if len(batch) == 4 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	mean := float64(total) / float64(frames)
	t.Logf("vtest.avi: %.2f persons per frame at confidence 0.5 over %d frames", mean, frames)
	// The clip shows a handful of pedestrians at all times.
	if mean < 1 || mean > 20 {
		t.Errorf("mean persons per frame %.2f, want a handful", mean)
	}
}

// The same people are found when the frame is resized to 1280x720 and
// mirrored, at the mapped positions.
func TestSSDMirrorResize(t *testing.T) {
	requireRuntime(t)
	requireSSD(t)
	matcheck.Leaks(t)
	frames := videoFrames(t, vtestPath, 41)
	defer closeAll(frames)
	d := openTest(t, Config{Path: ssdPath, Format: "ssd", Confidence: 0.5})
	matched, found := 0, 0
	for _, i := range []int{0, 20, 40} {
		f := frames[i]
		orig, err := d.DetectImage(f)
		if err != nil {
			t.Fatal(err)
		}
		big, flipped := gocv.NewMat(), gocv.NewMat()
		gocv.Resize(f, &big, image.Pt(1280, 720), 0, 0, gocv.InterpolationLinear)
		gocv.Flip(big, &flipped, 1)
		other, err := d.DetectImage(flipped)
		big.Close()
		flipped.Close()
		if err != nil {
			t.Fatal(err)
		}
		sx, sy := 1280/float64(f.Cols()), 720/float64(f.Rows())
		for _, p := range persons(orig) {
			if p.Confidence < 0.6 {
				continue // borderline boxes may fall either side of 0.5
			}
			found++
			m := geom.Rect{X: 1280 - (p.Box.X+p.Box.W)*sx, Y: p.Box.Y * sy, W: p.Box.W * sx, H: p.Box.H * sy}
			for _, q := range persons(other) {
				if q.Box.IoU(m) >= 0.5 {
					matched++
					break
				}
			}
		}
	}
	if found < 3 {
		t.Fatalf("only %d confident people in the original frames", found)
	}
	// A CNN is not exactly mirror-invariant: allow one miss in five.
	if float64(matched) < 0.8*float64(found) {
		t.Errorf("%d of %d people found again after resize+mirror", matched, found)
	}
	t.Logf("%d of %d people matched after resize to 1280x720 and mirror", matched, found)
}
