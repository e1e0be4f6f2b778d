package eval

import (
	"math"
	"testing"

	"github.com/osprey-vision/osprey/geom"
)

var (
	boxA  = geom.Rect{X: 0, Y: 0, W: 10, H: 10}
	boxA6 = geom.Rect{X: 0, Y: 0, W: 10, H: 6} // IoU with boxA: 0.6
	boxB  = geom.Rect{X: 100, Y: 100, W: 10, H: 10}
)

func obj(id uint64, b geom.Rect) Object { return Object{ID: id, Box: b} }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// Each case was worked out by hand from the definitions; the comments give
// the arithmetic.
func TestEvaluateHandComputed(t *testing.T) {
	tests := []struct {
		name                      string
		frames                    []Frame
		matches, fp, fn, sw, frag int
		mota, motp                float64
		idtp, idfp, idfn          int
		idf1                      float64
	}{
		{
			// One object, hypothesis 1 then 2: every frame matched, one
			// switch. MOTA = 1 - 1/4. IDTP = 2 (best single hypothesis),
			// IDF1 = 2*2 / (2*2 + 2 + 2) = 0.5.
			name: "identity handover",
			frames: []Frame{
				{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(1, boxA)}},
				{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(1, boxA)}},
				{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(2, boxA)}},
				{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(2, boxA)}},
			},
			matches: 4, sw: 1, mota: 0.75, motp: 1, idtp: 2, idfp: 2, idfn: 2, idf1: 0.5,
		},
		{
			// Tracked on frames 1, 3, 5; missed on 2, 4, 6. Two
			// interruptions are followed by tracking again, the last miss
			// is not: Frag = 2. MOTA = 1 - 3/6. IDF1 = 6 / (6 + 0 + 3).
			name: "fragmentation",
			frames: []Frame{
				{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(1, boxA)}},
				{GT: []Object{obj(1, boxA)}},
				{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(1, boxA)}},
				{GT: []Object{obj(1, boxA)}},
				{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(1, boxA)}},
				{GT: []Object{obj(1, boxA)}},
			},
			matches: 3, fn: 3, frag: 2, mota: 0.5, motp: 1, idtp: 3, idfn: 3, idf1: 6.0 / 9,
		},
		{
			// Two objects whose hypotheses swap on frame 3: two switches.
			// MOTA = 1 - 2/8. Every (gt, hyp) pair agrees on 2 frames, so
			// IDTP = 4 of 8: IDF1 = 8 / (8 + 4 + 4) = 0.5.
			name: "swap",
			frames: []Frame{
				{GT: []Object{obj(1, boxA), obj(2, boxB)}, Hyp: []Object{obj(1, boxA), obj(2, boxB)}},
				{GT: []Object{obj(1, boxA), obj(2, boxB)}, Hyp: []Object{obj(1, boxA), obj(2, boxB)}},
				{GT: []Object{obj(1, boxA), obj(2, boxB)}, Hyp: []Object{obj(2, boxA), obj(1, boxB)}},
				{GT: []Object{obj(1, boxA), obj(2, boxB)}, Hyp: []Object{obj(2, boxA), obj(1, boxB)}},
			},
			matches: 8, sw: 2, mota: 0.75, motp: 1, idtp: 4, idfp: 4, idfn: 4, idf1: 0.5,
		},
		{
			// Frame 1 matches gt 1 to hyp 1 at IoU 0.6. On frame 2 hyp 2
			// fits better (IoU 1) but the previous correspondence is still
			// valid, so CLEAR-MOT keeps it: no switch, hyp 2 is a false
			// positive. MOTA = 1 - 1/2, MOTP = 0.6.
			// IDF1: IDTP 2 (gt 1 with hyp 1), IDFP 1: 4 / (4 + 1 + 0).
			name: "keep valid correspondence",
			frames: []Frame{
				{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(1, boxA6)}},
				{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(2, boxA), obj(1, boxA6)}},
			},
			matches: 2, fp: 1, mota: 0.5, motp: 0.6, idtp: 2, idfp: 1, idf1: 0.8,
		},
		{
			// Below the IoU threshold nothing matches: FP 1, FN 1 per
			// frame. MOTA = 1 - 4/2 = -1.
			name: "no overlap",
			frames: []Frame{
				{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(1, boxB)}},
				{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(1, boxB)}},
			},
			fp: 2, fn: 2, mota: -1, idfp: 2, idfn: 2,
		},
		{
			// Identity mapping must be global, not greedy: gt 1 agrees with
			// hyp 1 on 4 frames and hyp 2 on 3, gt 2 with hyp 1 on 3.
			// Greedy takes (1,1) = 4; the optimum (1,2) + (2,1) = 6.
			// IDF1 = 12 / (12 + 4 + 4) = 0.6. CLEAR: one switch at frame 5.
			// MOTA = 1 - 1/10.
			name: "global identity mapping",
			frames: append(append(
				repeat(4, Frame{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(1, boxA)}}),
				repeat(3, Frame{GT: []Object{obj(1, boxA)}, Hyp: []Object{obj(2, boxA)}})...),
				repeat(3, Frame{GT: []Object{obj(2, boxB)}, Hyp: []Object{obj(1, boxB)}})...),
			matches: 10, sw: 1, mota: 0.9, motp: 1, idtp: 6, idfp: 4, idfn: 4, idf1: 0.6,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Evaluate(tc.frames, 0.5)
			if r.Matches != tc.matches || r.FP != tc.fp || r.FN != tc.fn || r.IDSwitches != tc.sw || r.Fragmentations != tc.frag {
				t.Errorf("matches/FP/FN/IDsw/Frag = %d/%d/%d/%d/%d, want %d/%d/%d/%d/%d",
					r.Matches, r.FP, r.FN, r.IDSwitches, r.Fragmentations, tc.matches, tc.fp, tc.fn, tc.sw, tc.frag)
			}
			if !near(r.MOTA, tc.mota) || !near(r.MOTP, tc.motp) {
				t.Errorf("MOTA, MOTP = %v, %v, want %v, %v", r.MOTA, r.MOTP, tc.mota, tc.motp)
			}
			if r.IDTP != tc.idtp || r.IDFP != tc.idfp || r.IDFN != tc.idfn || !near(r.IDF1, tc.idf1) {
				t.Errorf("IDTP/IDFP/IDFN/IDF1 = %d/%d/%d/%v, want %d/%d/%d/%v",
					r.IDTP, r.IDFP, r.IDFN, r.IDF1, tc.idtp, tc.idfp, tc.idfn, tc.idf1)
			}
		})
	}
}

func repeat(n int, f Frame) []Frame {
	out := make([]Frame, n)
	for i := range out {
		out[i] = f
	}
	return out
}

func TestEvaluateEmpty(t *testing.T) {
	r := Evaluate(nil, 0.5)
	if r.MOTA != 0 || r.IDF1 != 0 || r.Frames != 0 {
		t.Fatalf("empty sequence: %+v", r)
	}
}
