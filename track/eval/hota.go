package eval

import (
	"math"

	"github.com/osprey-vision/osprey/track/internal/lap"
)

// Alphas are HOTA's localisation thresholds: 0.05, 0.10, ..., 0.95.
var Alphas = func() (a [19]float64) {
	for i := range a {
		a[i] = 0.05 * float64(i+1)
	}
	return a
}()

// HOTAAt holds the HOTA counts and association scores at one threshold.
type HOTAAt struct {
	TP, FN, FP int
	// AssA, AssRe, AssPr are means over the true positives; LocA is their
	// mean IoU.
	AssA, AssRe, AssPr, LocA float64
}

// DetA returns TP / (TP + FN + FP).
func (h HOTAAt) DetA() float64 { return ratio(h.TP, h.TP+h.FN+h.FP) }

// HOTA returns √(DetA·AssA).
func (h HOTAAt) HOTA() float64 { return math.Sqrt(h.DetA() * h.AssA) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// epsilon is the float tolerance TrackEval applies to its thresholds, so a
// similarity of exactly alpha matches.
const epsilon = 2.220446049250313e-16

// hota computes HOTA (Luiten et al., "HOTA: A Higher Order Metric for
// Evaluating Multi-Object Tracking", IJCV 2020) the way TrackEval does: a
// global alignment score between every ground-truth and hypothesis
// trajectory first, then per frame a Hungarian matching that maximises
// alignment × IoU, counted at each alpha where the pair's IoU reaches it.
func hota(frames []Frame) [len(Alphas)]HOTAAt {
	var out [len(Alphas)]HOTAAt
	gi, hi := map[uint64]int{}, map[uint64]int{}
	for _, f := range frames {
		for _, g := range f.GT {
			if _, ok := gi[g.ID]; !ok {
				gi[g.ID] = len(gi)
			}
		}
		for _, h := range f.Hyp {
			if _, ok := hi[h.ID]; !ok {
				hi[h.ID] = len(hi)
			}
		}
	}
	ng, nh := len(gi), len(hi)
	gtCount := make([]float64, ng)
	hypCount := make([]float64, nh)
	potential := make([]float64, ng*nh) // sparse would do; sequences are small
	sims := make([][][]float64, len(frames))
	for t, f := range frames {
		s := make([][]float64, len(f.GT))
		rowSum := make([]float64, len(f.GT))
		colSum := make([]float64, len(f.Hyp))
		for i, g := range f.GT {
			s[i] = make([]float64, len(f.Hyp))
			for j, h := range f.Hyp {
				v := g.Box.IoU(h.Box)
				s[i][j] = v
				rowSum[i] += v
				colSum[j] += v
			}
		}
		sims[t] = s
		for i, g := range f.GT {
			for j, h := range f.Hyp {
				den := rowSum[i] + colSum[j] - s[i][j]
				if den > epsilon {
					potential[gi[g.ID]*nh+hi[h.ID]] += s[i][j] / den
				}
			}
			gtCount[gi[g.ID]]++
		}
		for _, h := range f.Hyp {
			hypCount[hi[h.ID]]++
		}
	}
	align := make([]float64, ng*nh)
	for a := range ng {
		for b := range nh {
			p := potential[a*nh+b]
			if p > 0 {
				align[a*nh+b] = p / (gtCount[a] + hypCount[b] - p)
			}
		}
	}
	matches := make([][]float64, len(Alphas))
	for a := range matches {
		matches[a] = make([]float64, ng*nh)
	}
	for t, f := range frames {
		if len(f.GT) == 0 || len(f.Hyp) == 0 {
			for a := range out {
				out[a].FP += len(f.Hyp)
				out[a].FN += len(f.GT)
			}
			continue
		}
		s := sims[t]
		score := make([][]float64, len(f.GT))
		for i, g := range f.GT {
			score[i] = make([]float64, len(f.Hyp))
			for j, h := range f.Hyp {
				score[i][j] = -align[gi[g.ID]*nh+hi[h.ID]] * s[i][j]
			}
		}
		assign := lap.Solve(score)
		for a, alpha := range Alphas {
			n := 0
			for i, j := range assign {
				if j < 0 || s[i][j] < alpha-epsilon {
					continue
				}
				n++
				out[a].LocA += s[i][j]
				matches[a][gi[f.GT[i].ID]*nh+hi[f.Hyp[j].ID]]++
			}
			out[a].TP += n
			out[a].FN += len(f.GT) - n
			out[a].FP += len(f.Hyp) - n
		}
	}
	for a := range out {
		tp := math.Max(1, float64(out[a].TP))
		for g := range ng {
			for h := range nh {
				m := matches[a][g*nh+h]
				if m == 0 {
					continue
				}
				out[a].AssA += m * m / math.Max(1, gtCount[g]+hypCount[h]-m)
				out[a].AssRe += m * m / math.Max(1, gtCount[g])
				out[a].AssPr += m * m / math.Max(1, hypCount[h])
			}
		}
		out[a].AssA /= tp
		out[a].AssRe /= tp
		out[a].AssPr /= tp
		out[a].LocA = math.Max(1e-10, out[a].LocA) / math.Max(1e-10, float64(out[a].TP))
	}
	return out
}

// summariseHOTA sets the alpha-averaged HOTA, DetA, AssA and LocA of r from
// r.HOTAAlpha.
func (r *Result) summariseHOTA() {
	r.HOTA, r.DetA, r.AssA, r.LocA = 0, 0, 0, 0
	n := float64(len(Alphas))
	for _, h := range r.HOTAAlpha {
		r.HOTA += h.HOTA() / n
		r.DetA += h.DetA() / n
		r.AssA += h.AssA / n
		r.LocA += h.LocA / n
	}
}

// Combine pools the results of several sequences the way the MOTChallenge
// tools report a "combined" row: counts are summed and the ratios
// recomputed from the sums (MOTP and the HOTA association and localisation
// scores weighted by their matches).
func Combine(rs ...Result) Result {
	var c Result
	var iouSum float64
	for _, r := range rs {
		c.Frames += r.Frames
		c.GT += r.GT
		c.Hyp += r.Hyp
		c.Matches += r.Matches
		c.FP += r.FP
		c.FN += r.FN
		c.IDSwitches += r.IDSwitches
		c.Fragmentations += r.Fragmentations
		c.IDTP += r.IDTP
		c.IDFP += r.IDFP
		c.IDFN += r.IDFN
		iouSum += r.MOTP * float64(r.Matches)
		for a, h := range r.HOTAAlpha {
			ca := &c.HOTAAlpha[a]
			w := float64(h.TP)
			ca.TP += h.TP
			ca.FN += h.FN
			ca.FP += h.FP
			ca.AssA += h.AssA * w
			ca.AssRe += h.AssRe * w
			ca.AssPr += h.AssPr * w
			ca.LocA += h.LocA * w
		}
	}
	for a := range c.HOTAAlpha {
		ca := &c.HOTAAlpha[a]
		w := math.Max(1, float64(ca.TP))
		ca.AssA /= w
		ca.AssRe /= w
		ca.AssPr /= w
		// As TrackEval: a threshold no pair reaches has LocA 1, not 0.
		ca.LocA = math.Max(1e-10, ca.LocA) / math.Max(1e-10, float64(ca.TP))
	}
	c.finish(iouSum)
	c.summariseHOTA()
	return c
}
