package infer

import (
	"cmp"
	"slices"
)

// Caps on work per image: candidates considered by NMS, and detections
// returned. Real scenes stay far below both; a bad threshold (0.01) on a
// big model must not make NMS quadratic in tens of thousands of boxes.
const (
	maxCandidates = 3000
	maxDetections = 300
)

// nms keeps the best-scoring candidates, dropping any box that overlaps a
// kept box of the same class by more than iou. It sorts and reorders c in
// place and returns the kept prefix.
func nms(c []candidate, iou float32) []candidate { return suppressOverlaps(c, iou, false) }

// suppressOverlaps is nms; agnostic compares boxes of any class, so one
// box keeps only its best class, as TF.js COCO-SSD's detect() does.
func suppressOverlaps(c []candidate, iou float32, agnostic bool) []candidate {
	slices.SortFunc(c, func(a, b candidate) int { return cmp.Compare(b.score, a.score) })
	if len(c) > maxCandidates {
		c = c[:maxCandidates]
	}
	kept := 0
	for i := range c {
		ok := true
		for j := range kept {
			if (agnostic || c[j].class == c[i].class) && c[j].box.IoU(c[i].box) > float64(iou) {
				ok = false
				break
			}
		}
		if ok {
			c[kept] = c[i]
			kept++
			if kept == maxDetections {
				break
			}
		}
	}
	return c[:kept]
}
