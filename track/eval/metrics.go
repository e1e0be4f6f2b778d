// Package eval measures multi-object tracking quality against ground truth:
// the CLEAR-MOT metrics (Bernardin & Stiefelhagen, "Evaluating Multiple
// Object Tracking Performance: The CLEAR MOT Metrics", 2008) and the
// identity metrics IDP/IDR/IDF1 (Ristani et al., "Performance Measures and a
// Data Set for Multi-Target, Multi-Camera Tracking", 2016), plus synthetic
// scenes with known ground truth to run the tracker on.
package eval

import (
	"fmt"
	"slices"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/track/internal/lap"
)

// Object is one box with an identity on one frame: a ground-truth object or
// a tracker hypothesis.
type Object struct {
	ID  uint64
	Box geom.Rect
}

// Frame pairs the ground truth and the tracker output of one frame.
type Frame struct {
	GT  []Object
	Hyp []Object
}

// Result holds the metrics of one sequence.
type Result struct {
	Frames  int // frames evaluated
	GT      int // ground-truth boxes over all frames
	Hyp     int // hypothesis boxes over all frames
	Matches int // ground-truth boxes matched to a hypothesis
	FP      int // hypotheses matched to no ground truth
	FN      int // ground-truth boxes matched to no hypothesis (misses)
	// IDSwitches counts mismatches: a ground-truth object matched to a
	// different hypothesis than the one it was last matched to.
	IDSwitches int
	// Fragmentations counts interruptions: a ground-truth trajectory going
	// from tracked to missed and later tracked again (Li et al. 2009).
	Fragmentations int
	// SwitchedGT lists the ground-truth IDs involved in ID switches, once
	// each, in the order of their first switch.
	SwitchedGT []uint64
	// MOTA = 1 - (FN + FP + IDSwitches) / GT.
	MOTA float64
	// MOTP is the mean IoU of the matched pairs (the overlap form of the
	// CLEAR-MOT precision: higher is better).
	MOTP float64

	IDTP, IDFP, IDFN int
	IDP, IDR, IDF1   float64

	// HOTA, DetA, AssA and LocA are the means over Alphas of HOTAAlpha's
	// scores.
	HOTA, DetA, AssA, LocA float64
	HOTAAlpha              [len(Alphas)]HOTAAt
}

// String formats the headline metrics on one line.
func (r Result) String() string {
	return fmt.Sprintf("MOTA %.3f MOTP %.3f IDF1 %.3f IDP %.3f IDR %.3f HOTA %.3f DetA %.3f AssA %.3f FP %d FN %d IDsw %d Frag %d (GT %d, frames %d)",
		r.MOTA, r.MOTP, r.IDF1, r.IDP, r.IDR, r.HOTA, r.DetA, r.AssA, r.FP, r.FN, r.IDSwitches, r.Fragmentations, r.GT, r.Frames)
}

// forbidden is the cost of a pair that may not match: more than any sum of
// allowed costs in one frame, so the assignment maximises matches first.
const forbidden = 1e9

// Evaluate computes CLEAR-MOT and identity metrics over frames. A ground
// truth box and a hypothesis correspond when their IoU is at least minIoU
// (0.5 is the usual choice). IDs must be unique within a frame on each side.
func Evaluate(frames []Frame, minIoU float64) Result {
	var r Result
	r.Frames = len(frames)
	prev := map[uint64]uint64{} // gt -> hyp matched on the previous frame
	last := map[uint64]uint64{} // gt -> hyp it was last matched to, ever
	type fragState struct{ tracked, pendingMiss bool }
	frag := map[uint64]*fragState{}
	var iouSum float64

	pairCount := map[[2]uint64]int{} // (gt, hyp) -> frames with IoU >= minIoU

	for _, f := range frames {
		r.GT += len(f.GT)
		r.Hyp += len(f.Hyp)
		hypIdx := make(map[uint64]int, len(f.Hyp))
		for j, h := range f.Hyp {
			hypIdx[h.ID] = j
		}
		for _, g := range f.GT {
			for _, h := range f.Hyp {
				if g.Box.IoU(h.Box) >= minIoU {
					pairCount[[2]uint64{g.ID, h.ID}]++
				}
			}
		}

		match := make([]int, len(f.GT)) // gt index -> hyp index, -1
		hypUsed := make([]bool, len(f.Hyp))
		// Step 1: keep last frame's correspondences that are still valid.
		for i, g := range f.GT {
			match[i] = -1
			if h, ok := prev[g.ID]; ok {
				if j, ok := hypIdx[h]; ok && !hypUsed[j] && g.Box.IoU(f.Hyp[j].Box) >= minIoU {
					match[i] = j
					hypUsed[j] = true
				}
			}
		}
		// Step 2: match the rest by min total distance (1 - IoU).
		var rows, cols []int
		for i := range f.GT {
			if match[i] < 0 {
				rows = append(rows, i)
			}
		}
		for j := range f.Hyp {
			if !hypUsed[j] {
				cols = append(cols, j)
			}
		}
		if len(rows) > 0 && len(cols) > 0 {
			cost := make([][]float64, len(rows))
			for a, i := range rows {
				cost[a] = make([]float64, len(cols))
				for b, j := range cols {
					if iou := f.GT[i].Box.IoU(f.Hyp[j].Box); iou >= minIoU {
						cost[a][b] = 1 - iou
					} else {
						cost[a][b] = forbidden
					}
				}
			}
			for a, b := range lap.Solve(cost) {
				if b >= 0 && cost[a][b] < forbidden {
					i, j := rows[a], cols[b]
					match[i] = j
					hypUsed[j] = true
					if h, ok := last[f.GT[i].ID]; ok && h != f.Hyp[j].ID {
						r.IDSwitches++
						if !slices.Contains(r.SwitchedGT, f.GT[i].ID) {
							r.SwitchedGT = append(r.SwitchedGT, f.GT[i].ID)
						}
					}
				}
			}
		}

		next := make(map[uint64]uint64, len(f.GT))
		for i, g := range f.GT {
			fs := frag[g.ID]
			if fs == nil {
				fs = &fragState{}
				frag[g.ID] = fs
			}
			j := match[i]
			if j < 0 {
				r.FN++
				if fs.tracked {
					fs.pendingMiss = true
				}
				continue
			}
			if fs.pendingMiss {
				r.Fragmentations++
				fs.pendingMiss = false
			}
			fs.tracked = true
			r.Matches++
			iouSum += g.Box.IoU(f.Hyp[j].Box)
			next[g.ID] = f.Hyp[j].ID
			last[g.ID] = f.Hyp[j].ID
		}
		prev = next
		for j := range f.Hyp {
			if !hypUsed[j] {
				r.FP++
			}
		}
	}
	r.IDTP = identityTP(pairCount)
	r.IDFN = r.GT - r.IDTP
	r.IDFP = r.Hyp - r.IDTP
	r.finish(iouSum)
	r.HOTAAlpha = hota(frames)
	r.summariseHOTA()
	return r
}

// finish derives MOTA, MOTP and the identity ratios from the counts.
func (r *Result) finish(iouSum float64) {
	r.MOTA, r.MOTP, r.IDP, r.IDR, r.IDF1 = 0, 0, 0, 0, 0
	if r.GT > 0 {
		r.MOTA = 1 - float64(r.FN+r.FP+r.IDSwitches)/float64(r.GT)
	}
	if r.Matches > 0 {
		r.MOTP = iouSum / float64(r.Matches)
	}
	if r.IDTP > 0 {
		r.IDP = float64(r.IDTP) / float64(r.IDTP+r.IDFP)
		r.IDR = float64(r.IDTP) / float64(r.IDTP+r.IDFN)
		r.IDF1 = 2 * float64(r.IDTP) / float64(2*r.IDTP+r.IDFP+r.IDFN)
	}
}

// identityTP finds the one-to-one mapping between ground-truth and
// hypothesis trajectories that minimises IDFP + IDFN. Both totals are fixed
// minus IDTP, so this is the mapping with the most frames in agreement: a
// max-weight bipartite matching, solved with the Hungarian method on
// negated counts. Unmapped trajectories count wholly as IDFN / IDFP.
func identityTP(pairs map[[2]uint64]int) int {
	if len(pairs) == 0 {
		return 0
	}
	gi, hi := map[uint64]int{}, map[uint64]int{}
	for k := range pairs {
		if _, ok := gi[k[0]]; !ok {
			gi[k[0]] = len(gi)
		}
		if _, ok := hi[k[1]]; !ok {
			hi[k[1]] = len(hi)
		}
	}
	cost := make([][]float64, len(gi))
	for i := range cost {
		cost[i] = make([]float64, len(hi))
	}
	for k, n := range pairs {
		cost[gi[k[0]]][hi[k[1]]] = -float64(n)
	}
	tp := 0
	for i, j := range lap.Solve(cost) {
		if j >= 0 {
			tp += int(-cost[i][j])
		}
	}
	return tp
}
