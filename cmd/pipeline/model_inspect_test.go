package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/onnxgraph"
)

// inspect prints the format auto-detection picks, with its reason, or why
// none fits.
func TestInspectFormat(t *testing.T) {
	if _, err := os.Stat(detectFace); err != nil {
		t.Skip("blazeface model missing: run scripts/setup.sh")
	}
	// A classifier: no detector format fits its [1,48] output.
	g := onnxgraph.NewGraph("classifier")
	g.AddInput("images", onnxgraph.Float, onnxgraph.Shape(1, 3, 4, 4)...)
	g.AddNode("Flatten", []string{"images"}, []string{"logits"})
	g.AddOutput("logits", onnxgraph.Float, onnxgraph.Shape(1, 48)...)
	m, err := g.Model(13)
	if err != nil {
		t.Fatal(err)
	}
	classifier := filepath.Join(t.TempDir(), "classifier.onnx")
	if err := onnxgraph.Save(m, classifier); err != nil {
		t.Fatal(err)
	}
	// A YOLO26-style end-to-end export with Ultralytics metadata (inspect
	// reads only the declared shapes, so a constant output will do).
	g = onnxgraph.NewGraph("end2end")
	g.AddInput("images", onnxgraph.Float, onnxgraph.Shape(1, 3, 640, 640)...)
	g.AddInitializer(onnxgraph.FloatTensor("output0", []int64{1, 300, 6}, make([]float32, 1800)))
	g.AddOutput("output0", onnxgraph.Float, onnxgraph.Shape(1, 300, 6)...)
	if m, err = g.Model(13); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"author": "Ultralytics", "task": "detect", "stride": "32", "names": "{0: 'person', 1: 'bicycle', 2: 'car'}"} {
		m.MetadataProps = append(m.MetadataProps, &onnx.StringStringEntryProto{Key: k, Value: v})
	}
	yolo26 := filepath.Join(t.TempDir(), "yolo26n.onnx")
	if err := onnxgraph.Save(m, yolo26); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{yolo26, "format  yolo-end2end\nreason  one output output0 [1,300,6]: x1,y1,x2,y2,score,class per query (YOLOv10/YOLO26 end-to-end); Ultralytics metadata: task detect, 3 names\nlabels  3 from metadata: person, bicycle, car\n"},
		{detectFace, "format  blazeface\nreason  score and box+6-keypoint outputs over the 896 anchors of a 128x128 input (MediaPipe BlazeFace)\n"},
		{"../../models/ssd_mobilenet_v2_coco.onnx", "format  ssd\nreason  score output scores [?,1917,90] and box output boxes [?,1917,1,4] (TensorFlow SSD as `pipeline model import` writes it)\n"},
		{classifier, "format  none detected: infer: model " + classifier + ": model.format auto found no format that fits its outputs logits [1,48] (inputs images [1,3,4,4]); tried blazeface ("},
	} {
		m, err := onnxgraph.Load(tc.path)
		if err != nil {
			t.Logf("%s: %v (run scripts/setup.sh)", tc.path, err)
			continue
		}
		var buf bytes.Buffer
		printFormat(&buf, tc.path, m)
		if !strings.HasPrefix(buf.String(), tc.want) {
			t.Errorf("%s:\n%s\nwant prefix\n%s", tc.path, buf.String(), tc.want)
		}
	}
}

// detect's --format defaults to auto.
func TestDetectFormatAuto(t *testing.T) {
	if _, err := os.Stat(detectFace); err != nil {
		t.Skip("blazeface model missing: run scripts/setup.sh")
	}
	det, err := infer.Open(infer.Config{Path: detectFace}, nil)
	if err != nil {
		t.Skipf("onnx runtime: %v", err)
	}
	if det.Format() != "blazeface" {
		t.Errorf("auto picked %s for BlazeFace", det.Format())
	}
	det.Close()
	for _, args := range [][]string{
		{"--model", detectFace, "--frames", "1", detectMegamind},
		{"--model", detectFace, "--format", "auto", "--frames", "1", detectMegamind},
	} {
		if code := cmdDetect(context.Background(), args); code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}
