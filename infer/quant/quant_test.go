package quant

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
)

const (
	blazePath = "../../third_party/blazeface/ONNX/face_detection_front_128x128_barracuda.onnx"
	ssdPath   = "../../models/ssd_mobilenet_v2_coco.onnx"
	megamind  = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
	vtest     = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
)

// tinyModel: x[1,2,2,2] -> Conv(1x1, W per output channel, bias) -> Relu -> y.
func tinyModel(t *testing.T) *onnx.ModelProto {
	t.Helper()
	g := onnxgraph.NewGraph("tiny")
	g.AddInput("x", onnx.TensorProto_FLOAT, onnxgraph.Shape(1, 2, 2, 2)...)
	// Output channel 0 weights max |.| = 0.5, channel 1 = 2.54.
	g.AddInitializer(onnxgraph.FloatTensor("W", []int64{2, 2, 1, 1}, []float32{0.5, -0.25, 1.27, -2.54}))
	g.AddInitializer(onnxgraph.FloatTensor("B", []int64{2}, []float32{0.1, -0.2}))
	g.AddNode("Conv", []string{"x", "W", "B"}, []string{"c"})
	g.AddNode("Relu", []string{"c"}, []string{"r"})
	g.AddNode("Conv", []string{"r", "W", "B"}, []string{"y"})
	g.AddOutput("y", onnx.TensorProto_FLOAT, onnxgraph.Shape(1, 2, 2, 2)...)
	m, err := g.Model(13)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func initByName(m *onnx.ModelProto, name string) *onnx.TensorProto {
	for _, t := range m.GetGraph().GetInitializer() {
		if t.GetName() == name {
			return t
		}
	}
	return nil
}

func TestQuantizeTinyHandChecked(t *testing.T) {
	m := tinyModel(t)
	// Two frames: input values span [-1, 3].
	frames := [][]float32{{-1, 0, 1, 2, 0, 0, 0, 0}, {3, 0.5, 0.5, 0.5, 1, 1, 1, 1}}
	q, rep, err := QuantizeStatic(m, frames, []int64{1, 2, 2, 2}, Options{Method: MinMax, QuantizeHeads: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.QuantizedNodes != 2 || rep.Weights != 1 || !rep.PerChannel {
		t.Fatalf("report %+v, want 2 nodes, 1 shared weight, per-channel", rep)
	}
	// Input x: [-1, 3] -> scale 4/255, zero point round(1/(4/255)) = 64.
	xs, _ := floatData(initByName(q, "x_scale"))
	xz := initByName(q, "x_zero_point").GetRawData()
	if math.Abs(float64(xs[0])-4.0/255) > 1e-7 || xz[0] != 64 {
		t.Fatalf("x scale %v zero point %v, want %v and 64", xs[0], xz[0], 4.0/255)
	}
	// Weights: symmetric per output channel, scale max|w|/127, zero point 0.
	ws, _ := floatData(initByName(q, "W_scale"))
	if math.Abs(float64(ws[0])-0.5/127) > 1e-9 || math.Abs(float64(ws[1])-2.54/127) > 1e-9 {
		t.Fatalf("weight scales %v, want [%v %v]", ws, 0.5/127, 2.54/127)
	}
	wq := initByName(q, "W_quantized").GetRawData()
	want := []int8{127, -64, 64, -127} // 0.5/s0, -0.25/s0 (-63.5 rounds away), 1.27/s1, -2.54/s1
	for i, w := range want {
		if int8(wq[i]) != w {
			t.Fatalf("quantised weights %v, want %v", []int8{int8(wq[0]), int8(wq[1]), int8(wq[2]), int8(wq[3])}, want)
		}
	}
	// Bias of the first Conv: int32 at scale x_scale*w_scale per channel.
	bq := initByName(q, "c_bias_quantized").GetRawData()
	for c, b := range []float64{0.1, -0.2} {
		s := float64(xs[0]) * float64(ws[c])
		got := int32(binary.LittleEndian.Uint32(bq[4*c:]))
		if got != int32(math.Round(b/float64(float32(s)))) {
			t.Fatalf("bias[%d] = %d, want %v", c, got, math.Round(b/s))
		}
	}
	// The Relu output (not the Conv output) carries the activation Q/DQ,
	// so ONNX Runtime can fuse Conv+Relu+Q; the graph output stays FP32.
	if initByName(q, "r_scale") == nil || initByName(q, "c_scale") != nil || initByName(q, "y_scale") != nil {
		t.Fatalf("activation Q/DQ placed on the wrong tensors")
	}
	for _, n := range q.GetGraph().GetNode() {
		if n.GetOpType() == "DequantizeLinear" && strings.HasPrefix(n.GetName(), "W_") && attrIntOr(n, "axis", -1) != 0 {
			t.Fatalf("weight DequantizeLinear lacks axis 0")
		}
	}
	// Runs in ONNX Runtime and stays close to FP32.
	fb, _ := proto.Marshal(m)
	qb, _ := proto.Marshal(q)
	for _, f := range frames {
		ref := runOnce(t, fb, []int64{1, 2, 2, 2}, f)
		got := runOnce(t, qb, []int64{1, 2, 2, 2}, f)
		for i := range ref[0].Data {
			if d := math.Abs(float64(ref[0].Data[i] - got[0].Data[i])); d > 0.1 {
				t.Fatalf("output %d: int8 %v vs fp32 %v", i, got[0].Data[i], ref[0].Data[i])
			}
		}
	}
}

func runOnce(t *testing.T, model []byte, shape []int64, in []float32) []Output {
	t.Helper()
	s, err := NewSession(model, "test model", nil, SessionConfig{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(shape, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCalibrationRanges(t *testing.T) {
	st := &tensorStats{min: 0, max: 100, hist: make([]float64, histBins)}
	// 100000 values uniform in [0,1) and one outlier at 100.
	for i := 0; i < 100000; i++ {
		v := float64(i) / 100000
		st.hist[int(v/100*histBins)]++
	}
	st.hist[histBins-1]++
	if r := percentileRange(st, 99.99); r.Max > 1.1 || r.Min != 0 {
		t.Fatalf("percentile range %v, want [0, ~1]", r)
	}
	// Entropy searches thresholds from 255 of the 2048 bins upwards, so
	// here it can clip the outlier but not get below 255/2048*100.
	if r := entropyRange(st); r.Max > 12.5 || r.Max < 0.9 {
		t.Fatalf("entropy range %v, want the outlier clipped and [0,1) kept", r)
	}
	// Signed: [-1,1) plus an outlier at 100. The negative side is kept and
	// the positive side is clipped above 1, never below 0 (an earlier
	// version measured thresholds from the minimum and zeroed the SSD).
	st = &tensorStats{min: -1, max: 100, hist: make([]float64, histBins)}
	for i := 0; i < 100000; i++ {
		v := -1 + 2*float64(i)/100000
		st.hist[int((v+1)/101*histBins)]++
	}
	st.hist[histBins-1]++
	if r := entropyRange(st); r.Min != -1 || r.Max < 1 || r.Max > 12.5 {
		t.Fatalf("signed entropy range %v, want [-1, 1..12.5]", r)
	}
	// ReLU6-like: half exact zeros, the rest falling off exponentially
	// (mean 0.5) with 2% saturated at 6. The zeros are exact at any
	// threshold and must not decide it (they once clipped every ReLU6 of
	// the SSD near 1.45, and the detector found nothing).
	st = &tensorStats{min: 0, max: 6, hist: make([]float64, histBins)}
	st.hist[0] += 100000
	st.zeros = 100000
	for i := 0; i < 98000; i++ {
		v := -0.5 * math.Log(1-(float64(i)+0.5)/98000)
		st.hist[min(int(v/6*histBins), histBins-1)]++
	}
	st.hist[histBins-1] += 2000
	if r := entropyRange(st); r.Min != 0 || r.Max < 3 {
		t.Fatalf("ReLU6 entropy range %v, want [0, 3..6] (1.45 with the zero spike counted)", r)
	}
	if s, zp := actQuant(Range{0.5, 2}); zp != 0 || math.Abs(float64(s)-2.0/255) > 1e-7 {
		t.Fatalf("range not widened to include 0: scale %v zp %v", s, zp)
	}
	if s, zp := actQuant(Range{-6, -6}); zp != 255 || math.Abs(float64(s)-6.0/255) > 1e-7 {
		t.Fatalf("negative range: scale %v zp %v", s, zp)
	}
}

func TestFloat16(t *testing.T) {
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {0.1, 0x2e66}, {65504, 0x7bff}, {70000, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {5.960464477539063e-08, 0x0001}, {1e-9, 0}, {0, 0},
		{6.103515625e-05, 0x0400}, {0.33325195, 0x3555},
	} {
		if got := float16(c.f); got != c.want {
			t.Errorf("float16(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	if got := float16(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("NaN became %#04x", got)
	}
}

func TestErrors(t *testing.T) {
	empty := t.TempDir()
	junk := filepath.Join(t.TempDir(), "junk.onnx")
	if err := os.WriteFile(junk, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.onnx")
	tests := []struct {
		name string
		cfg  FileConfig
		is   error
		err  string
	}{
		{"missing model", FileConfig{Model: "nope.onnx", Out: out, Calib: vtest, Format: "blazeface"}, os.ErrNotExist,
			"quant: read model nope.onnx: open nope.onnx: no such file or directory (check the --model path)"},
		{"not a model", FileConfig{Model: junk, Out: out, Calib: vtest, Format: "blazeface"}, ErrModel, "is not an ONNX model"},
		{"no out", FileConfig{Model: blazePath, Calib: vtest, Format: "blazeface"}, ErrOptions,
			"quant: bad options: --out is empty: give the file to write"},
		{"empty calib dir", FileConfig{Model: blazePath, Out: out, Calib: empty, Format: "blazeface"}, ErrFrames,
			"has 0 images (jpg, png, bmp), need more than --skip 0"},
		{"no calib", FileConfig{Model: blazePath, Out: out, Format: "blazeface"}, ErrOptions,
			"quant: bad options: --calib is empty: give a video or an image folder to calibrate on (or use --dynamic)"},
		{"exclude matches nothing", FileConfig{Model: blazePath, Out: out, Calib: megamind, Frames: 2, Format: "blazeface", Options: Options{Exclude: []string{"Softmax"}}}, ErrOptions,
			`quant: bad options: --exclude pattern "Softmax" matches no node name or operator in the model (see ` + "`pipeline model inspect`)"},
		{"bad method", FileConfig{Model: blazePath, Out: out, Calib: megamind, Frames: 2, Format: "blazeface", Options: Options{Method: "kl"}}, ErrOptions,
			`quant: bad options: --method "kl": use minmax, percentile or entropy`},
		{"bad percentile", FileConfig{Model: blazePath, Out: out, Calib: megamind, Frames: 2, Format: "blazeface", Options: Options{Method: Percentile, Percentile: 20}}, ErrOptions,
			"quant: bad options: --percentile 20 must be in (50,100]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := QuantizeFile(tc.cfg, nil)
			if err == nil || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, want %q (%v)", err, tc.err, tc.is)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a failed quantisation left %s behind", out)
	}
}

func TestExcludeKeepsFP32(t *testing.T) {
	m, err := LoadModel(blazePath)
	if err != nil {
		t.Fatal(err)
	}
	shape, _ := InputShape(m)
	frames := [][]float32{make([]float32, numel(shape))}
	q, rep, err := QuantizeStatic(m, frames, shape, Options{Exclude: []string{"Add"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ExcludedNodes) != 16 {
		t.Fatalf("%d nodes excluded, want the model's 16 Adds", len(rep.ExcludedNodes))
	}
	for _, n := range q.GetGraph().GetNode() {
		if n.GetOpType() != "Add" {
			continue
		}
		for _, in := range n.GetInput() {
			if strings.HasSuffix(in, "_dequantized") {
				t.Fatalf("excluded Add %s reads quantised %s", n.GetName(), in)
			}
		}
	}
}

func TestExcludeGlob(t *testing.T) {
	for _, c := range []struct {
		pat, name string
		want      bool
	}{
		{"BoxPredictor_0/*", "BoxPredictor_0/ClassPredictor/BiasAdd", true},
		{"BoxPredictor_?/*", "BoxPredictor_5/Reshape", true},
		{"Conv", "Conv", true},
		{"Conv", "ConvTranspose", false},
		{"a.b", "axb", false}, // regexp metacharacters are literal
	} {
		re, err := globRegexp(c.pat)
		if err != nil {
			t.Fatal(err)
		}
		if got := re.MatchString(c.name); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.pat, c.name, got, c.want)
		}
	}
}

// x -> Conv -> Add(skip=x) -> Add(shift) -> y: the shift moves into the
// Conv bias, FP32 results unchanged.
func TestFoldConstAdd(t *testing.T) {
	g := onnxgraph.NewGraph("fold")
	g.AddInput("x", onnx.TensorProto_FLOAT, onnxgraph.Shape(1, 2, 2, 2)...)
	g.AddInitializer(onnxgraph.FloatTensor("W", []int64{2, 2, 1, 1}, []float32{0.5, -0.25, 1.5, 2}))
	g.AddInitializer(onnxgraph.FloatTensor("B", []int64{2}, []float32{0.1, -0.2}))
	g.AddInitializer(onnxgraph.FloatTensor("shift", []int64{1, 2, 1, 1}, []float32{3, -4}))
	g.AddNode("Conv", []string{"x", "W", "B"}, []string{"c"})
	g.AddNode("Add", []string{"c", "x"}, []string{"sum"})
	g.AddNode("Add", []string{"shift", "sum"}, []string{"y"})
	g.AddOutput("y", onnx.TensorProto_FLOAT, onnxgraph.Shape(1, 2, 2, 2)...)
	m, err := g.Model(13)
	if err != nil {
		t.Fatal(err)
	}
	f := proto.Clone(m).(*onnx.ModelProto)
	if n := foldConstAdds(f.GetGraph()); n != 1 || len(f.GetGraph().GetNode()) != 2 {
		t.Fatalf("folded %d, %d nodes left, want 1 and 2", n, len(f.GetGraph().GetNode()))
	}
	b, _ := floatData(initByName(f, "c_folded_bias"))
	if b[0] != 3.1 || b[1] != -4.2 {
		t.Fatalf("folded bias %v, want [3.1 -4.2]", b)
	}
	mb, _ := proto.Marshal(m)
	fb, _ := proto.Marshal(f)
	in := []float32{1, 2, 3, 4, -1, -2, 0.5, 0}
	ref, got := runOnce(t, mb, []int64{1, 2, 2, 2}, in), runOnce(t, fb, []int64{1, 2, 2, 2}, in)
	for i := range ref[0].Data {
		if math.Abs(float64(ref[0].Data[i]-got[0].Data[i])) > 1e-5 {
			t.Fatalf("folded model differs at %d: %v vs %v", i, got[0].Data[i], ref[0].Data[i])
		}
	}
}
