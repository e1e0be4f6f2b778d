package region

import (
	"sort"

	"github.com/osprey-vision/osprey/geom"
)

// Found is one detection the detector reported for one region.
type Found struct {
	// Region indexes the regions slice given to Merge.
	Region int
	// Box is in the region's own pixels: (0,0) is the region's top-left
	// corner, at frame scale (the caller has undone the model's resize).
	Box geom.Rect
	// Class is the detector's class id; only same-class boxes de-duplicate.
	Class int
	// Score is the detector's confidence.
	Score float64
}

// Kept is one object Merge keeps.
type Kept struct {
	// Index is the position in the input of the detection this object
	// comes from (the highest-scoring one when pieces were joined), so the
	// caller can recover its own label, keypoints and so on.
	Index int
	// Box is the object's box in frame pixels.
	Box geom.Rect
	// Joined is set when Box is the union of pieces that region edges cut.
	Joined bool
}

// MergeOptions tunes Merge; DefaultMergeOptions gives the values the
// pipeline uses.
type MergeOptions struct {
	// EdgeTolerance is how close, in frame pixels, a box must come to a
	// region edge inside the frame to count as cut by it.
	EdgeTolerance float64
	// IoU at or above which two same-class boxes from different regions are
	// one object.
	IoU float64
	// Containment: the share of the smaller box inside the larger at or
	// above which two same-class boxes from different regions are one
	// object (a cut piece inside the whole).
	Containment float64
}

// DefaultMergeOptions returns the merge tuning the pipeline uses.
func DefaultMergeOptions() MergeOptions {
	return MergeOptions{EdgeTolerance: 2, IoU: 0.5, Containment: 0.7}
}

// ToFrame maps a box from a region's pixels to frame pixels.
func ToFrame(region, box geom.Rect) geom.Rect {
	return geom.Rect{X: box.X + region.X, Y: box.Y + region.Y, W: box.W, H: box.H}
}

// cand is a detection during merging.
type cand struct {
	idx, region, class int
	score              float64
	box                geom.Rect
	cut, joined, dead  bool
}

// Merge maps detections from region coordinates to frame coordinates and
// removes the duplicates that overlapping or adjacent regions produce, so an
// object cut by a region edge does not become two objects:
//
//  1. A box touching a region edge that lies inside the frame (an inner
//     edge) is cut. A cut box is dropped when a box of the same class from
//     another region, not cut itself, holds it (Containment).
//  2. Cut boxes of the same class from different regions that touch or
//     overlap are pieces of one object and are joined into their union.
//  3. Greedy NMS by score across regions: a box is dropped when a
//     higher-scoring same-class box from a different region overlaps it by
//     IoU or Containment. Boxes of one region are left to the detector's own
//     NMS, so a child in front of an adult in one crop stays two objects.
//
// Detections naming a region outside regions are ignored. The result is
// sorted by score, highest first.
func Merge(regions []geom.Rect, frameW, frameH float64, found []Found, opt MergeOptions) []Kept {
	cs := make([]cand, 0, len(found))
	for i, f := range found {
		if f.Region < 0 || f.Region >= len(regions) {
			continue
		}
		r := regions[f.Region]
		b := ToFrame(r, f.Box).Intersect(r)
		if b.Area() == 0 {
			continue
		}
		cs = append(cs, cand{idx: i, region: f.Region, class: f.Class, score: f.Score, box: b,
			cut: cutByInnerEdge(b, r, frameW, frameH, opt.EdgeTolerance)})
	}
	// 1. Drop cut pieces another region saw whole.
	for i := range cs {
		if !cs[i].cut {
			continue
		}
		for j := range cs {
			if j != i && !cs[j].cut && cs[j].region != cs[i].region && cs[j].class == cs[i].class &&
				containment(cs[i].box, cs[j].box) >= opt.Containment {
				cs[i].dead = true
				break
			}
		}
	}
	// 2. Join the remaining cut pieces that meet across regions.
	for joined := true; joined; {
		joined = false
		for i := range cs {
			if cs[i].dead || !cs[i].cut {
				continue
			}
			for j := range cs {
				if j == i || cs[j].dead || !cs[j].cut || cs[j].region == cs[i].region || cs[j].class != cs[i].class {
					continue
				}
				if grow(cs[i].box, opt.EdgeTolerance).Intersect(cs[j].box).Area() == 0 {
					continue
				}
				keep, drop := i, j
				if cs[j].score > cs[i].score {
					keep, drop = j, i
				}
				cs[keep].box = union(cs[i].box, cs[j].box)
				cs[keep].joined = true
				cs[drop].dead = true
				joined = true
				break
			}
		}
	}
	// 3. Cross-region NMS.
	live := cs[:0]
	for _, c := range cs {
		if !c.dead {
			live = append(live, c)
		}
	}
	sort.SliceStable(live, func(i, j int) bool { return live[i].score > live[j].score })
	out := make([]Kept, 0, len(live))
	for i := range live {
		if live[i].dead {
			continue
		}
		out = append(out, Kept{Index: live[i].idx, Box: live[i].box, Joined: live[i].joined})
		for j := i + 1; j < len(live); j++ {
			if live[j].dead || live[j].class != live[i].class || live[j].region == live[i].region {
				continue
			}
			if live[i].box.IoU(live[j].box) >= opt.IoU || containment(live[j].box, live[i].box) >= opt.Containment ||
				containment(live[i].box, live[j].box) >= opt.Containment {
				live[j].dead = true
			}
		}
	}
	return out
}

// cutByInnerEdge reports whether b touches an edge of region r that lies
// inside the frame (an edge on the frame border cuts nothing).
func cutByInnerEdge(b, r geom.Rect, fw, fh, tol float64) bool {
	return (r.X > tol && b.X <= r.X+tol) ||
		(r.Y > tol && b.Y <= r.Y+tol) ||
		(r.Right() < fw-tol && b.Right() >= r.Right()-tol) ||
		(r.Bottom() < fh-tol && b.Bottom() >= r.Bottom()-tol)
}

// containment returns the share of a's area that lies inside b.
func containment(a, b geom.Rect) float64 {
	if a.Area() == 0 {
		return 0
	}
	return a.Intersect(b).Area() / a.Area()
}

// grow returns b with every side moved out by d.
func grow(b geom.Rect, d float64) geom.Rect {
	return geom.Rect{X: b.X - d, Y: b.Y - d, W: b.W + 2*d, H: b.H + 2*d}
}
