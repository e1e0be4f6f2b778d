package infer

import (
	"io"
	"log/slog"
	"testing"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/realpart"
)

const (
	vtestPath     = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
	megamindPath  = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
	blazefacePath = "../third_party/blazeface/ONNX/face_detection_front_128x128_barracuda.onnx"
	ssdPath       = "../models/ssd_mobilenet_v2_coco.onnx"
)

// quietLog discards the detector's info lines in tests.
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// requireRuntime stops t (realpart) when scripts/setup.sh has not installed
// ONNX Runtime.
func requireRuntime(t testing.TB) {
	t.Helper()
	if _, err := initRuntime("", quietLog); err != nil {
		realpart.Missing(t, realpart.ORT, err)
	}
}

// planted is one model output whose value the test chooses.
type planted struct {
	name string
	dims []int64 // without the batch dimension
	data []float32
}

// plantModel writes an ONNX model with one float input of shape input
// (batch first; a negative batch is dynamic) whose outputs are the planted
// tensors broadcast over the batch: out = planted + 0*sum(input). The input
// takes part so ONNX Runtime cannot fold the graph into constants, and the
// output batch follows the input batch.
func plantModel(t testing.TB, input []int64, outs ...planted) string {
	t.Helper()
	ps := plantSpec{input: input}
	for _, o := range outs {
		ps.outs = append(ps.outs, plantedOut{planted: o})
	}
	return plant(t, ps)
}

// openTest opens a detector and closes it when the test ends.
func openTest(t testing.TB, cfg Config) *Detector {
	t.Helper()
	d, err := Open(cfg, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// grey returns a w x h mid-grey BGR image, closed when the test ends.
func grey(t testing.TB, w, h int) gocv.Mat {
	t.Helper()
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(128, 128, 128, 0), h, w, gocv.MatTypeCV8UC3)
	t.Cleanup(func() { m.Close() })
	return m
}

// videoFrames reads the first n frames of a video; the caller closes them.
func videoFrames(t testing.TB, path string, n int) []gocv.Mat {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer vc.Close()
	var out []gocv.Mat
	for range n {
		m := gocv.NewMat()
		if !vc.Read(&m) || m.Empty() {
			m.Close()
			break
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		t.Fatalf("no frames in %s", path)
	}
	return out
}

func closeAll(ms []gocv.Mat) {
	for i := range ms {
		ms[i].Close()
	}
}

// near reports whether two boxes agree within tol pixels on every edge.
func near(a, b geom.Rect, tol float64) bool {
	d := func(x, y float64) bool { return x-y <= tol && y-x <= tol }
	return d(a.X, b.X) && d(a.Y, b.Y) && d(a.W, b.W) && d(a.H, b.H)
}
