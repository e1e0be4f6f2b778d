package tfjs

import (
	"path/filepath"
	"testing"

	"github.com/osprey-vision/osprey/internal/realpart"
)

// The import declares the ResizeBilinear it cuts off, and only that one:
// a cut whose size is not the resize's, or a Placeholder cut, declares none.
func TestCutResize(t *testing.T) {
	p := filepath.Join(moduleRoot(t), "third_party", "coco-ssd", "models", "coco-ssd", "model.json")
	realpart.File(t, realpart.COCOSSDGraph, p)
	m, err := ReadModel(p)
	if err != nil {
		t.Fatal(err)
	}
	const want = "tf-bilinear align_corners=false half_pixel_centers=false"
	if got := cutResize(m, DefaultInput, []int64{-1, 300, 300, 3}); got != want {
		t.Errorf("COCO-SSD cut: %q, want %q", got, want)
	}
	if got := cutResize(m, DefaultInput, []int64{-1, 320, 320, 3}); got != "" {
		t.Errorf("a cut of another size: %q, want none", got)
	}
	if got := cutResize(m, "image_tensor", []int64{-1, 300, 300, 3}); got != "" {
		t.Errorf("the Placeholder itself: %q, want none", got)
	}
	g, outs := opsGraph()
	synth, err := ReadModel(g.write(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if got := cutResize(synth, "x", []int64{-1, 7, 9, 4}); got != "" || len(outs) == 0 {
		t.Errorf("a graph without a resize: %q, want none", got)
	}
}
