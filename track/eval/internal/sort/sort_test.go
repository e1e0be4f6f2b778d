package sort

import (
	"math"
	"testing"

	"github.com/osprey-vision/osprey/geom"
)

func box(x float64) geom.Rect { return geom.Rect{X: x, Y: 50, W: 40, H: 80} }

// The reference code's reporting rules: in the first min_hits frames every
// matched track is reported; later a track needs min_hits consecutive hits;
// one missed frame resets the streak, two delete the track (max_age 1).
// Frames 7, 8: streak 1, 2 after the miss; frames 11-13: a new track.
func TestReportingRules(t *testing.T) {
	tr := New(DefaultConfig())
	a := func(f int) geom.Rect { return box(100 + 5*float64(f)) }
	var got [][]Box
	for f := 1; f <= 12; f++ {
		var dets []geom.Rect
		switch {
		case f == 6: // missed once
		case f == 9 || f == 10: // missed twice: deleted
		default:
			dets = []geom.Rect{a(f)}
		}
		got = append(got, tr.Update(dets))
	}
	want := []int{1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0} // boxes reported per frame
	for i, w := range want {
		if len(got[i]) != w {
			t.Fatalf("frame %d: %d boxes, want %d (all: %v)", i+1, len(got[i]), w, got)
		}
	}
	if got[0][0].ID != 1 || got[4][0].ID != 1 {
		t.Fatalf("ids %v", got)
	}
	// The reference code creates a track with a hit streak of 0, so a new
	// track is first reported on its fourth detection.
	if b := tr.Update([]geom.Rect{a(13)}); len(b) != 0 {
		t.Fatalf("frame 13: %v, want nothing (streak 2)", b)
	}
	if b := tr.Update([]geom.Rect{a(14)}); len(b) != 1 || b[0].ID != 2 {
		t.Fatalf("frame 14: %v, want the new track (id 2) on its fourth detection", b)
	}
}

// On a box moving at constant velocity the filter's estimate converges on
// the detection, and its prediction carries the motion.
func TestFilterTracksConstantVelocity(t *testing.T) {
	f := newFilter(box(0))
	for i := 1; i <= 30; i++ {
		f.predict()
		f.update(box(10 * float64(i)))
	}
	if b := f.box(); math.Abs(b.X-300) > 0.5 || math.Abs(b.W-40) > 0.5 || math.Abs(b.H-80) > 0.5 {
		t.Fatalf("estimate %+v, want about x 300, 40x80", b)
	}
	f.predict()
	if b := f.box(); math.Abs(b.X-310) > 1 {
		t.Fatalf("prediction x %.2f, want about 310", b.X)
	}
}

// Crossing pairs that each overlap two candidates go through the Hungarian
// method; pairs below the threshold are dropped.
func TestAssociate(t *testing.T) {
	dets := []geom.Rect{box(0), box(30), box(500)}
	preds := []geom.Rect{box(28), box(2)}
	pairs := associate(dets, preds, 0.3)
	if len(pairs) != 2 || pairs[0] != [2]int{0, 1} || pairs[1] != [2]int{1, 0} {
		t.Fatalf("pairs %v, want det 0-pred 1 and det 1-pred 0", pairs)
	}
}

func TestInv4(t *testing.T) {
	m := [4][4]float64{{4, 1, 0, 0}, {1, 3, 1, 0}, {0, 1, 2, 1}, {0, 0, 1, 5}}
	inv, ok := inv4(m)
	if !ok {
		t.Fatal("singular")
	}
	for i := range 4 {
		for j := range 4 {
			var v float64
			for k := range 4 {
				v += m[i][k] * inv[k][j]
			}
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(v-want) > 1e-12 {
				t.Fatalf("m·inv[%d][%d] = %v", i, j, v)
			}
		}
	}
	if _, ok := inv4([4][4]float64{}); ok {
		t.Fatal("zero matrix inverted")
	}
}
