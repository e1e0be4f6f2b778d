package infer

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/osprey-vision/osprey/geom"
)

// DETROptions describe a DETR-family model's outputs where their names and
// shapes leave it open. An empty field is inferred from the outputs (see
// detrDecoder) and otherwise takes the default named below.
type DETROptions struct {
	// Scores is how class scores become probabilities: "sigmoid" (RT-DETR,
	// D-FINE, DEIM, RF-DETR: the default for raw logits), "softmax" (the
	// original DETR) or "none" (already probabilities).
	Scores string `yaml:"scores"`
	// Background names the class column that means "no object" and is
	// never reported: "none" (default), "first" or "last".
	Background string `yaml:"background"`
	// Boxes is the box encoding: "cxcywh" (default) or "xyxy".
	Boxes string `yaml:"boxes"`
	// Units is "normalised" (0..1 of the input; the default) or "pixels"
	// (model-input pixels, as boxes scaled by an orig_target_sizes input
	// are here: the detector feeds the input size).
	Units string `yaml:"units"`
	// Normalize is the input normalisation after scaling to 0..1: "none"
	// (RT-DETR, D-FINE, DEIM, Ultralytics) or "imagenet" (mean 0.485,
	// 0.456, 0.406 and std 0.229, 0.224, 0.225: RF-DETR, the original
	// DETR). Default: imagenet for outputs named dets and labels (RF-DETR)
	// and for softmax DETR's 92 or 81 columns, else none.
	Normalize string `yaml:"normalize"`
}

// Accepted DETROptions values, for Validate.
var detrChoices = map[string][]string{
	"scores":     {"sigmoid", "softmax", "none"},
	"background": {"none", "first", "last"},
	"boxes":      {"cxcywh", "xyxy"},
	"units":      {"normalised", "pixels"},
	"normalize":  {"none", "imagenet"},
}

// validate reports every unknown value, in a stable order.
func (o *DETROptions) validate() error {
	values := map[string]string{"scores": o.Scores, "background": o.Background, "boxes": o.Boxes, "units": o.Units, "normalize": o.Normalize}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(detrChoices)) {
		if v := values[key]; v != "" && !slices.Contains(detrChoices[key], v) {
			errs = append(errs, fmt.Errorf("infer: model.detr.%s %q is unknown: use %s (or leave it empty to infer it from the outputs)", key, v, strings.Join(detrChoices[key], ", ")))
		}
	}
	return errors.Join(errs...)
}

// detrLayout is how a DETR-family model lays out its per-query outputs.
type detrLayout int

const (
	// detrSplit: boxes [N,Q,4] and class logits [N,Q,C] (RT-DETR, D-FINE
	// and DEIM without their postprocessor, RF-DETR, the original DETR).
	detrSplit detrLayout = iota
	// detrJoined: one [N,Q,4+C] (Ultralytics RT-DETR: boxes then sigmoid
	// scores).
	detrJoined
	// detrPost: labels [N,Q], boxes [N,Q,4] and scores [N,Q] (the
	// deploy-mode postprocessor of RT-DETR, D-FINE and DEIM, fed with an
	// orig_target_sizes input).
	detrPost
)

// detrDecoder decodes the DETR family: one box and one class per query,
// set-predicted (one query per object), so no NMS runs by default.
type detrDecoder struct {
	// user holds Config.DETR; opts the options in force after bind.
	user, opts DETROptions
	// sizesInput says the model takes an orig_target_sizes input, which
	// the detector feeds with the model-input size.
	sizesInput bool
	layout     detrLayout
	// Output indices; -1 where the layout has none.
	boxes, logits, labels, scores int
	// nClasses is the number of score columns (background included).
	nClasses int
	// variant describes what bind recognised, for `model inspect`.
	variant string
	// imagenet says the outputs are RF-DETR's (named dets and labels),
	// whose preprocessing normalises with the ImageNet mean and std.
	imagenet bool
}

// detrWant is the bind error text: what the detr format accepts.
const detrWant = "detr expects boxes [N,Q,4] with logits [N,Q,C], or one [N,Q,4+C], or labels [N,Q], boxes [N,Q,4] and scores [N,Q]"

func (d *detrDecoder) bind(outs []ort.InputOutputInfo, _, _ int) error {
	d.boxes, d.logits, d.labels, d.scores = -1, -1, -1, -1
	d.imagenet = false
	var boxes, wide, flat []int
	for i, o := range outs {
		s := o.Dimensions
		switch {
		case len(s) == 3 && dimIs(s[2], 4) && !detrNamed(o.Name, "logit", "score", "class", "label"):
			boxes = append(boxes, i)
		case len(s) == 3 && s[2] > 0:
			wide = append(wide, i)
		case len(s) == 2:
			flat = append(flat, i)
		default:
			return fmt.Errorf("%s; output %s %s fits none of them", detrWant, o.Name, shapeString(s))
		}
	}
	o := d.user
	switch {
	case len(outs) == 2 && len(boxes) == 1 && len(wide) == 1:
		d.layout, d.boxes, d.logits = detrSplit, boxes[0], wide[0]
		d.nClasses = int(outs[d.logits].Dimensions[2])
		d.imagenet = detrNamed(outs[d.boxes].Name, "dets") && detrNamed(outs[d.logits].Name, "labels")
		d.variant = d.splitDefaults(&o)
	case len(outs) == 2 && len(boxes) == 2:
		// C == 4: tell boxes from logits by name.
		b, l := boxes[0], boxes[1]
		if detrNamed(outs[b].Name, "logit", "label", "class") {
			b, l = l, b
		}
		if !detrNamed(outs[l].Name, "logit", "label", "class") {
			return fmt.Errorf("%s; two [N,Q,4] outputs and neither is named like logits", detrWant)
		}
		d.layout, d.boxes, d.logits, d.nClasses = detrSplit, b, l, 4
		d.variant = d.splitDefaults(&o)
	case len(outs) == 1 && len(wide) == 1 && outs[0].Dimensions[2] > 4:
		d.layout, d.logits = detrJoined, 0
		d.nClasses = int(outs[0].Dimensions[2] - 4)
		setDefault(&o.Scores, "none")
		d.variant = fmt.Sprintf("one [N,Q,4+C] output, C=%d, scores already probabilities (Ultralytics RT-DETR)", d.nClasses)
	case len(outs) == 3 && len(boxes) == 1 && len(flat) == 2:
		d.layout, d.boxes = detrPost, boxes[0]
		d.labels, d.scores = flat[0], flat[1]
		if detrNamed(outs[d.labels].Name, "score", "conf") || outs[d.scores].DataType == ort.TensorElementDataTypeInt64 {
			d.labels, d.scores = d.scores, d.labels
		}
		setDefault(&o.Scores, "none")
		setDefault(&o.Boxes, "xyxy")
		if d.sizesInput {
			setDefault(&o.Units, "pixels")
		}
		d.variant = "postprocessed labels, boxes, scores (RT-DETR, D-FINE, DEIM deploy export)"
		if d.sizesInput {
			d.variant += " with an orig_target_sizes input, fed the model-input size"
		}
	default:
		return fmt.Errorf("%s", detrWant)
	}
	if q := detrQueries(outs); q == 0 {
		return fmt.Errorf("%s; the outputs disagree on the query count Q", detrWant)
	}
	setDefault(&o.Scores, "sigmoid")
	setDefault(&o.Background, "none")
	setDefault(&o.Boxes, "cxcywh")
	setDefault(&o.Units, "normalised")
	if d.imagenet {
		setDefault(&o.Normalize, "imagenet")
	}
	setDefault(&o.Normalize, "none")
	if o.Background != "none" && d.nClasses < 2 {
		return fmt.Errorf("detr: model.detr.background %s needs at least 2 class columns, the model has %d", o.Background, d.nClasses)
	}
	d.opts = o
	return nil
}

// splitDefaults fills what the class-column count says about a split
// model and describes it. COCO models give it away: 91 columns are COCO
// category ids with id 0 unused (RF-DETR, Deformable DETR), 92 and 81 add
// DETR's softmax no-object column to 91 and 80.
func (d *detrDecoder) splitDefaults(o *DETROptions) string {
	desc := fmt.Sprintf("boxes [N,Q,4] and logits [N,Q,%d]", d.nClasses)
	switch {
	case d.nClasses == 92 || d.nClasses == 81:
		// The original DETR also trains on ImageNet-normalised input.
		setDefault(&o.Scores, "softmax")
		setDefault(&o.Background, "last")
		setDefault(&o.Normalize, "imagenet")
		desc += ", softmax with a no-object column last (DETR)"
	case d.nClasses == 91:
		setDefault(&o.Background, "first")
		desc += ", COCO category ids with id 0 unused"
	}
	if d.imagenet {
		// RF-DETR keeps column 0 for the dataset's unused id 0 (COCO's, or
		// the supercategory of a dataset exported in COCO form).
		setDefault(&o.Background, "first")
		desc += ", named dets/labels (RF-DETR: ImageNet mean/std input, column 0 unused)"
	}
	return desc
}

func setDefault(field *string, v string) {
	if *field == "" {
		*field = v
	}
}

// detrNamed reports whether an output name contains any of the words.
func detrNamed(name string, words ...string) bool {
	n := strings.ToLower(name)
	for _, w := range words {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// detrQueries returns the query count the outputs agree on (-1: dynamic),
// or 0 when two fixed counts differ.
func detrQueries(outs []ort.InputOutputInfo) int64 {
	q := int64(-1)
	for _, o := range outs {
		if len(o.Dimensions) < 2 || o.Dimensions[1] < 0 {
			continue
		}
		if q > 0 && o.Dimensions[1] != q {
			return 0
		}
		q = o.Dimensions[1]
	}
	return q
}

// classes returns the reportable class count (background dropped); 0 for
// the postprocessed layout, whose class is a value.
func (d *detrDecoder) classes() int {
	if d.layout == detrPost {
		return 0
	}
	if d.opts.Background != "none" {
		return d.nClasses - 1
	}
	return d.nClasses
}

func (d *detrDecoder) decode(outs []tensorView, b int, p *decodeParams, dst []candidate) []candidate {
	var boxes []float32
	var q, stride int
	if d.layout == detrJoined {
		o := outs[d.logits]
		q, stride = int(o.shape[1]), int(o.shape[2])
		boxes = o.data[b*q*stride : (b+1)*q*stride]
	} else {
		o := outs[d.boxes]
		q, stride = int(o.shape[1]), 4
		boxes = o.data[b*q*4 : (b+1)*q*4]
	}
	if !d.consistent(outs, q) {
		return dst
	}
	for i := range q {
		cls, s := d.best(outs, b, q, i)
		if s < p.conf || !p.wanted(cls) {
			continue
		}
		dst = append(dst, candidate{box: d.box(boxes[i*stride:i*stride+4], p), class: cls, score: s})
	}
	return dst
}

// consistent reports whether a Run's outputs agree with the bound layout
// (a dynamic query count can differ between outputs at run time); a
// mismatch decodes nothing rather than reading out of range.
func (d *detrDecoder) consistent(outs []tensorView, q int) bool {
	want := func(i int, dims ...int64) bool {
		if i < 0 {
			return true
		}
		s := outs[i].shape
		if len(s) != len(dims)+1 {
			return false
		}
		for k, v := range dims {
			if s[k+1] != v {
				return false
			}
		}
		return true
	}
	n := int64(q)
	switch d.layout {
	case detrJoined:
		return want(d.logits, n, int64(4+d.nClasses))
	case detrPost:
		return want(d.labels, n) && want(d.scores, n)
	}
	return want(d.logits, n, int64(d.nClasses))
}

// best returns query i's class and score.
func (d *detrDecoder) best(outs []tensorView, b, q, i int) (int, float32) {
	if d.layout == detrPost {
		l, s := outs[d.labels].data[b*q+i], outs[d.scores].data[b*q+i]
		if math.IsNaN(float64(l)) || l < 0 || l > math.MaxInt32 {
			return -1, -1
		}
		return int(math.Round(float64(l))), s
	}
	o := outs[d.logits]
	c := d.nClasses
	var row []float32
	if d.layout == detrJoined {
		n := 4 + c
		row = o.data[(b*q+i)*n+4 : (b*q+i+1)*n]
	} else {
		row = o.data[(b*q+i)*c : (b*q+i+1)*c]
	}
	// The reported class is the column index among the non-background ones.
	lo, hi := 0, c
	switch d.opts.Background {
	case "first":
		lo = 1
	case "last":
		hi = c - 1
	}
	cls, v := argmax(row[lo:hi], 0, 1, hi-lo)
	switch d.opts.Scores {
	case "sigmoid":
		v = float32(1 / (1 + math.Exp(-float64(v))))
	case "softmax":
		m := float64(v)
		for _, x := range row {
			m = math.Max(m, float64(x))
		}
		var sum float64
		for _, x := range row {
			sum += math.Exp(float64(x) - m)
		}
		v = float32(math.Exp(float64(v)-m) / sum)
	}
	return cls, v
}

// box turns one query's four box values into input pixels.
func (d *detrDecoder) box(v []float32, p *decodeParams) geom.Rect {
	sx, sy := 1.0, 1.0
	if d.opts.Units == "normalised" {
		sx, sy = float64(p.inW), float64(p.inH)
	}
	a, b, c, e := float64(v[0])*sx, float64(v[1])*sy, float64(v[2])*sx, float64(v[3])*sy
	if d.opts.Boxes == "xyxy" {
		return geom.RectFromCorners(a, b, c, e)
	}
	return geom.Rect{X: a - c/2, Y: b - e/2, W: c, H: e}
}

// describe says what bind recognised and the options in force.
func (d *detrDecoder) describe() string {
	return fmt.Sprintf("%s; scores %s, background %s, boxes %s %s, input normalisation %s", d.variant, d.opts.Scores, d.opts.Background, d.opts.Boxes, d.opts.Units, d.opts.Normalize)
}
