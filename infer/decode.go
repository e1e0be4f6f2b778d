package infer

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/osprey-vision/osprey/geom"
)

// candidate is one decoded box before NMS, in model-input pixels.
type candidate struct {
	box   geom.Rect
	class int
	score float32
	kps   []geom.Point
}

// tensorView is one output of one Run: the whole batch's data and its shape.
type tensorView struct {
	data  []float32
	shape []int64
}

// decodeParams are the per-Detector settings decoders filter with.
type decodeParams struct {
	conf float32
	// keep[c] says whether class c is wanted; nil keeps every class.
	keep []bool
	// kept lists the wanted classes in increasing order (nil: every
	// class), for decoders that can score only those.
	kept []int
	// inW, inH are the model input size in pixels.
	inW, inH int
}

func (p *decodeParams) wanted(c int) bool {
	return p.keep == nil || (c < len(p.keep) && p.keep[c])
}

// decoder turns a format's raw outputs into candidates.
type decoder interface {
	// bind checks the model's declared outputs (dynamic dims are -1) and
	// remembers which output is which. Its error says what the format
	// expects.
	bind(outs []ort.InputOutputInfo, inW, inH int) error
	// classes returns the number of classes the model scores (0 = unknown).
	classes() int
	// decode appends image b's candidates scoring at least p.conf.
	decode(outs []tensorView, b int, p *decodeParams, dst []candidate) []candidate
}

// shapeString writes dims as [N,84,8400], with "?" for dynamic dims.
func shapeString(dims []int64) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, d := range dims {
		if i > 0 {
			sb.WriteByte(',')
		}
		if d < 0 {
			sb.WriteByte('?')
		} else {
			sb.WriteString(strconv.FormatInt(d, 10))
		}
	}
	sb.WriteByte(']')
	return sb.String()
}

// outputsString lists a model's outputs for error messages.
func outputsString(outs []ort.InputOutputInfo) string {
	parts := make([]string, len(outs))
	for i, o := range outs {
		parts[i] = fmt.Sprintf("%s %s", o.Name, shapeString(o.Dimensions))
	}
	return strings.Join(parts, ", ")
}

// argmax returns the best of n scores read at base+i*stride.
func argmax(data []float32, base, stride, n int) (int, float32) {
	best, bestScore := 0, float32(math.Inf(-1))
	for i := range n {
		if s := data[base+i*stride]; s > bestScore {
			best, bestScore = i, s
		}
	}
	return best, bestScore
}

// cxcywh makes a box from its centre and size.
func cxcywh(cx, cy, w, h float32) geom.Rect {
	return geom.Rect{X: float64(cx - w/2), Y: float64(cy - h/2), W: float64(w), H: float64(h)}
}

// dimIs reports whether a declared dim is fixed and equal to want.
func dimIs(d int64, want int64) bool { return d == want }

// ssdDecoder reads TensorFlow-style SSD outputs: per-class scores [N,A,C]
// (sigmoid applied, background column removed) and decoded boxes
// [N,A,1,4] or [N,A,4] as normalised ymin,xmin,ymax,xmax.
type ssdDecoder struct {
	scores, boxes int
	nClasses      int
}

func (d *ssdDecoder) bind(outs []ort.InputOutputInfo, _, _ int) error {
	const want = "ssd expects two outputs: scores [N,A,C] and boxes [N,A,1,4] or [N,A,4]"
	if len(outs) != 2 {
		return fmt.Errorf("%s", want)
	}
	isBoxes := func(o ort.InputOutputInfo) bool {
		s := o.Dimensions
		return (len(s) == 4 && dimIs(s[2], 1) && dimIs(s[3], 4)) ||
			(len(s) == 3 && dimIs(s[2], 4) && strings.Contains(strings.ToLower(o.Name), "box"))
	}
	switch {
	case isBoxes(outs[1]) && !isBoxes(outs[0]):
		d.scores, d.boxes = 0, 1
	case isBoxes(outs[0]) && !isBoxes(outs[1]):
		d.scores, d.boxes = 1, 0
	default:
		return fmt.Errorf("%s", want)
	}
	sc, bx := outs[d.scores].Dimensions, outs[d.boxes].Dimensions
	if len(sc) != 3 || sc[2] < 1 || (sc[1] > 0 && bx[1] > 0 && sc[1] != bx[1]) {
		return fmt.Errorf("%s", want)
	}
	d.nClasses = int(sc[2])
	return nil
}

func (d *ssdDecoder) classes() int { return d.nClasses }

func (d *ssdDecoder) decode(outs []tensorView, b int, p *decodeParams, dst []candidate) []candidate {
	sc, bx := outs[d.scores], outs[d.boxes]
	a, c := int(sc.shape[1]), int(sc.shape[2])
	scores := sc.data[b*a*c : (b+1)*a*c]
	boxes := bx.data[b*a*4 : (b+1)*a*4]
	w, h := float32(p.inW), float32(p.inH)
	add := func(i, cls int, s float32) {
		ymin, xmin, ymax, xmax := boxes[i*4], boxes[i*4+1], boxes[i*4+2], boxes[i*4+3]
		dst = append(dst, candidate{
			box:   geom.RectFromCorners(float64(xmin*w), float64(ymin*h), float64(xmax*w), float64(ymax*h)),
			class: cls, score: s,
		})
	}
	for i := range a {
		row := scores[i*c : (i+1)*c]
		if p.kept != nil { // only the wanted classes' scores (the demo: 3 of 91)
			for _, cls := range p.kept {
				if cls < c && row[cls] >= p.conf {
					add(i, cls, row[cls])
				}
			}
			continue
		}
		for cls, s := range row {
			if s >= p.conf {
				add(i, cls, s)
			}
		}
	}
	return dst
}

// yolov8Decoder reads Ultralytics YOLOv8/v11 exports: [N,4+C,A], rows
// cx,cy,w,h in input pixels then C class scores; no objectness. Pose
// exports (metadata task pose, kpt_shape [K,D]) append K keypoints of D
// values (x, y in input pixels, then visibility when D is 3).
type yolov8Decoder struct {
	nClasses int
	kpts     keypointLayout
}

// keypointLayout is the keypoint block of a pose export's rows.
type keypointLayout struct {
	// n keypoints of dim values each (2: x,y; 3: x,y,visibility).
	n, dim int
}

// width is the number of values the keypoints take per row.
func (k keypointLayout) width() int { return k.n * k.dim }

// read returns the n keypoints whose values start at at(0), at(1), ...
func (k keypointLayout) read(at func(j int) float32) []geom.Point {
	if k.n == 0 {
		return nil
	}
	out := make([]geom.Point, k.n)
	for i := range out {
		out[i] = geom.Point{X: float64(at(i * k.dim)), Y: float64(at(i*k.dim + 1))}
	}
	return out
}

func (d *yolov8Decoder) bind(outs []ort.InputOutputInfo, _, _ int) error {
	want := "yolov8 expects one output [N,4+C,A] (e.g. [1,84,8400]) with 4+C < A"
	if d.kpts.n > 0 {
		want = fmt.Sprintf("yolov8 pose expects one output [N,4+C+%d,A] (%d keypoints of %d values) with 4+C+%d < A", d.kpts.width(), d.kpts.n, d.kpts.dim, d.kpts.width())
	}
	if len(outs) != 1 || len(outs[0].Dimensions) != 3 {
		return fmt.Errorf("%s", want)
	}
	s := outs[0].Dimensions
	if s[1] < int64(5+d.kpts.width()) || (s[2] > 0 && s[1] >= s[2]) {
		return fmt.Errorf("%s", want)
	}
	d.nClasses = int(s[1]) - 4 - d.kpts.width()
	return nil
}

func (d *yolov8Decoder) classes() int { return d.nClasses }

func (d *yolov8Decoder) decode(outs []tensorView, b int, p *decodeParams, dst []candidate) []candidate {
	o := outs[0]
	rows, a := int(o.shape[1]), int(o.shape[2])
	data := o.data[b*rows*a : (b+1)*rows*a]
	nc := rows - 4 - d.kpts.width()
	for i := range a {
		cls, s := argmax(data, 4*a+i, a, nc)
		if s < p.conf || !p.wanted(cls) {
			continue
		}
		kps := d.kpts.read(func(j int) float32 { return data[(4+nc+j)*a+i] })
		dst = append(dst, candidate{box: cxcywh(data[i], data[a+i], data[2*a+i], data[3*a+i]), class: cls, score: s, kps: kps})
	}
	return dst
}

// yolov5Decoder reads YOLOv5 exports: [N,A,5+C], each row cx,cy,w,h in
// input pixels, objectness, C class scores; score = objectness*class.
type yolov5Decoder struct{ nClasses int }

// bindRows checks a [N,A,5+C] output.
func bindRows(outs []ort.InputOutputInfo, want string) (int, error) {
	if len(outs) != 1 || len(outs[0].Dimensions) != 3 {
		return 0, fmt.Errorf("%s", want)
	}
	s := outs[0].Dimensions
	if s[2] < 6 || (s[1] > 0 && s[2] >= s[1]) {
		return 0, fmt.Errorf("%s", want)
	}
	return int(s[2] - 5), nil
}

func (d *yolov5Decoder) bind(outs []ort.InputOutputInfo, _, _ int) error {
	n, err := bindRows(outs, "yolov5 expects one output [N,A,5+C] (e.g. [1,25200,85])")
	d.nClasses = n
	return err
}

func (d *yolov5Decoder) classes() int { return d.nClasses }

func (d *yolov5Decoder) decode(outs []tensorView, b int, p *decodeParams, dst []candidate) []candidate {
	return decodeRows(outs[0], b, p, dst, nil)
}

// decodeRows decodes [N,A,5+C]; box, when non-nil, turns raw row values
// into a box (YOLOX's grid decode).
func decodeRows(o tensorView, b int, p *decodeParams, dst []candidate, box func(i int, row []float32) geom.Rect) []candidate {
	a, n := int(o.shape[1]), int(o.shape[2])
	data := o.data[b*a*n : (b+1)*a*n]
	for i := range a {
		row := data[i*n : (i+1)*n]
		obj := row[4]
		if obj < p.conf {
			continue // obj*cls <= obj, so nothing in this row can pass
		}
		cls, s := argmax(row, 5, 1, n-5)
		s *= obj
		if s < p.conf || !p.wanted(cls) {
			continue
		}
		var r geom.Rect
		if box != nil {
			r = box(i, row)
		} else {
			r = cxcywh(row[0], row[1], row[2], row[3])
		}
		dst = append(dst, candidate{box: r, class: cls, score: s})
	}
	return dst
}

// yoloxDecoder reads YOLOX exports: [N,A,5+C] like YOLOv5, objectness and
// class scores after sigmoid. YOLOX's own ONNX export leaves boxes raw
// (offsets within a grid cell and log sizes, strides 8/16/32); exports made
// with decode_in_inference hold input pixels. Raw is recognised per image:
// the anchor count matches the stride grids and no width/height exceeds
// rawLimit (exp(16) cells is no real box; a decoded box that small
// everywhere is no real image).
type yoloxDecoder struct {
	nClasses int
	// grid holds each anchor's cell x, y and stride, for the raw decode.
	grid []float32
}

const yoloxRawLimit = 16

func (d *yoloxDecoder) bind(outs []ort.InputOutputInfo, inW, inH int) error {
	n, err := bindRows(outs, "yolox expects one output [N,A,5+C] (e.g. [1,8400,85])")
	if err != nil {
		return err
	}
	d.nClasses = n
	d.grid = d.grid[:0]
	for _, s := range []int{8, 16, 32} {
		for y := range inH / s {
			for x := range inW / s {
				d.grid = append(d.grid, float32(x), float32(y), float32(s))
			}
		}
	}
	return nil
}

func (d *yoloxDecoder) classes() int { return d.nClasses }

func (d *yoloxDecoder) decode(outs []tensorView, b int, p *decodeParams, dst []candidate) []candidate {
	o := outs[0]
	if !d.raw(o, b) {
		return decodeRows(o, b, p, dst, nil)
	}
	return decodeRows(o, b, p, dst, func(i int, row []float32) geom.Rect {
		gx, gy, s := d.grid[3*i], d.grid[3*i+1], d.grid[3*i+2]
		w := float32(math.Exp(float64(row[2]))) * s
		h := float32(math.Exp(float64(row[3]))) * s
		return cxcywh((row[0]+gx)*s, (row[1]+gy)*s, w, h)
	})
}

// raw reports whether image b's boxes still need the grid decode.
func (d *yoloxDecoder) raw(o tensorView, b int) bool {
	a, n := int(o.shape[1]), int(o.shape[2])
	if 3*a != len(d.grid) {
		return false
	}
	data := o.data[b*a*n : (b+1)*a*n]
	for i := range a {
		if data[i*n+2] > yoloxRawLimit || data[i*n+3] > yoloxRawLimit {
			return false
		}
	}
	return true
}
