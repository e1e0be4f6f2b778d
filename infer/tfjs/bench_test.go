package tfjs

import (
	"path/filepath"
	"testing"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
	ort "github.com/yalue/onnxruntime_go"
)

// BenchmarkConvertedSSD measures ONNX Runtime (CPU, 2 intra-op threads)
// on the converted COCO-SSD, one 300x300 frame per run.
func BenchmarkConvertedSSD(b *testing.B) {
	m, err := Convert(cocoModelPath(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "coco.onnx")
	if err := onnxgraph.Save(m, path); err != nil {
		b.Fatal(err)
	}
	initORT(b)
	input := vtestFrames(b, []int{100})
	in, err := ort.NewTensor(ort.NewShape(1, 300, 300, 3), input)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Destroy()
	so, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, 1917, 90))
	defer so.Destroy()
	bo, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, 1917, 1, 4))
	defer bo.Destroy()
	opts, err := ort.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	defer opts.Destroy()
	opts.SetIntraOpNumThreads(2)
	s, err := ort.NewAdvancedSession(path, []string{"image"}, []string{"scores", "boxes"}, []ort.Value{in}, []ort.Value{so, bo}, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Destroy()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Run(); err != nil {
			b.Fatal(err)
		}
	}
}
