package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// QuantizeWeights returns a weight-only INT8 copy of m: Conv/MatMul/Gemm
// weights are stored as int8 (per output channel for Conv) behind a
// DequantizeLinear, compute stays FP32. The file shrinks about 4x; speed is
// the FP32 model's or a little worse (the weights are dequantised per run).
func QuantizeWeights(m *onnx.ModelProto, opts Options) (*onnx.ModelProto, Report, error) {
	o := opts
	o.Ops = []string{"Conv", "MatMul", "Gemm"}
	p, err := makePlan(m, o)
	if err != nil {
		return nil, Report{}, err
	}
	out := proto.Clone(m).(*onnx.ModelProto)
	g := out.GetGraph()
	ix := indexGraph(g)
	b := &qdqBuilder{perChannel: p.perChannel, actScale: map[string]float32{}, weightDQ: map[string]string{}}
	var nodes []*onnx.NodeProto
	rep := Report{PerChannel: p.perChannel, OpsetBumpedFrom: p.bumpFrom, ExcludedNodes: p.excluded}
	for i, n := range g.GetNode() {
		if p.quantNodes[m.GetGraph().GetNode()[i]] {
			// Biases stay FP32: without an activation scale there is no
			// int32 bias scale.
			pre, err := b.quantizeWeights(n, ix, nil)
			if err != nil {
				return nil, rep, err
			}
			nodes = append(nodes, pre...)
			rep.QuantizedNodes++
		}
		nodes = append(nodes, n)
	}
	rep.Weights = len(b.weightDQ)
	if rep.Weights == 0 {
		return nil, rep, fmt.Errorf("%w: the model has no constant Conv/MatMul/Gemm weights to quantise", ErrOptions)
	}
	g.Node = nodes
	g.Initializer = append(g.Initializer, b.inits...)
	g.ValueInfo = nil
	finishOpset(out, p.bumpFrom)
	removeUnusedInitializers(g)
	return out, rep, nil
}

func finishOpset(m *onnx.ModelProto, bumpFrom int64) {
	if bumpFrom == 0 {
		return
	}
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			o.Version = 13
		}
	}
	if m.GetIrVersion() < 7 {
		m.IrVersion = 7
	}
}

// float16 converts an IEEE float32 to IEEE half precision bits, rounding to
// nearest even, saturating to ±Inf and keeping NaN.
func float16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b >> 23) & 0xff)
	mant := b & 0x7fffff
	switch {
	case exp == 0xff:
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127+15 >= 0x1f:
		return sign | 0x7c00
	case exp-127+15 <= 0:
		// Subnormal half (or zero).
		e := exp - 127 + 15
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp-127+15)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, which is still correct
	}
	return sign | uint16(h)
}

func toFP16Tensor(t *onnx.TensorProto) (*onnx.TensorProto, error) {
	v, err := floatData(t)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(raw[2*i:], float16(x))
	}
	return &onnx.TensorProto{Name: t.GetName(), Dims: t.GetDims(), DataType: int32(onnx.TensorProto_FLOAT16), RawData: raw}, nil
}

// fp32Inputs are operator inputs that must stay float32 whatever the
// compute type (sizes and coordinates, not data).
var fp32Inputs = map[string][]int{"Resize": {1, 2}, "Upsample": {1}}

// ConvertFP16 returns a copy of m computing in FP16: float initializers and
// constants become float16, a Cast after each float input and before each
// float output keeps the model's interface FP32.
func ConvertFP16(m *onnx.ModelProto) (*onnx.ModelProto, error) {
	out := proto.Clone(m).(*onnx.ModelProto)
	g := out.GetGraph()
	keep := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, i := range fp32Inputs[n.GetOpType()] {
			if i < len(n.GetInput()) {
				keep[n.GetInput()[i]] = true
			}
		}
	}
	for i, t := range g.GetInitializer() {
		if onnx.TensorProto_DataType(t.GetDataType()) != onnx.TensorProto_FLOAT || keep[t.GetName()] {
			continue
		}
		h, err := toFP16Tensor(t)
		if err != nil {
			return nil, err
		}
		g.Initializer[i] = h
	}
	const f32, f16 = int64(onnx.TensorProto_FLOAT), int64(onnx.TensorProto_FLOAT16)
	for _, n := range g.GetNode() {
		for _, a := range n.GetAttribute() {
			switch {
			case a.GetT() != nil && onnx.TensorProto_DataType(a.GetT().GetDataType()) == onnx.TensorProto_FLOAT && !keep[n.GetOutput()[0]]:
				h, err := toFP16Tensor(a.GetT())
				if err != nil {
					return nil, err
				}
				a.T = h
			case n.GetOpType() == "Cast" && a.GetName() == "to" && a.GetI() == f32:
				a.I = f16
			}
		}
		// ConstantOfShape without a value makes float32 zeros: give it an
		// explicit float16 zero. Ops whose float attributes are plain
		// numbers (LeakyRelu, old Clip) work unchanged in FP16.
		if n.GetOpType() == "ConstantOfShape" && len(n.GetAttribute()) == 0 {
			n.Attribute = append(n.Attribute, &onnx.AttributeProto{Name: "value", Type: onnx.AttributeProto_TENSOR,
				T: &onnx.TensorProto{Dims: []int64{1}, DataType: int32(onnx.TensorProto_FLOAT16), RawData: []byte{0, 0}}})
		}
	}
	var head []*onnx.NodeProto
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, in := range g.GetInput() {
		if inits[in.GetName()] || in.GetType().GetTensorType().GetElemType() != int32(onnx.TensorProto_FLOAT) {
			continue
		}
		name := in.GetName()
		cast := name + "_fp16"
		for _, n := range g.GetNode() {
			for j, x := range n.GetInput() {
				if x == name {
					n.Input[j] = cast
				}
			}
		}
		head = append(head, node("Cast", name+"_CastToFP16", []string{name}, []string{cast}, attrInt("to", f16)))
	}
	var tail []*onnx.NodeProto
	for _, o := range g.GetOutput() {
		if o.GetType().GetTensorType().GetElemType() != int32(onnx.TensorProto_FLOAT) {
			continue
		}
		name := o.GetName()
		inner := name + "_fp16"
		for _, n := range g.GetNode() {
			for j, x := range n.GetOutput() {
				if x == name {
					n.Output[j] = inner
				}
			}
			for j, x := range n.GetInput() {
				if x == name {
					n.Input[j] = inner
				}
			}
		}
		tail = append(tail, node("Cast", name+"_CastToFP32", []string{inner}, []string{name}, attrInt("to", f32)))
	}
	g.Node = append(append(head, g.GetNode()...), tail...)
	g.ValueInfo = nil
	return out, nil
}
