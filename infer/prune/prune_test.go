package prune

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
	"github.com/osprey-vision/osprey/infer/quant"
)

var synthShape = []int64{1, 4, 8, 8}

func randFloats(rng *rand.Rand, n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64() * scale)
	}
	return out
}

// synthModel is an inverted-residual block with a residual side branch:
//
//	x -> expand (3x3, 8 ch) -> Clip 0..6 -> depthwise 3x3 (no padding) -> Relu -> project 1x1 (6 ch) -> y
//	x -> side 1x1 (4 ch) -> Add(x) -> z      (a residual sum: not prunable)
//
// Channels 6 and 7 of the expansion have tiny filters and a large bias, so
// after the activations they are nearly constant: the smallest L1 norms,
// and a refit bias can absorb them where dropping them alone cannot. (The
// depthwise Conv has no padding: zero padding would make those channels
// vary at the border.)
func synthModel(t *testing.T) *onnx.ModelProto {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	g := onnxgraph.NewGraph("synth")
	g.AddInput("x", onnxgraph.Float, onnxgraph.Shape(1, 4, 8, 8)...)
	we := randFloats(rng, 8*4*3*3, 0.3)
	be := randFloats(rng, 8, 0.2)
	for c := 6; c < 8; c++ {
		for i := range 4 * 3 * 3 {
			we[c*36+i] *= 0.01
		}
		be[c] = 2 + float32(c-6)
	}
	g.AddInitializer(onnxgraph.FloatTensor("we", []int64{8, 4, 3, 3}, we))
	g.AddInitializer(onnxgraph.FloatTensor("be", []int64{8}, be))
	g.AddInitializer(onnxgraph.FloatTensor("lo", nil, []float32{0}))
	g.AddInitializer(onnxgraph.FloatTensor("hi", nil, []float32{6}))
	wd := randFloats(rng, 8*9, 0.4)
	for i := 6 * 9; i < len(wd); i++ {
		wd[i] = float32(math.Abs(float64(wd[i]))) // so Relu keeps the constants
	}
	g.AddInitializer(onnxgraph.FloatTensor("wd", []int64{8, 1, 3, 3}, wd))
	g.AddInitializer(onnxgraph.FloatTensor("bd", []int64{8}, randFloats(rng, 8, 0.1)))
	g.AddInitializer(onnxgraph.FloatTensor("wp", []int64{6, 8, 1, 1}, randFloats(rng, 6*8, 0.5)))
	g.AddInitializer(onnxgraph.FloatTensor("ws", []int64{4, 4, 1, 1}, randFloats(rng, 16, 0.5)))
	pad := onnxgraph.AttrInts("pads", 1, 1, 1, 1)
	g.AddNode("Conv", []string{"x", "we", "be"}, []string{"e"}, pad)
	g.AddNode("Clip", []string{"e", "lo", "hi"}, []string{"e6"})
	g.AddNode("Conv", []string{"e6", "wd", "bd"}, []string{"d"}, onnxgraph.AttrInt("group", 8))
	g.AddNode("Relu", []string{"d"}, []string{"dr"})
	g.AddNode("Conv", []string{"dr", "wp"}, []string{"y"})
	g.AddNode("Conv", []string{"x", "ws"}, []string{"s"})
	g.AddNode("Add", []string{"s", "x"}, []string{"z"})
	g.AddOutput("y", onnxgraph.Float, onnxgraph.Shape(1, 6, 6, 6)...)
	g.AddOutput("z", onnxgraph.Float, onnxgraph.Shape(1, 4, 8, 8)...)
	m, err := g.Model(13)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func synthFrames(seed uint64, n int) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	frames := make([][]float32, n)
	for i := range frames {
		frames[i] = randFloats(rng, 4*8*8, 1)
	}
	return frames
}

func run(t *testing.T, m *onnx.ModelProto, in []float32) []quant.Output {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := quant.NewSession(b, "test model", nil, quant.SessionConfig{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(synthShape, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// relErr is max |a-b| over max |a|.
func relErr(a, b []float32) float64 {
	var d, s float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
		s = max(s, math.Abs(float64(a[i])))
	}
	return d / s
}

func TestPruneSynthRefit(t *testing.T) {
	needORT(t)
	m := synthModel(t)
	names, err := Plan(m, Options{Ratio: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "e" {
		t.Fatalf("prunable Convs %v, want only the expansion e (the side Conv feeds a residual Add, the others are sinks or depthwise)", names)
	}
	p, rep, err := Prune(m, synthFrames(1, 16), synthShape, Options{Ratio: 0.25, Multiple: 1, Importance: L1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed != 2 || rep.Channels != 8 || rep.ParamsAfter >= rep.ParamsBefore {
		t.Fatalf("report %+v, want 2 of 8 channels removed, fewer parameters", rep)
	}
	// The tiny filters (channels 6, 7) went; the Convs have their new sizes.
	dims := map[string][]int64{}
	inits := map[string]*onnx.TensorProto{}
	for _, ti := range p.GetGraph().GetInitializer() {
		inits[ti.GetName()] = ti
	}
	for _, n := range p.GetGraph().GetNode() {
		if n.GetOpType() == "Conv" {
			dims[n.GetOutput()[0]] = inits[n.GetInput()[1]].GetDims()
		}
	}
	for name, want := range map[string][]int64{"e": {6, 4, 3, 3}, "d": {6, 1, 3, 3}, "y": {6, 6, 1, 1}, "s": {4, 4, 1, 1}} {
		if !equal(dims[name], want) {
			t.Fatalf("Conv %s weight %v, want %v", name, dims[name], want)
		}
	}
	// Dropping the channels without the refit: the sink keeps its weights
	// for the kept channels and no bias.
	drop := dropOnly(t, m, []int{0, 1, 2, 3, 4, 5})
	for _, f := range synthFrames(99, 4) { // frames the refit did not see
		ref, got, naive := run(t, m, f), run(t, p, f), run(t, drop, f)
		e, en := relErr(ref[0].Data, got[0].Data), relErr(ref[0].Data, naive[0].Data)
		t.Logf("relative error: refit %.2g, dropped only %.2g", e, en)
		if e > 0.02 {
			t.Fatalf("pruned output drifts %.3g (relative) from the original after the refit", e)
		}
		if en < 10*e {
			t.Fatalf("refit error %.3g is not clearly below the plain drop's %.3g: the test proves nothing", e, en)
		}
		if relErr(ref[1].Data, got[1].Data) != 0 {
			t.Fatalf("the residual branch changed")
		}
	}
}

// dropOnly removes the expansion's channels outside keep with no refit:
// the projection keeps its weights for the kept channels.
func dropOnly(t *testing.T, m *onnx.ModelProto, keep []int) *onnx.ModelProto {
	t.Helper()
	out := proto.Clone(m).(*onnx.ModelProto)
	g := out.GetGraph()
	ix := indexGraph(g)
	groups, _ := findGroups(g)
	gr := groups[0]
	sk := gr.sinks[0].conv
	w, err := floats(ix.inits[sk.GetInput()[1]])
	if err != nil {
		t.Fatal(err)
	}
	var cols []float32
	for o := range 6 {
		for _, c := range keep {
			cols = append(cols, w[o*8+c])
		}
	}
	g.Initializer = append(g.Initializer, onnxgraph.FloatTensor("wp_drop", []int64{6, int64(len(keep)), 1, 1}, cols))
	sk.Input[1] = "wp_drop"
	for _, n := range []*onnx.NodeProto{gr.conv, gr.dw[0]} {
		s := &convState{dims: append([]int64(nil), ix.inits[n.GetInput()[1]].GetDims()...)}
		s.w, _ = floats(ix.inits[n.GetInput()[1]])
		s.b, _ = floats(ix.inits[n.GetInput()[2]])
		s.keepRows(keep)
		wn, bn := n.GetOutput()[0]+"_w_drop", n.GetOutput()[0]+"_b_drop"
		g.Initializer = append(g.Initializer, onnxgraph.FloatTensor(wn, s.dims, s.w), onnxgraph.FloatTensor(bn, []int64{int64(len(keep))}, s.b))
		n.Input[1], n.Input[2] = wn, bn
	}
	setAttrInt(gr.dw[0], "group", int64(len(keep)))
	return out
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPruneBadInput(t *testing.T) {
	m := synthModel(t)
	for _, c := range []struct {
		name  string
		opts  Options
		isErr error
		text  string
	}{
		{"ratio zero", Options{Ratio: 0}, ErrOptions, "prune: bad options: --ratio 0 is outside (0, 1): give the share of channels to remove, e.g. 0.25"},
		{"ratio one", Options{Ratio: 1}, ErrOptions, "prune: bad options: --ratio 1 is outside (0, 1): give the share of channels to remove, e.g. 0.25"},
		{"ratio negative", Options{Ratio: -0.1}, ErrOptions, "prune: bad options: --ratio -0.1 is outside (0, 1): give the share of channels to remove, e.g. 0.25"},
		{"importance", Options{Ratio: 0.5, Importance: "taylor"}, ErrOptions, `prune: bad options: importance "taylor": use l1, bn or energy`},
		{"bn on folded batch norm", Options{Ratio: 0.5, Importance: BNScale}, ErrOptions,
			"prune: bad options: importance bn needs a BatchNormalization right after each Conv; e has none (models imported from TF have their batch norm folded into the Conv weights): use --importance l1 or energy"},
		{"all excluded", Options{Ratio: 0.5, Exclude: []string{"e"}}, ErrNotPrunable, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Plan(m, c.opts)
			if !errors.Is(err, c.isErr) {
				t.Fatalf("error %v, want %v", err, c.isErr)
			}
			if c.text != "" && err.Error() != c.text {
				t.Fatalf("error\n%s\nwant\n%s", err, c.text)
			}
		})
	}
}

// residualModel has two Convs, neither prunable: one feeds a residual Add,
// the other the graph output.
func residualModel(t *testing.T) *onnx.ModelProto {
	t.Helper()
	g := onnxgraph.NewGraph("residual")
	g.AddInput("x", onnxgraph.Float, onnxgraph.Shape(1, 4, 8, 8)...)
	g.AddInitializer(onnxgraph.FloatTensor("w", []int64{4, 4, 1, 1}, make([]float32, 16)))
	g.AddNode("Conv", []string{"x", "w"}, []string{"c"})
	g.AddNode("Add", []string{"c", "x"}, []string{"y"})
	g.AddNode("Conv", []string{"y", "w"}, []string{"z"})
	g.AddOutput("z", onnxgraph.Float, onnxgraph.Shape(1, 4, 8, 8)...)
	m, err := g.Model(13)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPruneNoPrunableConv(t *testing.T) {
	_, err := Plan(residualModel(t), Options{Ratio: 0.25})
	want := "prune: no prunable Conv (2 Convs): a Conv is prunable when its channels reach only channel-wise ops, depthwise Convs and 1x1 Convs; " +
		"c: y (Add) joins it with another branch (a residual sum keeps its channel set); z: its channels reach the graph output z"
	if !errors.Is(err, ErrNotPrunable) || err.Error() != want {
		t.Fatalf("error\n%v\nwant\n%s", err, want)
	}
}
