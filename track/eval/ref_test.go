package eval

import (
	"math"
	"testing"

	"github.com/osprey-vision/osprey/track/mot"
)

// TestReferenceSample scores testdata/ref (hand-written boxes, MOTChallenge
// format) and checks the result against published reference values.
//
// The sample is py-motmetrics' test_ids case (motmetrics/tests/
// test_metrics.py) written as boxes: each distance d of that test's
// matrices is a pair of boxes with IoU 1-d (d = 1 and "no pair" become
// disjoint boxes, and d > 0.5 pairs, which that test never assigns, are
// disjoint too), so at the MOTChallenge IoU of 0.5 the same pairs are
// candidates. Its expected values: 7 matches plus 3 switches (10
// detections), no false positives or misses, MOTA 1 - 3/10, MOTP (mean
// distance) 1.6/10, i.e. a mean IoU of 0.84. A last ground-truth row
// flagged 0 checks that ignored rows are dropped.
//
// HOTA and IDF1 have no small published case; their expected values come
// from TrackEval's algorithms (trackeval/metrics/hota.py, identity.py)
// re-run independently in Python with numpy and scipy's
// linear_sum_assignment on the same two files (see docs/tracking.md).
func TestReferenceSample(t *testing.T) {
	gt, err := mot.ReadFile("testdata/ref/gt.txt", mot.AnyOrder)
	if err != nil {
		t.Fatal(err)
	}
	gt, ignored := mot.DropIgnored(gt)
	res, err := mot.ReadFile("testdata/ref/res.txt", mot.AnyOrder)
	if err != nil {
		t.Fatal(err)
	}
	r := Evaluate(FromMOT(gt, res), 0.5)
	ints := []struct {
		name      string
		got, want int
	}{
		{"ignored gt rows", ignored, 1},
		{"GT", r.GT, 10},
		{"matches+switches (num_detections)", r.Matches, 10},
		{"IDSW", r.IDSwitches, 3},
		{"FP", r.FP, 0},
		{"FN", r.FN, 0},
		{"IDTP", r.IDTP, 5},
		{"IDFP", r.IDFP, 5},
		{"IDFN", r.IDFN, 5},
	}
	for _, c := range ints {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	floats := []struct {
		name      string
		got, want float64
	}{
		{"MOTA", r.MOTA, 1 - 3.0/10},
		{"MOTP (mean IoU)", r.MOTP, 1 - 1.6/10},
		{"IDF1", r.IDF1, 0.5},
		{"HOTA", r.HOTA, 0.484890326},
		{"DetA", r.DetA, 0.789473684},
		{"AssA", r.AssA, 0.300170565},
		{"LocA", r.LocA, 0.898947368},
	}
	for _, c := range floats {
		if math.Abs(c.got-c.want) > 1e-6 {
			t.Errorf("%s = %.9f, want %.9f", c.name, c.got, c.want)
		}
	}
}

// Limits of HOTA that follow from its definition: a perfect tracker scores
// 1; one box matched at IoU 1/3 passes 6 of the 19 thresholds
// (0.05 ... 0.30), so HOTA = DetA = AssA = 6/19; an identity swap halfway
// keeps DetA at 1 and halves AssA.
func TestHOTALimits(t *testing.T) {
	a := obj(1, boxA)
	third := Object{ID: 1, Box: boxA}
	third.Box.X = 5 // IoU (5*10) / (150) = 1/3
	perfect := Evaluate([]Frame{{GT: []Object{a}, Hyp: []Object{a}}, {GT: []Object{a}, Hyp: []Object{a}}}, 0.5)
	if !near(perfect.HOTA, 1) || !near(perfect.DetA, 1) || !near(perfect.AssA, 1) {
		t.Errorf("perfect: HOTA %v DetA %v AssA %v, want 1", perfect.HOTA, perfect.DetA, perfect.AssA)
	}
	r := Evaluate([]Frame{{GT: []Object{a}, Hyp: []Object{third}}}, 0.5)
	if !near(r.HOTA, 6.0/19) || !near(r.DetA, 6.0/19) || !near(r.AssA, 6.0/19) {
		t.Errorf("IoU 1/3: HOTA %v DetA %v AssA %v, want 6/19", r.HOTA, r.DetA, r.AssA)
	}
	swap := Evaluate([]Frame{
		{GT: []Object{a}, Hyp: []Object{obj(1, boxA)}}, {GT: []Object{a}, Hyp: []Object{obj(1, boxA)}},
		{GT: []Object{a}, Hyp: []Object{obj(2, boxA)}}, {GT: []Object{a}, Hyp: []Object{obj(2, boxA)}},
	}, 0.5)
	if !near(swap.DetA, 1) || !near(swap.AssA, 0.5) || !near(swap.HOTA, math.Sqrt(0.5)) {
		t.Errorf("swap: HOTA %v DetA %v AssA %v, want sqrt(1/2), 1, 1/2", swap.HOTA, swap.DetA, swap.AssA)
	}
	// Combine of one result is that result.
	if c := Combine(r); !near(c.LocA, r.LocA) || !near(c.HOTA, r.HOTA) {
		t.Errorf("Combine(one) LocA %v HOTA %v, want %v %v", c.LocA, c.HOTA, r.LocA, r.HOTA)
	}
	if c := Combine(swap); !near(c.HOTA, swap.HOTA) || !near(c.MOTA, swap.MOTA) || !near(c.IDF1, swap.IDF1) || !near(c.MOTP, swap.MOTP) {
		t.Errorf("Combine(one) = %v, want %v", c, swap)
	}
}
