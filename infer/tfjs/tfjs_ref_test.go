package tfjs

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/modroot"
	"github.com/osprey-vision/osprey/internal/realpart"
)

const vtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// moduleRoot walks up from the test's directory to go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := modroot.FromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func cocoModelPath(t testing.TB) string {
	p := filepath.Join(moduleRoot(t), "third_party", "coco-ssd", "models", "coco-ssd", "model.json")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("COCO-SSD model missing (run scripts/setup.sh): %v", err)
	}
	return p
}

func initORT(t testing.TB) {
	t.Helper()
	if ort.IsInitialized() {
		return
	}
	ort.SetSharedLibraryPath(filepath.Join(moduleRoot(t), "third_party", "lib", "libonnxruntime.so"))
	if err := ort.InitializeEnvironment(); err != nil {
		t.Fatalf("onnx runtime (run scripts/setup.sh): %v", err)
	}
}

// vtestFrames decodes the given frame indices of vtest.avi as 300x300 RGB
// float32 NHWC in 0..255.
func vtestFrames(t testing.TB, indices []int) []float32 {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(vtest)
	if err != nil {
		t.Fatalf("open %s: %v", vtest, err)
	}
	defer vc.Close()
	frame, small, rgb, f := gocv.NewMat(), gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	defer frame.Close()
	defer small.Close()
	defer rgb.Close()
	defer f.Close()
	var out []float32
	next := 0
	for _, want := range indices {
		for ; next <= want; next++ {
			if !vc.Read(&frame) || frame.Empty() {
				t.Fatalf("%s: could not read frame %d", vtest, next)
			}
		}
		gocv.Resize(frame, &small, imageSize(300, 300), 0, 0, gocv.InterpolationLinear)
		gocv.CvtColor(small, &rgb, gocv.ColorBGRToRGB)
		rgb.ConvertTo(&f, gocv.MatTypeCV32FC3)
		data, err := f.DataPtrFloat32()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data...)
	}
	return out
}

// runORT runs an ONNX model file on NHWC input of batch n and returns
// scores and boxes.
func runORT(t testing.TB, path string, input []float32, n int64) (scores, boxes []float32) {
	t.Helper()
	initORT(t)
	in, err := ort.NewTensor(ort.NewShape(n, 300, 300, 3), input)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	so, err := ort.NewEmptyTensor[float32](ort.NewShape(n, 1917, 90))
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	bo, err := ort.NewEmptyTensor[float32](ort.NewShape(n, 1917, 1, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer bo.Destroy()
	s, err := ort.NewAdvancedSession(path, []string{"image"}, []string{"scores", "boxes"}, []ort.Value{in}, []ort.Value{so, bo}, nil)
	if err != nil {
		t.Fatalf("load %s in onnx runtime: %v", path, err)
	}
	defer s.Destroy()
	if err := s.Run(); err != nil {
		t.Fatalf("run %s: %v", path, err)
	}
	return append([]float32(nil), so.GetData()...), append([]float32(nil), bo.GetData()...)
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// TestMatchesTFJS converts COCO-SSD, runs it in ONNX Runtime on real video
// frames and compares with TensorFlow.js running the original graph.
func TestMatchesTFJS(t *testing.T) {
	matcheck.Leaks(t)
	root := moduleRoot(t)
	ref := filepath.Join(root, "tools", "tfjs-ref")
	realpart.File(t, realpart.TFJSRef, filepath.Join(ref, "node_modules", "@tensorflow", "tfjs"))
	modelJSON := cocoModelPath(t)
	dir := t.TempDir()
	onnxPath := filepath.Join(dir, "coco.onnx")

	indices := []int{0, 60, 150, 300, 601}
	n := int64(len(indices))
	input := vtestFrames(t, indices)
	raw := make([]byte, 4*len(input))
	for i, v := range input {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	inPath, outPath := filepath.Join(dir, "in.f32"), filepath.Join(dir, "out.f32")
	if err := os.WriteFile(inPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// TF.js (pure JS) is the slow side: run it while Go converts and runs
	// the ONNX model.
	cmd := exec.Command("node", filepath.Join(ref, "run.js"), modelJSON, inPath, itoa(n), outPath)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	m, convErr := Convert(modelJSON, Options{})
	if convErr == nil {
		convErr = onnxgraph.Save(m, onnxPath)
	}
	var scores, boxes []float32
	if convErr == nil {
		scores, boxes = runORT(t, onnxPath, input, n)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tfjs reference failed: %v\n%s", err, log.String())
	}
	if convErr != nil {
		t.Fatal(convErr)
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	ns, nb := int(n)*1917*90, int(n)*1917*4
	if len(b) != 4*(ns+nb) {
		t.Fatalf("tfjs reference wrote %d bytes, want %d", len(b), 4*(ns+nb))
	}
	want := make([]float32, ns+nb)
	for i := range want {
		want[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	ds, db := maxAbsDiff(scores, want[:ns]), maxAbsDiff(boxes, want[ns:])
	t.Logf("frames %v: max |diff| scores %.3g, boxes %.3g (ONNX Runtime vs TF.js)", indices, ds, db)
	if ds > 1e-3 || db > 1e-3 {
		t.Fatalf("converted model differs from TF.js: scores %.3g, boxes %.3g (limit 1e-3)", ds, db)
	}
	// The frames are different, so the outputs must be too: a converter that
	// ignored its input would otherwise pass.
	if maxAbsDiff(scores[:1917*90], scores[1917*90:2*1917*90]) < 1e-3 {
		t.Fatal("scores for different frames are identical")
	}
	var best float32
	for _, v := range scores {
		best = max(best, v)
	}
	if best < 0.5 {
		t.Fatalf("no confident detection in vtest.avi frames (max score %.3f)", best)
	}
}
