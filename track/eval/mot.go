package eval

import "github.com/osprey-vision/osprey/track/mot"

// FromMOT pairs MOTChallenge ground truth (rows flagged 0 already dropped)
// and results frame by frame, over frames 1 to the last frame either file
// mentions.
func FromMOT(gt, res []mot.Frame) []Frame {
	last := 0
	for _, fs := range [][]mot.Frame{gt, res} {
		if len(fs) > 0 {
			last = max(last, fs[len(fs)-1].Number)
		}
	}
	out := make([]Frame, last)
	for _, f := range gt {
		for _, r := range f.Rows {
			out[f.Number-1].GT = append(out[f.Number-1].GT, Object{ID: uint64(r.ID), Box: r.Box})
		}
	}
	for _, f := range res {
		for _, r := range f.Rows {
			out[f.Number-1].Hyp = append(out[f.Number-1].Hyp, Object{ID: uint64(r.ID), Box: r.Box})
		}
	}
	return out
}
