package tfjs

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// graphBuilder writes small TF.js graph models for tests.
type graphBuilder struct {
	nodes   []map[string]any
	weights []map[string]any
	data    []byte
	rng     *rand.Rand
}

func newGraphBuilder() *graphBuilder {
	return &graphBuilder{rng: rand.New(rand.NewPCG(1, 2))}
}

func attrInts(v ...int) map[string]any {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return map[string]any{"list": map[string]any{"i": s}}
}

func attrInt(v int) map[string]any { return map[string]any{"i": strconv.Itoa(v)} }
func attrStr(v string) map[string]any {
	return map[string]any{"s": base64.StdEncoding.EncodeToString([]byte(v))}
}
func attrFloat(v float64) map[string]any { return map[string]any{"f": v} }

func convAttrs(stride int, padding string) map[string]any {
	return map[string]any{"strides": attrInts(1, stride, stride, 1), "padding": attrStr(padding),
		"data_format": attrStr("NHWC"), "dilations": attrInts(1, 1, 1, 1)}
}

func (g *graphBuilder) node(name, op string, inputs []string, attrs map[string]any) string {
	if attrs == nil {
		attrs = map[string]any{}
	}
	g.nodes = append(g.nodes, map[string]any{"name": name, "op": op, "input": inputs, "attr": attrs})
	return name
}

func (g *graphBuilder) placeholder(name string, shape ...int) string {
	var dims []map[string]any
	for _, d := range shape {
		dims = append(dims, map[string]any{"size": strconv.Itoa(d)})
	}
	return g.node(name, "Placeholder", nil, map[string]any{"shape": map[string]any{"shape": map[string]any{"dim": dims}}, "dtype": map[string]any{"type": 1}})
}

func (g *graphBuilder) constF(name string, shape []int, v []float32) string {
	if shape == nil {
		shape = []int{} // a scalar: TF.js wants [] not null
	}
	for _, x := range v {
		g.data = binary.LittleEndian.AppendUint32(g.data, math.Float32bits(x))
	}
	g.weights = append(g.weights, map[string]any{"name": name, "shape": shape, "dtype": "float32"})
	return g.node(name, "Const", nil, nil)
}

func (g *graphBuilder) randF(name string, lo, hi float32, shape ...int) string {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*g.rng.Float32()
	}
	return g.constF(name, shape, v)
}

func (g *graphBuilder) constI(name string, shape []int, v ...int32) string {
	if shape == nil {
		shape = []int{}
	}
	for _, x := range v {
		g.data = binary.LittleEndian.AppendUint32(g.data, uint32(x))
	}
	g.weights = append(g.weights, map[string]any{"name": name, "shape": shape, "dtype": "int32"})
	return g.node(name, "Const", nil, nil)
}

// write saves model.json and one shard in dir and returns the model path.
func (g *graphBuilder) write(t testing.TB, dir string) string {
	t.Helper()
	m := map[string]any{
		"format":          "graph-model",
		"modelTopology":   map[string]any{"node": g.nodes, "library": map[string]any{}, "versions": map[string]any{"producer": 27}},
		"weightsManifest": []any{map[string]any{"paths": []string{"group1-shard1of1.bin"}, "weights": g.weights}},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "group1-shard1of1.bin"), g.data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "model.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// opsGraph exercises every converted op, with odd sizes so SAME padding is
// asymmetric, negative strides, masks, a dynamic batch and layout changes.
func opsGraph() (*graphBuilder, []string) {
	g := newGraphBuilder()
	x := g.placeholder("x", -1, 7, 9, 4)
	one := g.constI("one", nil, 1)
	// Conv2D stride 2 SAME + BiasAdd + FusedBatchNorm + Relu6 (all folded).
	conv := g.node("conv", "Conv2D", []string{x, g.randF("w", -0.5, 0.5, 3, 3, 4, 6)}, convAttrs(2, "SAME"))
	bias := g.node("bias", "BiasAdd", []string{conv, g.randF("b", -1, 1, 6)}, nil)
	bn := g.node("bn", "FusedBatchNorm", []string{bias, g.randF("gamma", 0.5, 1.5, 6), g.randF("beta", -1, 1, 6), g.randF("mean", -1, 1, 6), g.randF("var", 0.5, 2, 6)}, map[string]any{"epsilon": attrFloat(0.001)})
	relu := g.node("relu6", "Relu6", []string{bn}, nil)
	// Depthwise, multiplier 2, VALID, then per-channel Mul/Add and a residual AddN.
	dw := g.node("dw", "DepthwiseConv2dNative", []string{x, g.randF("dww", -0.5, 0.5, 3, 3, 4, 2)}, convAttrs(1, "VALID"))
	mul := g.node("dwmul", "Mul", []string{dw, g.randF("dws", 0.5, 1.5, 8)}, nil)
	add := g.node("dwadd", "Add", []string{mul, g.randF("dwb", -1, 1, 8)}, nil)
	dw2 := g.node("dw2", "DepthwiseConv2dNative", []string{x, g.randF("dww2", -0.5, 0.5, 3, 3, 4, 2)}, convAttrs(1, "VALID"))
	addn := g.node("addn", "AddN", []string{add, dw2, mul}, nil)
	sig := g.node("sig", "Sigmoid", []string{addn}, nil)
	// Transpose of a channels-first tensor; StridedSlice with ellipsis and a negative stride.
	tr := g.node("tr", "Transpose", []string{relu, g.constI("perm", []int{4}, 0, 3, 1, 2)}, nil)
	ss := g.node("ss", "StridedSlice", []string{x, g.constI("ssb", []int{4}, 0, 1, 0, 0), g.constI("sse", []int{4}, 0, -1, 0, 0), g.constI("sss", []int{4}, 1, 2, 1, -1)},
		map[string]any{"begin_mask": attrInt(1 | 8), "end_mask": attrInt(1 | 8), "ellipsis_mask": attrInt(4)})
	// Shrink and new axis: x[:, 2, newaxis, :, 1:3].
	ss2 := g.node("ss2", "StridedSlice", []string{x, g.constI("s2b", []int{5}, 0, 2, 0, 0, 1), g.constI("s2e", []int{5}, 0, 3, 0, 0, 3), g.constI("s2s", []int{5}, 1, 1, 1, 1, 1)},
		map[string]any{"begin_mask": attrInt(1 | 8), "end_mask": attrInt(1 | 8), "shrink_axis_mask": attrInt(2), "new_axis_mask": attrInt(4)})
	// Shape -> StridedSlice -> Pack -> Reshape with the dynamic batch, then
	// Unpack / arithmetic / Pack, Tile by the batch, Concat, Squeeze, ExpandDims, Exp, Slice.
	shape := g.node("shape", "Shape", []string{x}, nil)
	n := g.node("n", "StridedSlice", []string{shape, g.constI("b0", []int{1}, 0), g.constI("e1", []int{1}, 1), g.constI("st1", []int{1}, 1)}, map[string]any{"shrink_axis_mask": attrInt(1)})
	rs := g.node("rs", "Reshape", []string{x, g.node("rshape", "Pack", []string{n, g.constI("c63", nil, 63), g.constI("c4", nil, 4)}, map[string]any{"axis": attrInt(0)})}, nil)
	un := g.node("un", "Unpack", []string{rs, g.constI("unused", nil, 0)}, map[string]any{"num": attrInt(4), "axis": attrInt(2)})
	d := g.node("d", "Sub", []string{un + ":2", un}, nil)
	e := g.node("e", "Exp", []string{g.node("es", "Mul", []string{un + ":3", g.constF("k", nil, []float32{0.01})}, nil)}, nil)
	pk := g.node("pk", "Pack", []string{d, e, un + ":1"}, map[string]any{"axis": attrInt(2)})
	anch := g.randF("anchors", 0, 1, 1, 63, 3)
	tl := g.node("tl", "Tile", []string{anch, g.node("mult", "Pack", []string{n, one, one}, map[string]any{"axis": attrInt(0)})}, nil)
	cat := g.node("cat", "ConcatV2", []string{pk, tl, g.constI("ax", nil, -1)}, nil)
	ex := g.node("ex", "ExpandDims", []string{cat, g.constI("ax2", nil, 2)}, nil)
	sq := g.node("sq", "Squeeze", []string{ex}, map[string]any{"squeeze_dims": attrInts(2)})
	sl := g.node("sl", "Slice", []string{sq, g.constI("slb", []int{3}, 0, 5, 1), g.constI("sls", []int{3}, -1, 50, 4)}, nil)
	// Unpack on axis 0 (kept with a leading 1 inside the ONNX graph) and Pack again.
	t0 := g.node("t0", "Transpose", []string{g.node("r2", "Reshape", []string{sl, g.constI("r2s", []int{2}, -1, 4)}, nil), g.constI("p2", []int{2}, 1, 0)}, nil)
	u0 := g.node("u0", "Unpack", []string{t0}, map[string]any{"num": attrInt(4), "axis": attrInt(0)})
	s0 := g.node("s0", "Sub", []string{u0 + ":3", u0 + ":1"}, nil)
	p0 := g.node("p0", "Pack", []string{s0, u0, g.node("c0", "Relu6", []string{u0 + ":2"}, nil)}, map[string]any{"axis": attrInt(0)})
	return g, []string{relu, sig, tr, ss, ss2, sl, p0}
}

func runORTDynamic(t *testing.T, path string, input []float32, shape []int64, outputs []string) [][]float32 {
	t.Helper()
	initORT(t)
	in, err := ort.NewTensor(ort.NewShape(shape...), input)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	s, err := ort.NewDynamicAdvancedSession(path, []string{"x"}, outputs, nil)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	defer s.Destroy()
	outs := make([]ort.Value, len(outputs))
	if err := s.Run([]ort.Value{in}, outs); err != nil {
		t.Fatalf("run %s: %v", path, err)
	}
	var res [][]float32
	for _, o := range outs {
		defer o.Destroy()
		ft, ok := o.(*ort.Tensor[float32])
		if !ok {
			t.Fatalf("output is %T, want float32 tensor", o)
		}
		res = append(res, append([]float32(nil), ft.GetData()...))
	}
	return res
}

// TestOpsMatchTFJS converts a synthetic graph using every supported op and
// compares ONNX Runtime with TF.js on a batch of 3.
func TestOpsMatchTFJS(t *testing.T) {
	root := moduleRoot(t)
	ref := filepath.Join(root, "tools", "tfjs-ref")
	realpart.File(t, realpart.TFJSRef, filepath.Join(ref, "node_modules", "@tensorflow", "tfjs"))
	g, outs := opsGraph()
	dir := t.TempDir()
	modelPath := g.write(t, dir)
	var opts Options
	opts.Input = "x"
	for _, o := range outs {
		opts.Outputs = append(opts.Outputs, Output{Tensor: o, Name: o})
	}
	m, err := Convert(modelPath, opts)
	if err != nil {
		t.Fatal(err)
	}
	onnxPath := filepath.Join(dir, "ops.onnx")
	if err := onnxgraph.Save(m, onnxPath); err != nil {
		t.Fatal(err)
	}
	const n = 3
	rng := rand.New(rand.NewPCG(3, 4))
	input := make([]float32, n*7*9*4)
	for i := range input {
		input[i] = rng.Float32()*4 - 2
	}
	inPath, outPath := filepath.Join(dir, "in.f32"), filepath.Join(dir, "out.json")
	if err := os.WriteFile(inPath, f32bytes(input), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(ref, "run.js"), modelPath, inPath, strconv.Itoa(n), outPath, "--input", "x", "--shape", "7,9,4"}
	for _, o := range outs {
		args = append(args, "--output", o)
	}
	var log bytes.Buffer
	cmd := exec.Command("node", args...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		t.Fatalf("tfjs reference failed: %v\n%s", err, log.String())
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]struct {
		Shape []int64
		Data  []float32
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	got := runORTDynamic(t, onnxPath, input, []int64{n, 7, 9, 4}, outs)
	for i, o := range outs {
		w := want[o]
		if len(w.Data) != len(got[i]) {
			t.Errorf("%s: onnx runtime gives %d values, tf.js %d (shape %v)", o, len(got[i]), len(w.Data), w.Shape)
			continue
		}
		d := maxAbsDiff(got[i], w.Data)
		t.Logf("%-6s shape %v: max |diff| %.3g", o, w.Shape, d)
		if d > 1e-4 {
			t.Errorf("%s: differs from tf.js by %.3g", o, d)
		}
	}
}

func TestErrors(t *testing.T) {
	base := func() *graphBuilder {
		g := newGraphBuilder()
		x := g.placeholder("x", -1, 4, 4, 3)
		g.node("y", "Relu", []string{x}, nil)
		return g
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string) string
		opts  Options
		err   string
	}{
		{"unsupported op", func(t *testing.T, dir string) string {
			g := base()
			g.node("Foo/bar", "NonMaxSuspension", []string{"y"}, nil)
			return g.write(t, dir)
		}, Options{Input: "x", Outputs: []Output{{"Foo/bar", "out"}}}, `tfjs: node "Foo/bar": op "NonMaxSuspension" is not supported`},
		{"missing model", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "model.json")
		}, Options{}, "tfjs: model file DIR/model.json does not exist: check the path to model.json"},
		{"corrupt json", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "model.json")
			os.WriteFile(p, []byte(`{"modelTopology": {"node": [`), 0o644)
			return p
		}, Options{}, "tfjs: DIR/model.json is not valid TF.js model JSON: unexpected end of JSON input"},
		{"layers model", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "model.json")
			os.WriteFile(p, []byte(`{"modelTopology": {"class_name": "Sequential"}}`), 0o644)
			return p
		}, Options{}, "tfjs: DIR/model.json has no modelTopology.node: only TF.js graph models (tf.loadGraphModel) are supported"},
		{"missing shard", func(t *testing.T, dir string) string {
			g := base()
			g.randF("w", 0, 1, 2)
			p := g.write(t, dir)
			os.Remove(filepath.Join(dir, "group1-shard1of1.bin"))
			return p
		}, Options{}, "tfjs: weight shard DIR/group1-shard1of1.bin (listed in DIR/model.json) does not exist: copy all shard files next to model.json"},
		{"truncated shard", func(t *testing.T, dir string) string {
			g := base()
			g.randF("w", 0, 1, 2)
			g.data = g.data[:5]
			return g.write(t, dir)
		}, Options{}, `tfjs: DIR/model.json: weights group 1 ([group1-shard1of1.bin]): weight "w" needs 8 bytes but the shards end after 5: a shard is truncated`},
		{"unknown input", func(t *testing.T, dir string) string {
			return base().write(t, dir)
		}, Options{Input: "nope"}, `tfjs: DIR/model.json: input tensor "nope" is not in the graph: check --input`},
		{"unknown output", func(t *testing.T, dir string) string {
			return base().write(t, dir)
		}, Options{Input: "x", Outputs: []Output{{"zz", "out"}}}, `tfjs: DIR/model.json: tensor "zz" (used by "outputs") is not in the graph`},
		{"non-constant filter", func(t *testing.T, dir string) string {
			g := base()
			g.node("c", "Conv2D", []string{"x", "y"}, map[string]any{"padding": attrStr("SAME")})
			return g.write(t, dir)
		}, Options{Input: "x", Outputs: []Output{{"c", "out"}}}, `tfjs: node "c" (Conv2D): filter must be a constant`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Convert(c.setup(t, dir), c.opts)
			want := strings.ReplaceAll(c.err, "DIR", dir)
			if err == nil || err.Error() != want {
				t.Fatalf("error\n got: %v\nwant: %s", err, want)
			}
			if c.name == "unsupported op" && !errors.Is(err, ErrUnsupportedOp) {
				t.Fatalf("%v does not match ErrUnsupportedOp", err)
			}
		})
	}
}

// TestQuantizedWeights checks uint8 / uint16 / float16 dequantisation.
func TestQuantizedWeights(t *testing.T) {
	min, scale := -1.0, 0.5
	cases := []struct {
		q    string
		data []byte
		want []float64
	}{
		{"uint8", []byte{0, 1, 4}, []float64{-1, -0.5, 1}},
		{"uint16", []byte{0, 0, 1, 0, 0, 1}, []float64{-1, -0.5, 127}},
		{"float16", []byte{0x00, 0x3c, 0x00, 0xc0, 0x00, 0x35}, []float64{1, -2, 0.3125}},
	}
	for _, c := range cases {
		w := weightSpec{Name: "w", Shape: []int64{3}, Dtype: "float32"}
		w.Quantization = &struct {
			Dtype string   `json:"dtype"`
			Min   *float64 `json:"min"`
			Scale *float64 `json:"scale"`
		}{c.q, &min, &scale}
		got, n, err := decodeWeight(w, c.data)
		if err != nil || n != len(c.data) {
			t.Fatalf("%s: %v (used %d bytes)", c.q, err, n)
		}
		for i := range c.want {
			if got.Data[i] != c.want[i] {
				t.Fatalf("%s: got %v want %v", c.q, got.Data, c.want)
			}
		}
	}
}
