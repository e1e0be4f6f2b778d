package infer

import (
	"math"
	"slices"
	"testing"

	"github.com/osprey-vision/osprey/geom"
)

func TestFitTransform(t *testing.T) {
	tests := []struct {
		name               string
		srcW, srcH         int
		dstW, dstH         int
		mode               string
		topLeft            bool
		w, h               int
		sx, sy, padX, padY float64
	}{
		{"landscape letterbox", 640, 480, 320, 320, ResizeLetterbox, false, 320, 240, 0.5, 0.5, 0, 40},
		{"portrait letterbox", 480, 640, 320, 320, ResizeLetterbox, false, 240, 320, 0.5, 0.5, 40, 0},
		{"odd padding rounds down", 768, 576, 640, 640, ResizeLetterbox, false, 640, 480, 640.0 / 768, 480.0 / 576, 0, 80},
		{"upscale", 100, 50, 300, 300, ResizeLetterbox, false, 300, 150, 3, 3, 0, 75},
		{"yolox top-left", 1280, 720, 640, 640, ResizeLetterbox, true, 640, 360, 0.5, 0.5, 0, 0},
		{"stretch", 768, 576, 300, 300, ResizeStretch, false, 300, 300, 300.0 / 768, 300.0 / 576, 0, 0},
		{"rounded scale", 1000, 333, 640, 640, ResizeLetterbox, false, 640, 213, 0.64, 213.0 / 333, 0, 213},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, w, h := fitTransform(tc.srcW, tc.srcH, tc.dstW, tc.dstH, tc.mode, tc.topLeft)
			if w != tc.w || h != tc.h || tr.ScaleX != tc.sx || tr.ScaleY != tc.sy || tr.PadX != tc.padX || tr.PadY != tc.padY {
				t.Fatalf("got %dx%d %+v, want %dx%d scale %g,%g pad %g,%g", w, h, tr, tc.w, tc.h, tc.sx, tc.sy, tc.padX, tc.padY)
			}
			if tr.SrcW != tc.srcW || tr.SrcH != tc.srcH {
				t.Errorf("source size %dx%d", tr.SrcW, tr.SrcH)
			}
			// The resized image plus padding fills the input exactly.
			if float64(w)+tr.PadX > float64(tc.dstW) || float64(h)+tr.PadY > float64(tc.dstH) {
				t.Errorf("image overflows the input")
			}
			// Round trip: source -> model -> source is exact (within float
			// rounding) for boxes inside the image.
			for _, r := range []geom.Rect{
				{X: 0, Y: 0, W: float64(tc.srcW), H: float64(tc.srcH)},
				{X: 10, Y: 20, W: 30, H: 17},
				{X: float64(tc.srcW) / 3, Y: float64(tc.srcH) / 7, W: 1, H: 1},
			} {
				m := geom.Rect{X: r.X*tr.ScaleX + tr.PadX, Y: r.Y*tr.ScaleY + tr.PadY, W: r.W * tr.ScaleX, H: r.H * tr.ScaleY}
				back := tr.ToSource(m)
				if !near(back, r, 1e-9) {
					t.Errorf("round trip %v -> %v -> %v", r, m, back)
				}
				p := tr.PointToSource(geom.Point{X: m.X, Y: m.Y})
				if math.Abs(p.X-r.X) > 1e-9 || math.Abs(p.Y-r.Y) > 1e-9 {
					t.Errorf("point round trip %v -> %v", r, p)
				}
			}
		})
	}
}

func TestNMS(t *testing.T) {
	box := func(x float64) geom.Rect { return geom.Rect{X: x, Y: 0, W: 10, H: 10} }
	c := []candidate{
		{box: box(0), class: 1, score: 0.5},
		{box: box(1), class: 1, score: 0.9}, // IoU with box(0) = 9/11 > 0.45
		{box: box(0), class: 2, score: 0.6}, // other class: kept
		{box: box(6), class: 1, score: 0.7}, // IoU with box(1) = 5/15 < 0.45: kept
	}
	for _, tc := range []struct {
		agnostic bool
		want     []float32
	}{
		{false, []float32{0.9, 0.7, 0.6}},
		// Across classes the class-2 box(0) overlaps box(1) too.
		{true, []float32{0.9, 0.7}},
	} {
		got := suppressOverlaps(slices.Clone(c), 0.45, tc.agnostic)
		if len(got) != len(tc.want) {
			t.Fatalf("agnostic %v: kept %+v", tc.agnostic, got)
		}
		for i, w := range tc.want {
			if got[i].score != w {
				t.Errorf("agnostic %v: kept[%d] = %+v, want score %g", tc.agnostic, i, got[i], w)
			}
		}
	}
	if got := nms(slices.Clone(c), 0.45); len(got) != 3 {
		t.Errorf("nms is class-aware: kept %+v", got)
	}
}

func TestCOCO90(t *testing.T) {
	if len(COCO90) != 90 || COCO90[0] != "person" || COCO90[89] != "toothbrush" || COCO90[2] != "car" || COCO90[43] != "bottle" {
		t.Errorf("COCO90 = %q", COCO90)
	}
	na := 0
	for _, l := range COCO90 {
		if l == "N/A" {
			na++
		}
	}
	if na != 10 {
		t.Errorf("%d N/A entries, want 10", na)
	}
}
