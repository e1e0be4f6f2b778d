package infer

import (
	"math"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
)

// DETR queries in normalised cx,cy,w,h; in a 640x480 frame stretched to
// 320x320 (x*2, y*1.5) they land on box1..box3 below.
var (
	detrQ1 = [4]float32{0.5, 0.5, 0.25, 0.5}
	detrQ2 = [4]float32{0.25, 0.75, 0.1, 0.2}
	detrQ3 = [4]float32{0.52, 0.5, 0.25, 0.5} // overlaps Q1
	box1   = geom.Rect{X: 240, Y: 120, W: 160, H: 240}
	box2   = geom.Rect{X: 128, Y: 312, W: 64, H: 96}
	box3   = geom.Rect{X: 252.8, Y: 120, W: 160, H: 240}
)

// detrBoxes lays out q queries' boxes, the first ones from qs, the rest
// zero; xyxy converts them from cx,cy,w,h.
func detrBoxes(q int, xyxy bool, qs ...[4]float32) []float32 {
	out := make([]float32, q*4)
	for i, b := range qs {
		if xyxy {
			b = [4]float32{b[0] - b[2]/2, b[1] - b[3]/2, b[0] + b[2]/2, b[1] + b[3]/2}
		}
		copy(out[i*4:], b[:])
	}
	return out
}

// detrLogits returns a q x c matrix filled with fill, then sets
// set[i] = {query, column, value}.
func detrLogits(q, c int, fill float32, set ...[3]float32) []float32 {
	out := make([]float32, q*c)
	for i := range out {
		out[i] = fill
	}
	for _, s := range set {
		out[int(s[0])*c+int(s[1])] = s[2]
	}
	return out
}

func ln(x float64) float32 { return float32(math.Log(x)) }

func TestDETRPlanted(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	image := []int64{1, 3, 320, 320}
	out := func(name string, dims []int64, data []float32) plantedOut {
		return plantedOut{planted: planted{name, dims, data}}
	}
	// Sigmoid logits: ln 9 -> 0.9, ln 4 -> 0.8, ln 3 -> 0.75; -10 is nothing.
	rtdetr := []plantedOut{
		out("pred_logits", []int64{300, 80}, detrLogits(300, 80, -10, [3]float32{0, 0, ln(9)}, [3]float32{1, 2, ln(3)}, [3]float32{2, 0, ln(4)})),
		out("pred_boxes", []int64{300, 4}, detrBoxes(300, false, detrQ1, detrQ2, detrQ3)),
	}
	sigmoidWant := []want{{"person", 0.9, box1}, {"person", 0.8, box3}, {"car", 0.75, box2}}
	// Letterbox of 640x480 into 320x320: scale 0.5, 40 px bars top and
	// bottom; Q1 and Q2 as xyxy land here.
	lbox1 := geom.Rect{X: 240, Y: 80, W: 160, H: 320}
	lbox2 := geom.Rect{X: 128, Y: 336, W: 64, H: 128}
	labels := make([]float32, 300)
	labels[1] = 2
	scores := make([]float32, 300)
	scores[0], scores[1] = 0.9, 0.75
	post := func(sizesFloat bool) plantSpec {
		ps := plantSpec{input: image, sizes: 7, outs: []plantedOut{
			{planted: planted{"labels", []int64{300}, labels}, int64: true},
			{planted: planted{"boxes", []int64{300, 4}, detrBoxes(300, true, detrQ1, detrQ2)}, bySizes: true},
			out("scores", []int64{300}, scores),
		}}
		if sizesFloat {
			ps.sizes = 1
		}
		return ps
	}
	pixels := detrBoxes(300, false, detrQ1, detrQ2, detrQ3)
	for i := range pixels {
		pixels[i] *= 320
	}
	tests := []struct {
		name   string
		model  plantSpec
		cfg    Config
		reason string
		want   []want
	}{
		{"RT-DETR/D-FINE/DEIM raw: sigmoid, cxcywh, no NMS", plantSpec{input: image, outs: rtdetr}, Config{},
			"boxes [N,Q,4] and logits [N,Q,80]; scores sigmoid, background none, boxes cxcywh normalised", sigmoidWant},
		{"forced detr", plantSpec{input: image, outs: rtdetr}, Config{Format: "detr"},
			"model.format detr: boxes [N,Q,4]", sigmoidWant},
		{"NMS asked for", plantSpec{input: image, outs: rtdetr}, Config{NMS: true},
			"logits [N,Q,80]", []want{{"person", 0.9, box1}, {"car", 0.75, box2}}},
		{"class filter", plantSpec{input: image, outs: rtdetr}, Config{Classes: []string{"car"}},
			"logits [N,Q,80]", []want{{"car", 0.75, box2}}},
		{"xyxy boxes", plantSpec{input: image, outs: []plantedOut{rtdetr[0], out("pred_boxes", []int64{300, 4}, detrBoxes(300, true, detrQ1, detrQ2, detrQ3))}},
			Config{DETR: DETROptions{Boxes: "xyxy"}}, "boxes xyxy normalised", sigmoidWant},
		{"already-scaled boxes in input pixels", plantSpec{input: image, outs: []plantedOut{rtdetr[0], out("pred_boxes", []int64{300, 4}, pixels)}},
			Config{DETR: DETROptions{Units: "pixels"}}, "boxes cxcywh pixels", sigmoidWant},
		{"DETR: softmax with no-object last", plantSpec{input: image, outs: []plantedOut{
			// 8/(8+1) = 0.8889 person (COCO id 1); 3/(3+1) car (id 3); no-object wins the third.
			out("logits", []int64{100, 92}, detrLogits(100, 92, -100, [3]float32{0, 1, ln(8)}, [3]float32{0, 91, 0},
				[3]float32{1, 3, ln(3)}, [3]float32{1, 91, 0}, [3]float32{2, 91, ln(9)}, [3]float32{2, 1, 0})),
			out("pred_boxes", []int64{100, 4}, detrBoxes(100, false, detrQ1, detrQ2, detrQ1)),
		}}, Config{}, "softmax with a no-object column last (DETR); scores softmax, background last",
			[]want{{"person", 8.0 / 9, box1}, {"car", 0.75, box2}}},
		{"RF-DETR: dets/labels, 91 COCO ids, id 0 unused", plantSpec{input: image, outs: []plantedOut{
			out("dets", []int64{300, 4}, detrBoxes(300, false, detrQ1, detrQ2, detrQ3)),
			out("labels", []int64{300, 91}, detrLogits(300, 91, -10, [3]float32{0, 1, ln(9)}, [3]float32{1, 3, ln(3)}, [3]float32{2, 0, 10})),
		}}, Config{}, "COCO category ids with id 0 unused, named dets/labels (RF-DETR: ImageNet mean/std input, column 0 unused); scores sigmoid, background first",
			[]want{{"person", 0.9, box1}, {"car", 0.75, box2}}},
		{"Ultralytics RT-DETR: one [N,Q,4+C], metadata names", plantSpec{input: image, meta: ultralyticsMeta(sixNames, 320), outs: []plantedOut{
			out("output0", []int64{300, 10}, func() []float32 {
				rows := make([]float32, 300*10)
				copy(rows[0:], append(detrQ1[:], 0.9, 0, 0, 0, 0, 0.1))
				copy(rows[10:], append(detrQ2[:], 0, 0, 0, 0, 0, 0.75))
				return rows
			}()),
		}}, Config{}, "one [N,Q,4+C] output, C=6, scores already probabilities (Ultralytics RT-DETR); scores none",
			[]want{{"walker", 0.9, box1}, {"bus", 0.75, box2}}},
		{"postprocessed with int64 orig_target_sizes, letterbox", post(false), Config{Resize: ResizeLetterbox},
			"postprocessed labels, boxes, scores (RT-DETR, D-FINE, DEIM deploy export) with an orig_target_sizes input, fed the model-input size; scores none, background none, boxes xyxy pixels",
			[]want{{"person", 0.9, lbox1}, {"car", 0.75, lbox2}}},
		{"postprocessed with float orig_target_sizes, stretch", post(true), Config{},
			"with an orig_target_sizes input", []want{{"person", 0.9, box1}, {"car", 0.75, box2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Path = plant(t, tc.model)
			d := openTest(t, tc.cfg)
			if d.Format() != "detr" || !strings.Contains(d.FormatReason(), tc.reason) {
				t.Fatalf("format %q, reason %q; want detr and %q", d.Format(), d.FormatReason(), tc.reason)
			}
			// Two frames in one Run check per-image indexing (and the sizes
			// input's batch).
			got := detectAll(t, d, [2]int{640, 480}, [2]int{640, 480})
			checkDets(t, got[0], tc.want)
			checkDets(t, got[1], tc.want)
		})
	}
}

// RF-DETR normalises its input with the ImageNet mean and std; the others
// only scale to 0..1.
func TestDETRNormalisation(t *testing.T) {
	requireRuntime(t)
	rf := plantSpec{input: []int64{1, 3, 64, 64}, outs: []plantedOut{
		{planted: planted{"dets", []int64{10, 4}, make([]float32, 40)}},
		{planted: planted{"labels", []int64{10, 91}, make([]float32, 910)}},
	}}
	plain := plantSpec{input: []int64{1, 3, 64, 64}, outs: []plantedOut{
		{planted: planted{"pred_boxes", []int64{10, 4}, make([]float32, 40)}},
		{planted: planted{"pred_logits", []int64{10, 80}, make([]float32, 800)}},
	}}
	v := float32(128) / 255
	for _, tc := range []struct {
		name  string
		model plantSpec
		cfg   Config
		want  [3]float32 // R, G, B of a grey pixel
	}{
		{"RF-DETR", rf, Config{}, [3]float32{(v - 0.485) / 0.229, (v - 0.456) / 0.224, (v - 0.406) / 0.225}},
		{"RT-DETR", plain, Config{}, [3]float32{v, v, v}},
		{"forced imagenet", plain, Config{DETR: DETROptions{Normalize: "imagenet"}}, [3]float32{(v - 0.485) / 0.229, (v - 0.456) / 0.224, (v - 0.406) / 0.225}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Path = plant(t, tc.model)
			d := openTest(t, tc.cfg)
			in := d.NewInputPool().Get()
			defer in.Release()
			if err := d.Preprocess(grey(t, 64, 64), in); err != nil {
				t.Fatal(err)
			}
			plane := 64 * 64
			for c := range 3 {
				if g := in.Data[c*plane+100]; math.Abs(float64(g-tc.want[c])) > 1e-5 {
					t.Errorf("channel %d = %g, want %g", c, g, tc.want[c])
				}
			}
		})
	}
}

// Outputs whose query counts disagree are refused at Open when the
// model declares them, and decode nothing when they only disagree at run
// time (a dynamic Q), instead of reading out of range.
func TestDETRQueryMismatch(t *testing.T) {
	requireRuntime(t)
	model := plant(t, plantSpec{input: []int64{1, 3, 64, 64}, outs: []plantedOut{
		{planted: planted{"pred_logits", []int64{5, 80}, detrLogits(5, 80, 10)}},
		{planted: planted{"pred_boxes", []int64{6, 4}, detrBoxes(6, false, detrQ1)}},
	}})
	_, err := Open(Config{Path: model, Format: "detr"}, quietLog)
	if err == nil || !strings.Contains(err.Error(), "does not fit format detr: detr expects boxes [N,Q,4] with logits [N,Q,C], or one [N,Q,4+C], or labels [N,Q], boxes [N,Q,4] and scores [N,Q]; the outputs disagree on the query count Q") {
		t.Errorf("Open: %v", err)
	}
	dec := &detrDecoder{}
	if err := dec.bind([]ort.InputOutputInfo{
		{Name: "pred_logits", Dimensions: ort.NewShape(-1, -1, 80)},
		{Name: "pred_boxes", Dimensions: ort.NewShape(-1, -1, 4)},
	}, 64, 64); err != nil {
		t.Fatal(err)
	}
	outs := []tensorView{
		{data: detrLogits(5, 80, 10), shape: []int64{1, 5, 80}},
		{data: detrBoxes(6, false, detrQ1), shape: []int64{1, 6, 4}},
	}
	p := &decodeParams{conf: 0.5, inW: 64, inH: 64}
	if got := dec.decode(outs, 0, p, nil); len(got) != 0 {
		t.Errorf("mismatched run decoded %v", got)
	}
	outs[1] = tensorView{data: detrBoxes(5, false, detrQ1), shape: []int64{1, 5, 4}}
	if got := dec.decode(outs, 0, p, nil); len(got) != 5 {
		t.Errorf("matching run decoded %d, want 5", len(got))
	}
}

func TestDETROptionsValidate(t *testing.T) {
	c := Config{Path: "m.onnx", DETR: DETROptions{Scores: "relu", Units: "inches"}}
	err := c.Validate()
	want := "infer: model.detr.scores \"relu\" is unknown: use sigmoid, softmax, none (or leave it empty to infer it from the outputs)\n" +
		"infer: model.detr.units \"inches\" is unknown: use normalised, pixels (or leave it empty to infer it from the outputs)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// RF-DETR fine-tuned on its own dataset keeps column 0 unused, whatever
// the class count; the original DETR is ImageNet-normalised.
func TestDETRVariantDefaults(t *testing.T) {
	for _, tc := range []struct {
		outs []ort.InputOutputInfo
		want DETROptions
	}{
		{[]ort.InputOutputInfo{{Name: "dets", Dimensions: ort.NewShape(1, 300, 4)}, {Name: "labels", Dimensions: ort.NewShape(1, 300, 4)}},
			DETROptions{Scores: "sigmoid", Background: "first", Boxes: "cxcywh", Units: "normalised", Normalize: "imagenet"}},
		{[]ort.InputOutputInfo{{Name: "dets", Dimensions: ort.NewShape(1, 300, 4)}, {Name: "labels", Dimensions: ort.NewShape(1, 300, 6)}},
			DETROptions{Scores: "sigmoid", Background: "first", Boxes: "cxcywh", Units: "normalised", Normalize: "imagenet"}},
		{[]ort.InputOutputInfo{{Name: "logits", Dimensions: ort.NewShape(-1, 100, 92)}, {Name: "pred_boxes", Dimensions: ort.NewShape(-1, 100, 4)}},
			DETROptions{Scores: "softmax", Background: "last", Boxes: "cxcywh", Units: "normalised", Normalize: "imagenet"}},
		{[]ort.InputOutputInfo{{Name: "logits", Dimensions: ort.NewShape(-1, 300, 80)}, {Name: "pred_boxes", Dimensions: ort.NewShape(-1, 300, 4)}},
			DETROptions{Scores: "sigmoid", Background: "none", Boxes: "cxcywh", Units: "normalised", Normalize: "none"}},
	} {
		d := &detrDecoder{}
		if err := d.bind(tc.outs, 640, 640); err != nil {
			t.Fatal(err)
		}
		if d.opts != tc.want {
			t.Errorf("%s %v: %+v, want %+v", tc.outs[1].Name, tc.outs[1].Dimensions, d.opts, tc.want)
		}
	}
}
