package quant

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
)

// scaledTiny is tinyModel behind the SSD's input scale, x*2/255-1.
func scaledTiny(t *testing.T) *onnx.ModelProto {
	t.Helper()
	g := onnxgraph.NewGraph("scaled")
	g.AddInput("x", onnx.TensorProto_FLOAT, onnxgraph.Shape(1, 2, 2, 2)...)
	g.AddInitializer(onnxgraph.FloatTensor("a", nil, []float32{2.0 / 255}))
	g.AddInitializer(onnxgraph.FloatTensor("one", nil, []float32{1}))
	g.AddInitializer(onnxgraph.FloatTensor("W", []int64{2, 2, 1, 1}, []float32{0.5, -0.25, 1.27, -2.54}))
	g.AddInitializer(onnxgraph.FloatTensor("B", []int64{2}, []float32{0.1, -0.2}))
	g.AddNode("Mul", []string{"x", "a"}, []string{"m"})
	g.AddNode("Sub", []string{"m", "one"}, []string{"s"})
	g.AddNode("Conv", []string{"s", "W", "B"}, []string{"y"})
	g.AddOutput("y", onnx.TensorProto_FLOAT, onnxgraph.Shape(1, 2, 2, 2)...)
	m, err := g.Model(13)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestUint8Input(t *testing.T) {
	frames := [][]float32{{0, 255, 10, 200, 30, 40, 50, 60}, {255, 0, 128, 127, 1, 2, 3, 4}}
	q, _, err := QuantizeStatic(scaledTiny(t), frames, []int64{1, 2, 2, 2}, Options{Method: MinMax, QuantizeHeads: true, QuantizeTail: true})
	if err != nil {
		t.Fatal(err)
	}
	u, rep, err := Uint8Input(q)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Input != "x" || rep.ZeroPoint != 127 || rep.BiasFixed != 1 || math.Abs(float64(rep.Offset)-1.0/255) > 1e-7 {
		t.Fatalf("report %+v", rep)
	}
	g := u.GetGraph()
	if g.GetInput()[0].GetType().GetTensorType().GetElemType() != int32(onnx.TensorProto_UINT8) {
		t.Fatal("input is not uint8")
	}
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Mul" || n.GetOpType() == "Sub" || n.GetOpType() == "QuantizeLinear" && n.GetInput()[0] == "s" {
			t.Fatalf("%s %s left in the graph", n.GetOpType(), n.GetName())
		}
	}
	// Bias: b - offset * sum(W) per channel, at scale (2/255) * weight scale.
	ix := indexGraph(g)
	var conv *onnx.NodeProto
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Conv" {
			conv = n
		}
	}
	bdq := ix.producer[conv.GetInput()[2]]
	bq, bs := ix.inits[bdq.GetInput()[0]], ix.inits[bdq.GetInput()[1]]
	scales, err := floatData(bs)
	if err != nil {
		t.Fatal(err)
	}
	for c, want := range []float64{0.1 - (0.5-0.25)/255, -0.2 - (1.27-2.54)/255} {
		got := float64(int32(binary.LittleEndian.Uint32(bq.GetRawData()[4*c:]))) * float64(scales[c])
		if math.Abs(got-want) > float64(scales[c]) {
			t.Errorf("channel %d bias %g, want %g (step %g)", c, got, want, scales[c])
		}
	}
	// The original model's input is untouched.
	if q.GetGraph().GetInput()[0].GetType().GetTensorType().GetElemType() != int32(onnx.TensorProto_FLOAT) {
		t.Fatal("Uint8Input changed its argument")
	}
	// A model that does not start with a scale is refused with the reason.
	tq, _, err := QuantizeStatic(tinyModel(t), frames, []int64{1, 2, 2, 2}, Options{Method: MinMax, QuantizeHeads: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Uint8Input(tq); err == nil || !strings.Contains(err.Error(), "input x feeds a QuantizeLinear (x_QuantizeLinear): its first operation must be one Mul by a constant") {
		t.Fatalf("tiny model without an input scale: %v", err)
	}
}
