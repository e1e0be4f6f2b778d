package motion

import (
	"os"
	"testing"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/internal/cvthreads"
)

const vtestPath = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

func TestMain(m *testing.M) {
	// The pipeline runs OpenCV on one thread (internal/cvthreads); measure
	// and test the same way.
	cvthreads.Set(1)
	os.Exit(m.Run())
}

// vtestFrames returns the first n frames of vtest.avi (768x576 BGR), closed
// when the test ends.
func vtestFrames(t testing.TB, n int) []gocv.Mat {
	t.Helper()
	if _, err := os.Stat(vtestPath); err != nil {
		t.Fatalf("test video missing (%v): run scripts/setup.sh, which installs opencv-doc", err)
	}
	vc, err := gocv.OpenVideoCapture(vtestPath)
	if err != nil {
		t.Fatalf("open %s: %v", vtestPath, err)
	}
	defer vc.Close()
	frames := make([]gocv.Mat, 0, n)
	t.Cleanup(func() {
		for i := range frames {
			frames[i].Close()
		}
	})
	for len(frames) < n {
		m := gocv.NewMat()
		if !vc.Read(&m) || m.Empty() {
			m.Close()
			t.Fatalf("%s: read %d frames, want %d", vtestPath, len(frames), n)
		}
		frames = append(frames, m)
	}
	return frames
}

// idleScene makes an idle camera from a still frame: per-frame Gaussian
// sensor noise (sigma 5 grey levels), a slow brightness drift (+15% over the
// clip) and, from frame change on (if change >= 0), a light switched on at
// the left of the scene (gain 1.6 at the left edge falling to 0.5 at the
// right: not a uniform gain, which contrast normalisation would cancel).
// The frames are closed when the test ends.
func idleScene(t testing.TB, still gocv.Mat, n, change int) []gocv.Mat {
	t.Helper()
	base := gocv.NewMat()
	defer base.Close()
	still.ConvertTo(&base, gocv.MatTypeCV32FC3)
	rows, cols := still.Rows(), still.Cols()
	light := gocv.NewMatWithSize(rows, cols, gocv.MatTypeCV32FC3)
	defer light.Close()
	lp, err := light.DataPtrFloat32()
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < rows; y++ {
		for x := 0; x < cols; x++ {
			g := float32(1.6 - 1.1*float64(x)/float64(cols-1))
			i := (y*cols + x) * 3
			lp[i], lp[i+1], lp[i+2] = g, g, g
		}
	}
	noise := gocv.NewMatWithSize(rows, cols, gocv.MatTypeCV32FC3)
	defer noise.Close()
	lit, f32 := gocv.NewMat(), gocv.NewMat()
	defer lit.Close()
	defer f32.Close()
	frames := make([]gocv.Mat, 0, n)
	t.Cleanup(func() {
		for i := range frames {
			frames[i].Close()
		}
	})
	for i := 0; i < n; i++ {
		gain := float32(1 + 0.15*float64(i)/float64(n))
		base.ConvertToWithParams(&f32, gocv.MatTypeCV32FC3, gain, 0)
		if change >= 0 && i >= change {
			gocv.Multiply(f32, light, &lit)
			lit.CopyTo(&f32)
		}
		gocv.RandN(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(5, 5, 5, 0))
		gocv.Add(f32, noise, &f32)
		out := gocv.NewMat()
		f32.ConvertTo(&out, gocv.MatTypeCV8UC3)
		frames = append(frames, out)
	}
	return frames
}
