package infer

import (
	"slices"
	"strings"
	"testing"
)

// Each planted layout (and the real SSD and BlazeFace models) is detected
// by Open under auto and by InspectFormat alike, with the same reason.
func TestAutoFormat(t *testing.T) {
	requireRuntime(t)
	requireSSD(t)
	one := func(name string, dims ...int64) []plantedOut {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		return []plantedOut{{planted: planted{name, dims, make([]float32, n)}}}
	}
	out := func(name string, dims ...int64) plantedOut { return one(name, dims...)[0] }
	tests := []struct {
		name   string
		path   string    // a real model, or
		model  plantSpec // a planted one
		format string
		reason string
		labels []string // the first labels the detector uses
	}{
		{name: "SSD as imported here", path: ssdPath, format: "ssd",
			reason: "score output scores [?,1917,90] and box output boxes [?,1917,1,4] (TensorFlow SSD as `pipeline model import` writes it)", labels: []string{"person", "bicycle"}},
		{name: "BlazeFace front", path: blazefacePath, format: "blazeface",
			reason: "score and box+6-keypoint outputs over the 896 anchors of a 128x128 input (MediaPipe BlazeFace)", labels: []string{"face"}},
		{name: "BlazeFace back", path: "../third_party/blazeface/ONNX/face_detection_back_256x256_barracuda.onnx", format: "blazeface",
			reason: "896 anchors of a 256x256 input"},
		{name: "SSD planted, 3-D boxes", model: plantSpec{input: []int64{-1, 300, 300, 3}, outs: []plantedOut{out("detection_scores", 1917, 90), out("detection_boxes", 1917, 4)}},
			format: "ssd", reason: "box output detection_boxes [?,1917,4]"},
		{name: "YOLOv8 without metadata", model: plantSpec{input: []int64{1, 3, 320, 320}, outs: one("output0", 84, 2100)},
			format: "yolov8", reason: "one output output0 [1,84,2100]: cx,cy,w,h then 80 class rows per anchor (Ultralytics YOLOv8/v11)", labels: []string{"person", "bicycle"}},
		{name: "YOLOv8 with metadata", model: plantSpec{input: []int64{1, 3, -1, -1}, meta: ultralyticsMeta(sixNames, 320), outs: one("output0", 10, 2100)},
			format: "yolov8", reason: "6 class rows per anchor (Ultralytics YOLOv8/v11); Ultralytics metadata: task detect, 6 names", labels: []string{"walker", "bike", "driver's car"}},
		{name: "YOLOX", model: plantSpec{input: []int64{1, 3, 128, 128}, outs: one("output", 336, 85)},
			format: "yolox", reason: "one anchor per cell of a 128x128 input at strides 8/16/32 (YOLOX)"},
		{name: "YOLOv5", model: plantSpec{input: []int64{1, 3, 128, 128}, outs: one("output0", 1008, 85)},
			format: "yolov5", reason: "3 anchors per cell, cx,cy,w,h,objectness,80 classes (YOLOv5)"},
		{name: "YOLOv5 repository export with names", model: plantSpec{input: []int64{1, 3, 128, 128}, meta: map[string]string{"stride": "32", "names": "['walker', 'bike']"}, outs: one("output0", 1008, 7)},
			format: "yolov5", reason: "2 classes (YOLOv5)", labels: []string{"walker", "bike"}},
		{name: "YOLOv10/YOLO26 end-to-end", model: plantSpec{input: []int64{1, 3, 640, 640}, meta: ultralyticsMeta(sixNames, 640), outs: one("output0", 300, 6)},
			format: "yolo-end2end", reason: "one output output0 [1,300,6]: x1,y1,x2,y2,score,class per query (YOLOv10/YOLO26 end-to-end)", labels: []string{"walker"}},
		{name: "RT-DETR raw", model: plantSpec{input: []int64{1, 3, 640, 640}, outs: []plantedOut{out("pred_logits", 300, 80), out("pred_boxes", 300, 4)}},
			format: "detr", reason: "boxes [N,Q,4] and logits [N,Q,80]; scores sigmoid", labels: []string{"person"}},
		{name: "RF-DETR", model: plantSpec{input: []int64{1, 3, 560, 560}, outs: []plantedOut{out("dets", 300, 4), out("labels", 300, 91)}},
			format: "detr", reason: "RF-DETR", labels: []string{"person", "bicycle"}}, // column 0 dropped: COCO90
		{name: "DETR softmax", model: plantSpec{input: []int64{1, 3, 800, 800}, outs: []plantedOut{out("logits", 100, 92), out("pred_boxes", 100, 4)}},
			format: "detr", reason: "softmax with a no-object column last (DETR)", labels: []string{"N/A", "person"}},
		{name: "DETR with a dynamic query count and a *boxes* name", model: plantSpec{input: []int64{1, 3, 800, 800}, outs: []plantedOut{
			{planted: planted{"logits", []int64{100, 92}, make([]float32, 9200)}, declared: []int64{-1, 92}},
			{planted: planted{"pred_boxes", []int64{100, 4}, make([]float32, 400)}, declared: []int64{-1, 4}}}},
			format: "detr", reason: "boxes [N,Q,4] and logits [N,Q,92], softmax"},
		{name: "D-FINE/DEIM deploy export", model: plantSpec{input: []int64{-1, 3, 640, 640}, sizes: 7, outs: []plantedOut{
			{planted: planted{"labels", []int64{300}, make([]float32, 300)}, int64: true}, out("boxes", 300, 4), out("scores", 300)}},
			format: "detr", reason: "postprocessed labels, boxes, scores", labels: []string{"person"}},
		{name: "Ultralytics RT-DETR", model: plantSpec{input: []int64{1, 3, 640, 640}, meta: ultralyticsMeta(sixNames, 640), outs: one("output0", 300, 10)},
			format: "detr", reason: "one [N,Q,4+C] output, C=6", labels: []string{"walker"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = plant(t, tc.model)
			}
			fi, err := InspectFormat(path, DETROptions{})
			if err != nil {
				t.Fatal(err)
			}
			if fi.Err != nil || fi.Format != tc.format || !strings.Contains(fi.Reason, tc.reason) {
				t.Fatalf("inspect: format %q reason %q err %v; want %s and %q", fi.Format, fi.Reason, fi.Err, tc.format, tc.reason)
			}
			d := openTest(t, Config{Path: path, Format: FormatAuto})
			if d.Format() != fi.Format || d.FormatReason() != fi.Reason {
				t.Errorf("Open: %s %q, inspect: %s %q", d.Format(), d.FormatReason(), fi.Format, fi.Reason)
			}
			if got := d.Labels(); len(got) < len(tc.labels) || !slices.Equal(got[:len(tc.labels)], tc.labels) {
				t.Errorf("labels %v, want %v first", got[:min(len(got), 5)], tc.labels)
			}
			if fi.Labels != nil && !slices.Equal(fi.Labels, d.Labels()) {
				t.Errorf("metadata labels %v, detector %v", fi.Labels, d.Labels())
			}
		})
	}
}

// Bad input: a model whose layout no format fits gets, under auto, an
// error naming the model, every output with its shape, and each format
// tried with why it did not fit. A forced format that does not fit names
// the format's expectation and the outputs found.
func TestAutoFormatUnknown(t *testing.T) {
	requireRuntime(t)
	classifier := plant(t, plantSpec{input: []int64{1, 3, 224, 224}, outs: []plantedOut{{planted: planted{"logits", []int64{1000}, make([]float32, 1000)}}}})
	segment := plant(t, plantSpec{input: []int64{1, 3, 320, 320}, meta: map[string]string{"author": "Ultralytics", "task": "segment", "stride": "32", "names": "{0: 'a'}"},
		outs: []plantedOut{
			{planted: planted{"output0", []int64{38, 2100}, make([]float32, 38*2100)}},
			{planted: planted{"output1", []int64{32, 80, 80}, make([]float32, 32*80*80)}},
		}})
	end2end := plant(t, plantSpec{input: []int64{1, 3, 640, 640}, outs: []plantedOut{{planted: planted{"output0", []int64{300, 6}, make([]float32, 1800)}}}})
	tests := []struct {
		name string
		cfg  Config
		err  []string // substrings, in order
	}{
		{"classifier under auto", Config{Path: classifier},
			[]string{"infer: model " + classifier + ": model.format auto found no format that fits its outputs logits [1,1000] (inputs images [1,3,224,224]); tried ",
				"blazeface (blazeface expects scores [N,896,1]", "; ssd (ssd expects two outputs", "; detr (detr expects boxes", "; yolo-end2end (yolo-end2end expects one output [N,Q,6]",
				"; yolov8 (yolov8 expects", "; yolox (yolox expects", "; yolov5 (yolov5 expects", "; detr (one [N,Q,4+C] output) (detr expects",
				": set model.format (and model.detr for a DETR variant) or re-export the model as docs/detect.md describes"}},
		{"segmentation model under auto", Config{Path: segment, Format: FormatAuto},
			[]string{"its outputs output0 [1,38,2100], output1 [1,32,80,80]", "its metadata says task segment, and only detect and pose models are decoded; tried "}},
		{"forced format that does not fit", Config{Path: end2end, Format: "yolov8"},
			[]string{"infer: model " + end2end + " does not fit format yolov8: yolov8 expects one output [N,4+C,A]", "the model has outputs output0 [1,300,6] (choose the format that matches the model, or model.format auto)"}},
		{"orig_target_sizes on a YOLO", Config{Path: plant(t, plantSpec{input: []int64{1, 3, 640, 640}, sizes: 7, outs: []plantedOut{{planted: planted{"output0", []int64{300, 6}, make([]float32, 1800)}}}})},
			[]string{"has an input orig_target_sizes [1,2] besides the image: only detr models take one"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(tc.cfg, quietLog)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			rest := err.Error()
			for _, s := range tc.err {
				i := strings.Index(rest, s)
				if i < 0 {
					t.Fatalf("error %q\nlacks %q", err, s)
				}
				rest = rest[i+len(s):]
			}
		})
	}
	// inspect reports the same, without ONNX Runtime; it also sees
	// declared dynamic dimensions (ONNX Runtime reports inferred ones), as
	// in a dynamic-anchor YOLOv5, which no rule claims without metadata.
	dynamic := plant(t, plantSpec{input: []int64{1, 3, 320, 320}, outs: []plantedOut{{planted: planted{"output0", []int64{6300, 85}, make([]float32, 6300*85)}, declared: []int64{-1, 85}}}})
	for path, want := range map[string][]string{
		classifier: {"found no format that fits its outputs logits [1,1000]"},
		dynamic: {"found no format that fits its outputs output0 [1,?,85]", "yolov5 (a dynamic number of anchors, not the 3 per cell (6300) of a 320x320 input)",
			"detr (one [N,Q,4+C] output) (a dynamic number of rows and no metadata names: not recognisably DETR queries)"},
	} {
		fi, err := InspectFormat(path, DETROptions{})
		if err != nil || fi.Format != "" || fi.Err == nil {
			t.Fatalf("inspect: %+v, %v", fi, err)
		}
		for _, w := range want {
			if !strings.Contains(fi.Err.Error(), w) {
				t.Errorf("inspect: %v\nlacks %q", fi.Err, w)
			}
		}
	}
}

func TestParsePyNames(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{`{0: 'person', 1: 'bicycle'}`, []string{"person", "bicycle"}, ""},
		{`{0: "driver's car", 2: 'a\'b', 1: 'tab\there'}`, []string{"driver's car", "tab\there", "a'b"}, ""},
		{`{0: 'a', 3: 'd'}`, []string{"a", "class 1", "class 2", "d"}, ""},
		{`['x', "y"]`, []string{"x", "y"}, ""},
		{`{0: 'caf\xe9'}`, []string{"café"}, ""},
		{`person, bicycle`, nil, "not a Python dict or list"},
		{`{0: 'a' 1: 'b'}`, nil, "expected a comma"},
		{`{a: 'b'}`, nil, "expected an integer key"},
		{`{0: 'open}`, nil, "unterminated name"},
		{`{}`, nil, "0 names"},
	}
	for _, tc := range tests {
		got, err := parsePyNames(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// Metadata with unreadable names is ignored with a warning, not fatal.
func TestBadMetadataNames(t *testing.T) {
	requireRuntime(t)
	model := plant(t, plantSpec{input: []int64{1, 3, 640, 640}, meta: map[string]string{"author": "Ultralytics", "task": "detect", "names": "{oops"},
		outs: []plantedOut{{planted: planted{"output0", []int64{300, 6}, make([]float32, 1800)}}}})
	d := openTest(t, Config{Path: model})
	if d.Format() != "yolo-end2end" || d.Labels()[0] != "person" {
		t.Errorf("format %s labels %v", d.Format(), d.Labels()[:2])
	}
}

func TestDefaultConfigIsAuto(t *testing.T) {
	c := DefaultConfig()
	c.Path = "m.onnx"
	if c.Format != FormatAuto || c.Validate() != nil {
		t.Errorf("default %+v: %v", c, c.Validate())
	}
}
