package quant

import (
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Uint8Report says what Uint8Input did.
type Uint8Report struct {
	Input string // the image input, now uint8
	// Scale and ZeroPoint dequantise the pixels: the model's first
	// operation, x*a+b, becomes (x-ZeroPoint)*Scale.
	Scale     float32
	ZeroPoint uint8
	// Offset is (x-ZeroPoint)*Scale - (x*a+b), the same for every x when
	// -b/a is not a whole number; BiasFixed Convs reading the input had
	// their bias corrected for it.
	Offset    float32
	BiasFixed int
}

// Uint8Input makes a static QDQ model take uint8 pixels as they are, when
// its first operation is a linear scale of the image (Mul by a constant,
// then Add or Sub of one: the SSD's x*2/255-1) whose result is quantised.
// The scale becomes the DequantizeLinear of the input itself, so ONNX
// Runtime feeds the pixels straight into the first QLinearConv: no float
// conversion, scaling or quantisation of the input at run time.
//
// When -b/a is not a whole number (127.5 for the SSD) the zero point is
// rounded and the constant offset that leaves is taken out of the biases of
// the Convs that read the input (exact away from the image border, where
// the zero padding now stands for a value Offset away from zero).
func Uint8Input(m *onnx.ModelProto) (*onnx.ModelProto, Uint8Report, error) {
	out := proto.Clone(m).(*onnx.ModelProto)
	g := out.GetGraph()
	ix := indexGraph(g)
	var rep Uint8Report
	fail := func(format string, args ...any) (*onnx.ModelProto, Uint8Report, error) {
		return nil, rep, fmt.Errorf("%w: cannot make the input uint8: "+format+" (leave out --uint8-input)", append([]any{ErrModel}, args...)...)
	}
	var input *onnx.ValueInfoProto
	for _, in := range g.GetInput() {
		if ix.inits[in.GetName()] == nil {
			if input != nil {
				return fail("the model has more than one input")
			}
			input = in
		}
	}
	if input == nil || input.GetType().GetTensorType().GetElemType() != int32(onnx.TensorProto_FLOAT) {
		return fail("no float image input")
	}
	x := input.GetName()
	rep.Input = x
	only := func(t, op string) (*onnx.NodeProto, bool) {
		cs := ix.consumers[t]
		if len(cs) != 1 || cs[0].GetOpType() != op || ix.outputs[t] {
			return nil, false
		}
		return cs[0], true
	}
	// The image feeds one Mul; Shape nodes may read it too (they work on
	// any element type).
	var mul *onnx.NodeProto
	for _, c := range ix.consumers[x] {
		switch {
		case c.GetOpType() == "Mul" && mul == nil:
			mul = c
		case c.GetOpType() == "Shape":
		default:
			return fail("input %s feeds a %s (%s): its first operation must be one Mul by a constant", x, c.GetOpType(), c.GetName())
		}
	}
	if mul == nil || ix.outputs[x] {
		return fail("input %s does not feed a Mul", x)
	}
	a, ok := scalarOther(ix, mul, x)
	if !ok {
		return fail("%s does not multiply %s by a constant", mul.GetName(), x)
	}
	cs := ix.consumers[mul.GetOutput()[0]]
	if len(cs) != 1 || (cs[0].GetOpType() != "Sub" && cs[0].GetOpType() != "Add") || cs[0].GetInput()[0] != mul.GetOutput()[0] {
		return fail("%s is not followed by one Add or Sub of a constant", mul.GetName())
	}
	shift := cs[0]
	b, ok := scalarOther(ix, shift, mul.GetOutput()[0])
	if !ok {
		return fail("%s does not add a constant", shift.GetName())
	}
	if shift.GetOpType() == "Sub" {
		b = -b
	}
	// A layout change (the SSD's NHWC -> NCHW) may sit between the scale and
	// its quantisation; it moves onto the uint8 pixels.
	scaled := shift.GetOutput()[0]
	transpose, _ := only(scaled, "Transpose")
	if transpose != nil {
		scaled = transpose.GetOutput()[0]
	}
	q, ok := only(scaled, "QuantizeLinear")
	if !ok {
		return fail("the scaled input is not quantised (quantise the model first)")
	}
	dqs := ix.consumers[q.GetOutput()[0]]
	for _, dq := range dqs {
		if dq.GetOpType() != "DequantizeLinear" {
			return fail("%s feeds a %s", q.GetName(), dq.GetOpType())
		}
	}
	zp := math.Round(float64(-b / a))
	if zp < 0 || zp > 255 || a <= 0 {
		return fail("x*%g%+g does not map 0..255 pixels onto a uint8 zero point", a, b)
	}
	rep.Scale, rep.ZeroPoint = a, uint8(zp)
	rep.Offset = float32(float64(-a)*zp - float64(b))
	if rep.Offset != 0 {
		for _, dq := range dqs {
			for _, conv := range ix.consumers[dq.GetOutput()[0]] {
				if err := fixBias(g, ix, conv, dq.GetOutput()[0], a, rep.Offset); err != nil {
					return fail("%v", err)
				}
				rep.BiasFixed++
			}
		}
	}
	// The input's own Q parameters: read by the DQs, no longer by q.
	sName, zName := q.GetInput()[1], q.GetInput()[2]
	setInit(g, floatTensor(sName, nil, []float32{a}))
	setInit(g, uint8Tensor(zName, nil, []uint8{uint8(zp)}))
	pixels := x
	if transpose != nil {
		transpose.Input[0] = x
		pixels = transpose.GetOutput()[0]
	}
	for _, dq := range dqs {
		dq.Input[0] = pixels
	}
	drop := map[*onnx.NodeProto]bool{mul: true, shift: true, q: true}
	nodes := g.Node[:0]
	for _, n := range g.GetNode() {
		if !drop[n] {
			nodes = append(nodes, n)
		}
	}
	g.Node = nodes
	input.GetType().GetTensorType().ElemType = int32(onnx.TensorProto_UINT8)
	removeUnusedInitializers(g)
	return out, rep, nil
}

// scalarOther returns the one-element constant n applies to t.
func scalarOther(ix *graphIndex, n *onnx.NodeProto, t string) (float32, bool) {
	if len(n.GetInput()) != 2 {
		return 0, false
	}
	other := n.GetInput()[0]
	if other == t {
		other = n.GetInput()[1]
	}
	return scalarInit(ix, other)
}

func scalarInit(ix *graphIndex, name string) (float32, bool) {
	t := ix.inits[name]
	if t == nil {
		return 0, false
	}
	v, err := floatData(t)
	if err != nil || len(v) != 1 {
		return 0, false
	}
	return v[0], true
}

// fixBias rewrites the int32 bias of a QDQ Conv reading in for an input
// scale that becomes newScale and an input that now reads offset too high:
// bias -= offset * sum of each output channel's weights, requantised at
// newScale * weight scale (what ONNX Runtime needs to fuse QLinearConv).
func fixBias(g *onnx.GraphProto, ix *graphIndex, conv *onnx.NodeProto, in string, newScale, offset float32) error {
	ins := conv.GetInput()
	if conv.GetOpType() != "Conv" || len(ins) < 3 || ins[0] != in {
		return fmt.Errorf("the input feeds a %s %s, not a quantised Conv with a bias", conv.GetOpType(), conv.GetName())
	}
	wdq, bdq := ix.producer[ins[1]], ix.producer[ins[2]]
	if wdq == nil || bdq == nil || wdq.GetOpType() != "DequantizeLinear" || bdq.GetOpType() != "DequantizeLinear" {
		return fmt.Errorf("conv %s has no quantised weight and bias", conv.GetName())
	}
	wq, ws := ix.inits[wdq.GetInput()[0]], ix.inits[wdq.GetInput()[1]]
	bq, bs := ix.inits[bdq.GetInput()[0]], ix.inits[bdq.GetInput()[1]]
	if wq == nil || ws == nil || bq == nil || bs == nil || onnx.TensorProto_DataType(wq.GetDataType()) != onnx.TensorProto_INT8 ||
		onnx.TensorProto_DataType(bq.GetDataType()) != onnx.TensorProto_INT32 {
		return fmt.Errorf("conv %s: weights are not int8 and bias int32", conv.GetName())
	}
	wScales, err := floatData(ws)
	if err != nil {
		return err
	}
	bScales, err := floatData(bs)
	if err != nil {
		return err
	}
	w := wq.GetRawData()
	bias := bq.GetRawData()
	channels := len(bias) / 4
	if channels == 0 || len(w)%channels != 0 || (len(wScales) != channels && len(wScales) != 1) || len(bScales) != len(wScales) {
		return fmt.Errorf("conv %s: weight, bias and scale sizes do not agree", conv.GetName())
	}
	per := len(w) / channels
	newB := make([]int32, channels)
	newS := make([]float32, len(bScales))
	for c := range channels {
		k := min(c, len(wScales)-1)
		var sum int64
		for _, v := range w[c*per : (c+1)*per] {
			sum += int64(int8(v))
		}
		real := float64(int32(uint32(bias[4*c])|uint32(bias[4*c+1])<<8|uint32(bias[4*c+2])<<16|uint32(bias[4*c+3])<<24)) * float64(bScales[k])
		real -= float64(offset) * float64(sum) * float64(wScales[k])
		s := float64(newScale) * float64(wScales[k])
		newB[c] = int32(min(max(math.Round(real/s), math.MinInt32), math.MaxInt32))
		newS[k] = float32(s)
	}
	setInit(g, int32Tensor(bq.GetName(), bq.GetDims(), newB))
	setInit(g, floatTensor(bs.GetName(), bs.GetDims(), newS))
	return nil
}

// setInit replaces the initializer called t's name with t.
func setInit(g *onnx.GraphProto, t *onnx.TensorProto) {
	for i, old := range g.GetInitializer() {
		if old.GetName() == t.GetName() {
			t.Dims = old.GetDims()
			g.Initializer[i] = t
			return
		}
	}
	g.Initializer = append(g.Initializer, t)
}
