package tfjs

import (
	"path/filepath"
	"testing"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"gocv.io/x/gocv"
)

// TestOpenCVDNNLoadsFixedBatch checks that the fixed-batch conversion loads
// in OpenCV's DNN module and gives the same outputs as ONNX Runtime.
func TestOpenCVDNNLoadsFixedBatch(t *testing.T) {
	matcheck.Leaks(t)
	m, err := Convert(cocoModelPath(t), Options{Batch: 1, Opset: 10})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "coco_b1.onnx")
	if err := onnxgraph.Save(m, path); err != nil {
		t.Fatal(err)
	}
	net := gocv.ReadNetFromONNX(path)
	defer net.Close()
	if net.Empty() {
		t.Fatalf("opencv dnn could not load %s", path)
	}
	input := vtestFrames(t, []int{120})
	in, err := gocv.NewMatWithSizesFromBytes([]int{1, 300, 300, 3}, gocv.MatTypeCV32F, f32bytes(input))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	net.SetInput(in, "image")
	outs := net.ForwardLayers([]string{"scores", "boxes"})
	defer func() {
		for _, o := range outs {
			o.Close()
		}
	}()
	scores, boxes := runORT(t, path, input, 1)
	got := [][]float32{scores, boxes}
	for i, o := range outs {
		d, err := o.DataPtrFloat32()
		if err != nil {
			t.Fatal(err)
		}
		if len(d) != len(got[i]) {
			t.Fatalf("output %d: opencv gives %d values, onnx runtime %d", i, len(d), len(got[i]))
		}
		t.Logf("output %d: max |opencv - onnx runtime| = %.3g", i, maxAbsDiff(d, got[i]))
		if diff := maxAbsDiff(d, got[i]); diff > 1e-3 {
			t.Fatalf("output %d: opencv differs from onnx runtime by %.3g", i, diff)
		}
	}
}
