package quant

import (
	"math"
	"testing"
)

// The mean is over classes: a class the reference found three times, with
// one false positive ranked above one of them, would pull a perfect
// 700-detection class's mean to about 0.9. It shows in the per-class APs but
// does not count in MAP50 below MinRef reference detections.
func TestClassAPsAndTheRareClass(t *testing.T) {
	var dets []scored
	for range 700 {
		dets = append(dets, scored{class: 1, score: 0.9, tp: true})
	}
	dets = append(dets,
		scored{class: 37, score: 0.8, tp: true},
		scored{class: 37, score: 0.7, tp: false},
		scored{class: 37, score: 0.6, tp: true},
		scored{class: 37, score: 0.55, tp: true})
	aps := classAPs(dets, map[int]int{1: 700, 37: 3})
	if aps[1] != 1 {
		t.Fatalf("class 1 AP %.4f, want 1", aps[1])
	}
	// Precision 1 up to recall 1/3, then 3/4 up to recall 1.
	if want := 1.0/3 + 2.0/3*0.75; math.Abs(aps[37]-want) > 1e-12 {
		t.Fatalf("class 37 AP %.4f, want %.4f", aps[37], want)
	}
	if got, want := meanAP(aps), (1+aps[37])/2; math.Abs(got-want) > 1e-12 {
		t.Fatalf("mean over all classes %.4f, want %.4f", got, want)
	}
	if meanAP(map[int]float64{}) != 1 {
		t.Fatal("no classes: mean AP should be 1 (nothing to find)")
	}
}
