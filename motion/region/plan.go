// Package region turns motion and track boxes into detector crops and maps
// what the detector finds in those crops back to one de-duplicated set of
// frame boxes. It is pure Go; every box is in frame pixels unless a name
// says otherwise.
package region

import (
	"math"
	"sort"

	"github.com/osprey-vision/osprey/geom"
)

// Plan is the outcome of planning one frame.
type Plan struct {
	// Regions are the crops to run the detector on, in frame pixels with
	// integer edges, sorted top-to-bottom then left-to-right. Empty when
	// there was nothing to look at. With FullFrame it holds the one
	// full-frame rectangle.
	Regions []geom.Rect
	// FullFrame is set when the regions would have covered so much of the
	// frame (Config.FullFrameShare) that one full-frame run is cheaper.
	FullFrame bool
}

// cluster is a group of boxes: content is their union, crop the region cut
// around it.
type cluster struct{ content, crop geom.Rect }

// PlanRegions groups motion and track boxes (frame pixels) into at most
// cfg.Max crops for a model whose input is inW x inH pixels, on a frameW x
// frameH frame. Boxes are padded by cfg.Margin, overlapping ones merged, and
// each group gets a crop with the model's aspect ratio that is at least the
// model input size where the frame allows, so a small distant object is
// scaled up rather than down. Crops that overlap are merged when one crop
// costs no more pixels than the two; beyond cfg.Max the pair whose merged
// crop is smallest is merged first. When the crops' total area reaches
// cfg.FullFrameShare of the frame, or a crop would be scaled down by more
// than cfg.MaxDownscale to fit the model, the plan is the full frame.
//
// A non-positive model or frame size yields the full frame: the caller
// should have rejected it with CheckModelInput.
func PlanRegions(cfg Config, motion, tracks []geom.Rect, frameW, frameH, inW, inH int) Plan {
	fw, fh := float64(frameW), float64(frameH)
	full := Plan{Regions: []geom.Rect{{W: fw, H: fh}}, FullFrame: true}
	if frameW <= 0 || frameH <= 0 {
		return Plan{}
	}
	if inW <= 0 || inH <= 0 {
		return full
	}
	var cs []cluster
	for _, set := range [][]geom.Rect{motion, tracks} {
		for _, b := range set {
			pad := cfg.Margin * math.Max(b.W, b.H)
			p := geom.Rect{X: b.X - pad, Y: b.Y - pad, W: b.W + 2*pad, H: b.H + 2*pad}.Clamp(fw, fh)
			if p.Area() > 0 {
				cs = append(cs, cluster{content: p})
			}
		}
	}
	if len(cs) == 0 {
		return Plan{}
	}
	// Transitive clustering of overlapping padded boxes.
	cs = mergeWhile(cs, func(a, b cluster) bool { return a.content.Intersect(b.content).Area() > 0 }, nil)
	fitter := func(r geom.Rect) geom.Rect { return fit(r, float64(inW), float64(inH), fw, fh) }
	for i := range cs {
		cs[i].crop = fitter(cs[i].content)
	}
	// Merge overlapping crops when the merged crop is no bigger than both.
	cs = mergeWhile(cs, func(a, b cluster) bool {
		return a.crop.Intersect(b.crop).Area() > 0 &&
			fitter(union(a.content, b.content)).Area() <= a.crop.Area()+b.crop.Area()
	}, fitter)
	max := cfg.Max
	if max < 1 {
		max = 1
	}
	for len(cs) > max {
		bi, bj, best := 0, 1, math.Inf(1)
		for i := range cs {
			for j := i + 1; j < len(cs); j++ {
				if a := fitter(union(cs[i].content, cs[j].content)).Area(); a < best {
					bi, bj, best = i, j, a
				}
			}
		}
		cs[bi].content = union(cs[bi].content, cs[bj].content)
		cs[bi].crop = fitter(cs[bi].content)
		cs = append(cs[:bj], cs[bj+1:]...)
	}
	var total float64
	for _, c := range cs {
		total += c.crop.Area()
		// A crop larger than the model input is scaled down: it costs the
		// same detector run as the whole frame and, measured, finds fewer
		// of the objects the whole frame finds (docs/motion.md).
		if c.crop.W > cfg.MaxDownscale*float64(inW)+1 || c.crop.H > cfg.MaxDownscale*float64(inH)+1 {
			return full
		}
	}
	if total >= cfg.FullFrameShare*fw*fh {
		return full
	}
	out := make([]geom.Rect, len(cs))
	for i, c := range cs {
		out[i] = c.crop
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Y != out[j].Y {
			return out[i].Y < out[j].Y
		}
		return out[i].X < out[j].X
	})
	return Plan{Regions: out}
}

// mergeWhile merges pairs for which join holds until none is left; refit,
// when set, recomputes the merged cluster's crop.
func mergeWhile(cs []cluster, join func(a, b cluster) bool, refit func(geom.Rect) geom.Rect) []cluster {
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(cs) && !merged; i++ {
			for j := i + 1; j < len(cs); j++ {
				if !join(cs[i], cs[j]) {
					continue
				}
				cs[i].content = union(cs[i].content, cs[j].content)
				if refit != nil {
					cs[i].crop = refit(cs[i].content)
				}
				cs = append(cs[:j], cs[j+1:]...)
				merged = true
				break
			}
		}
	}
	return cs
}

// fit returns the crop for content: the model's aspect ratio, at least the
// model's input size and the content, centred on the content, shifted to lie
// inside the frame and clipped to it when the frame is smaller. Edges are
// whole pixels and the crop always covers the content.
func fit(c geom.Rect, inW, inH, fw, fh float64) geom.Rect {
	aspect := inW / inH
	w := math.Max(math.Max(c.W, c.H*aspect), inW)
	h := w / aspect
	w, h = math.Min(math.Ceil(w), fw), math.Min(math.Ceil(h), fh)
	x := place(c.X, c.Right(), w, fw)
	y := place(c.Y, c.Bottom(), h, fh)
	return geom.Rect{X: x, Y: y, W: w, H: h}
}

// place returns the whole-pixel start of a span of length l centred on
// [lo,hi], kept inside [0,limit] and covering [lo,hi] where l allows.
func place(lo, hi, l, limit float64) float64 {
	x := math.Round((lo + hi - l) / 2)
	x = math.Min(x, math.Floor(lo))  // cover the start
	x = math.Max(x, math.Ceil(hi)-l) // cover the end
	return math.Max(0, math.Min(x, limit-l))
}

// union returns the smallest box holding a and b.
func union(a, b geom.Rect) geom.Rect {
	return geom.RectFromCorners(math.Min(a.X, b.X), math.Min(a.Y, b.Y),
		math.Max(a.Right(), b.Right()), math.Max(a.Bottom(), b.Bottom()))
}
