package prune

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/osprey-vision/osprey/infer/quant"
)

// ConvMACs counts the multiply-accumulates of one inference (batch 1) in
// m's Conv layers, the bulk of a CNN's work. The output sizes come from
// ONNX Runtime: every Conv output is added as a graph output and the model
// is run once on zeros. QDQ models count like their FP32 parent: the
// Convs are the same, only their operands are 8-bit.
func ConvMACs(m *onnx.ModelProto) (int64, error) {
	shape, err := quant.InputShape(m)
	if err != nil {
		return 0, err
	}
	ix := indexGraph(m.GetGraph())
	aug := proto.Clone(m).(*onnx.ModelProto)
	g := aug.GetGraph()
	g.Output = g.Output[:0]
	var convs []*onnx.NodeProto
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() != "Conv" || len(n.GetInput()) < 2 {
			continue
		}
		convs = append(convs, n)
		g.Output = append(g.Output, &onnx.ValueInfoProto{
			Name: n.GetOutput()[0],
			Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{ElemType: int32(onnx.TensorProto_FLOAT)}}},
		})
	}
	if len(convs) == 0 {
		return 0, nil
	}
	b, err := proto.Marshal(aug)
	if err != nil {
		return 0, fmt.Errorf("prune: encode model for MAC count: %w", err)
	}
	names := make([]string, len(convs))
	for i, n := range convs {
		names[i] = n.GetOutput()[0]
	}
	s, err := quant.NewSession(b, "MAC count model", names, quant.SessionConfig{IntraOpThreads: 1})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	size := int64(1)
	for _, d := range shape {
		size *= d
	}
	res, err := s.Run(shape, make([]float32, size))
	if err != nil {
		return 0, err
	}
	var macs int64
	for i, n := range convs {
		wdims, err := weightDims(n, ix)
		if err != nil {
			return 0, err
		}
		out := res[i].Shape
		if len(out) != 4 || len(wdims) != 4 {
			continue
		}
		// Per output element: (input channels / group) x kh x kw.
		macs += out[1] * out[2] * out[3] * wdims[1] * wdims[2] * wdims[3]
	}
	return macs, nil
}

// weightDims returns a Conv's weight shape, following a DequantizeLinear
// (QDQ models) back to its integer initializer.
func weightDims(n *onnx.NodeProto, ix *index) ([]int64, error) {
	name := n.GetInput()[1]
	for range 3 {
		if t := ix.inits[name]; t != nil {
			return t.GetDims(), nil
		}
		p := ix.producer[name]
		if p == nil || len(p.GetInput()) == 0 {
			break
		}
		name = p.GetInput()[0]
	}
	return nil, fmt.Errorf("%w: weight of Conv %s is not a constant", quant.ErrModel, n.GetName())
}
