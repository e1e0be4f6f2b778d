package infer

import (
	"fmt"
	"math"
	"slices"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/osprey-vision/osprey/geom"
)

// BlazeFace keypoints, in the order the model emits them.
const blazefaceKeypoints = 6

// blazefaceDecoder decodes MediaPipe BlazeFace (front 128x128 or back
// 256x256): raw anchor scores (sigmoid applied here) and per-anchor
// box + 6 keypoint offsets, relative to anchors generated like MediaPipe's
// SsdAnchorsCalculator with fixed_anchor_size. For an input of side S the
// strides are S/16 (2 anchors per cell) then S/8 three times (merged into
// 6 anchors per cell): 128 -> 8,16,16,16 and 16x16x2 + 8x8x6 = 896 anchors.
//
// Outputs come either as one scores [N,896,1] and one boxes [N,896,16]
// tensor, or split per anchor group (the Barracuda export: [N,512,1],
// [N,384,1], [N,512,16], [N,384,16]); groups are joined largest first,
// which is MediaPipe's anchor order.
type blazefaceDecoder struct {
	scores, boxes []int // output indices in anchor order
	anchors       []geom.Point
	inW, inH      int
}

func (d *blazefaceDecoder) bind(outs []ort.InputOutputInfo, inW, inH int) error {
	const want = "blazeface expects scores [N,896,1] and boxes [N,896,16], whole or split per anchor group"
	d.inW, d.inH = inW, inH
	d.anchors = blazefaceAnchors(inW, inH)
	d.scores, d.boxes = d.scores[:0], d.boxes[:0]
	for i, o := range outs {
		s := o.Dimensions
		if len(s) != 3 || s[1] <= 0 {
			return fmt.Errorf("%s", want)
		}
		switch s[2] {
		case 1:
			d.scores = append(d.scores, i)
		case 4 + 2*blazefaceKeypoints:
			d.boxes = append(d.boxes, i)
		default:
			return fmt.Errorf("%s", want)
		}
	}
	byCount := func(a, b int) int { return int(outs[b].Dimensions[1] - outs[a].Dimensions[1]) }
	slices.SortStableFunc(d.scores, byCount)
	slices.SortStableFunc(d.boxes, byCount)
	if len(d.scores) == 0 || len(d.scores) != len(d.boxes) {
		return fmt.Errorf("%s", want)
	}
	total := 0
	for i := range d.scores {
		n := outs[d.scores[i]].Dimensions[1]
		if n != outs[d.boxes[i]].Dimensions[1] {
			return fmt.Errorf("%s", want)
		}
		total += int(n)
	}
	if total != len(d.anchors) {
		return fmt.Errorf("%s (anchors for a %dx%d input: %d, model: %d)", want, inW, inH, len(d.anchors), total)
	}
	return nil
}

// blazefaceAnchors returns anchor centres in normalised coordinates.
func blazefaceAnchors(inW, inH int) []geom.Point {
	var out []geom.Point
	for _, g := range []struct{ stride, perCell int }{{inW / 16, 2}, {inW / 8, 6}} {
		if g.stride == 0 {
			continue
		}
		fw, fh := (inW+g.stride-1)/g.stride, (inH+g.stride-1)/g.stride
		for y := range fh {
			for x := range fw {
				for range g.perCell {
					out = append(out, geom.Point{X: (float64(x) + 0.5) / float64(fw), Y: (float64(y) + 0.5) / float64(fh)})
				}
			}
		}
	}
	return out
}

func (d *blazefaceDecoder) classes() int { return 1 }

func (d *blazefaceDecoder) decode(outs []tensorView, b int, p *decodeParams, dst []candidate) []candidate {
	if !p.wanted(0) {
		return dst
	}
	w, h := float64(d.inW), float64(d.inH)
	const n = 4 + 2*blazefaceKeypoints
	base := 0
	for g := range d.scores {
		sc, bx := outs[d.scores[g]], outs[d.boxes[g]]
		count := int(sc.shape[1])
		scores := sc.data[b*count : (b+1)*count]
		boxes := bx.data[b*count*n : (b+1)*count*n]
		for i, raw := range scores {
			// MediaPipe clips raw scores to +-100 before the sigmoid.
			s := float32(1 / (1 + math.Exp(-math.Max(-100, math.Min(100, float64(raw))))))
			if s < p.conf {
				continue
			}
			a := d.anchors[base+i]
			r := boxes[i*n : (i+1)*n]
			// Offsets are in input pixels relative to the anchor centre.
			cx, cy := a.X*w+float64(r[0]), a.Y*h+float64(r[1])
			bw, bh := float64(r[2]), float64(r[3])
			kps := make([]geom.Point, blazefaceKeypoints)
			for k := range kps {
				kps[k] = geom.Point{X: a.X*w + float64(r[4+2*k]), Y: a.Y*h + float64(r[5+2*k])}
			}
			dst = append(dst, candidate{
				box:   geom.Rect{X: cx - bw/2, Y: cy - bh/2, W: bw, H: bh},
				class: 0, score: s, kps: kps,
			})
		}
		base += count
	}
	return dst
}
