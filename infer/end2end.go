package infer

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/osprey-vision/osprey/geom"
)

// end2endMaxQueries bounds the detections an end-to-end output may hold:
// YOLOv10 and YOLO26 emit 300, anchor-based heads thousands.
const end2endMaxQueries = 1000

// end2endDecoder reads Ultralytics end-to-end exports (YOLOv10, YOLO26 with
// end2end=True): one output [N,Q,6] (Q is 300), each row x1,y1,x2,y2 in
// input pixels, score, class index; pose exports append the keypoints
// (metadata kpt_shape). The model has already picked one box per object,
// so no NMS runs unless Config.NMS asks for it.
type end2endDecoder struct{ kpts keypointLayout }

func (d *end2endDecoder) bind(outs []ort.InputOutputInfo, _, _ int) error {
	cols := int64(6 + d.kpts.width())
	want := "yolo-end2end expects one output [N,Q,6] (e.g. [1,300,6]): x1,y1,x2,y2,score,class"
	if d.kpts.n > 0 {
		want = fmt.Sprintf("yolo-end2end pose expects one output [N,Q,%d]: x1,y1,x2,y2,score,class and %d keypoints of %d values", cols, d.kpts.n, d.kpts.dim)
	}
	if len(outs) != 1 || len(outs[0].Dimensions) != 3 || !dimIs(outs[0].Dimensions[2], cols) {
		return fmt.Errorf("%s", want)
	}
	return nil
}

// classes is unknown: the class is a value, not a column.
func (d *end2endDecoder) classes() int { return 0 }

func (d *end2endDecoder) decode(outs []tensorView, b int, p *decodeParams, dst []candidate) []candidate {
	o := outs[0]
	q, n := int(o.shape[1]), int(o.shape[2])
	data := o.data[b*q*n : (b+1)*q*n]
	for i := range q {
		r := data[i*n : (i+1)*n]
		s, c := r[4], float64(r[5])
		if s < p.conf || math.IsNaN(c) || c < 0 || c > math.MaxInt32 {
			continue
		}
		cls := int(math.Round(c))
		if !p.wanted(cls) {
			continue
		}
		dst = append(dst, candidate{
			box:   geom.RectFromCorners(float64(r[0]), float64(r[1]), float64(r[2]), float64(r[3])),
			class: cls, score: s,
			kps: d.kpts.read(func(j int) float32 { return r[6+j] }),
		})
	}
	return dst
}

// suppress turns one image's candidates into its detections: NMS for the
// anchor-based formats, and for NMS-free formats (whose model already kept
// one box per object) only a sort by score, unless Config.NMS asks for NMS.
func (d *Detector) suppress(c []candidate) []candidate {
	if d.spec.nmsFree && !d.cfg.NMS {
		return bestFirst(c)
	}
	return suppressOverlaps(c, d.cfg.iou(), d.cfg.AgnosticNMS)
}

// bestFirst sorts candidates by score, best first, and keeps at most
// maxDetections.
func bestFirst(c []candidate) []candidate {
	slices.SortStableFunc(c, func(a, b candidate) int { return cmp.Compare(b.score, a.score) })
	return c[:min(len(c), maxDetections)]
}
