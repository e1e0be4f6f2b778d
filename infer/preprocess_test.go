package infer

import (
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/internal/matcheck"
)

// A solid B=10 G=20 R=30 frame checks channel order, value range, layout
// and padding for each input convention.
func TestPreprocessLayout(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(10, 20, 30, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer img.Close()
	yolo := yolov8Output(80, yoloAnchors)
	tests := []struct {
		name   string
		format string
		input  []int64
		// at returns the value of channel c at (x, y) in the input.
		at      func(data []float32, c, x, y int) float32
		inside  [3]float32 // channel values inside the image
		pad     float32    // value in the padding at (0,0)
		padding bool
	}{
		{"yolov8 NCHW RGB 0..1", "yolov8", []int64{1, 3, 320, 320},
			func(d []float32, c, x, y int) float32 { return d[c*320*320+y*320+x] },
			[3]float32{30.0 / 255, 20.0 / 255, 10.0 / 255}, 114.0 / 255, true},
		{"yolox NCHW BGR 0..255 top-left", "yolox", []int64{1, 3, 320, 320},
			func(d []float32, c, x, y int) float32 { return d[c*320*320+y*320+x] },
			[3]float32{10, 20, 30}, 0, false}, // top-left: (0,0) is image
		{"ssd NHWC RGB 0..255 stretch", "ssd", []int64{1, 320, 320, 3},
			func(d []float32, c, x, y int) float32 { return d[(y*320+x)*3+c] },
			[3]float32{30, 20, 10}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var model string
			switch tc.format {
			case "ssd":
				model = plantModel(t, tc.input, planted{"scores", []int64{2, 90}, make([]float32, 180)}, planted{"boxes", []int64{2, 1, 4}, make([]float32, 8)})
			case "yolox": // 40x40 + 20x20 + 10x10 anchors at 320x320
				model = plantModel(t, tc.input, planted{"out", []int64{2100, 85}, make([]float32, 2100*85)})
			default:
				model = plantModel(t, tc.input, planted{"out", []int64{84, yoloAnchorCount}, yolo})
			}
			d := openTest(t, Config{Path: model, Format: tc.format})
			in := d.NewInputPool().Get()
			defer in.Release()
			if err := d.Preprocess(img, in); err != nil {
				t.Fatal(err)
			}
			for c := range 3 {
				if got := tc.at(in.Data, c, 160, 160); math.Abs(float64(got-tc.inside[c])) > 1e-6 {
					t.Errorf("channel %d at centre = %g, want %g", c, got, tc.inside[c])
				}
			}
			got := tc.at(in.Data, 0, 0, 0)
			if tc.padding && math.Abs(float64(got-tc.pad)) > 1e-6 {
				t.Errorf("padding = %g, want %g", got, tc.pad)
			}
			if !tc.padding && math.Abs(float64(got-tc.inside[0])) > 1e-6 {
				t.Errorf("(0,0) = %g, want image value %g", got, tc.inside[0])
			}
		})
	}
}

func TestPreprocessBlazeFaceRange(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 255, 51, 0), 100, 200, gocv.MatTypeCV8UC3)
	defer img.Close()
	d := openTest(t, Config{Path: blazefacePath, Format: "blazeface"})
	in := d.NewInputPool().Get()
	defer in.Release()
	if err := d.Preprocess(img, in); err != nil {
		t.Fatal(err)
	}
	// 200x100 -> 128x64 with 32 black rows above: (0,0) is padding (-1),
	// the centre is R=51 -> -0.6, G=255 -> 1, B=0 -> -1.
	centre := (64*128 + 64) * 3
	want := []float32{-0.6, 1, -1}
	for c, w := range want {
		if got := in.Data[centre+c]; math.Abs(float64(got-w)) > 1e-6 {
			t.Errorf("channel %d = %g, want %g", c, got, w)
		}
	}
	if in.Data[0] != -1 {
		t.Errorf("padding = %g, want -1", in.Data[0])
	}
	if in.Transform.PadY != 32 || in.Transform.ScaleX != 0.64 {
		t.Errorf("transform %+v", in.Transform)
	}
}

// Steady-state preprocessing reuses its scratch Mats: no Go allocation.
func TestPreprocessNoAlloc(t *testing.T) {
	requireRuntime(t)
	frames := videoFrames(t, vtestPath, 1)
	defer closeAll(frames)
	d := openTest(t, Config{Path: blazefacePath, Format: "blazeface"})
	in := d.NewInputPool().Get()
	defer in.Release()
	if n := testing.AllocsPerRun(10, func() {
		if err := d.Preprocess(frames[0], in); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Preprocess allocates %g times per call", n)
	}
}
