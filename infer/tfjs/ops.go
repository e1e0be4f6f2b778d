package tfjs

import (
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/osprey-vision/osprey/infer/onnxgraph"
)

// convertNode converts one TF node and returns its output values.
func (c *converter) convertNode(n *Node) ([]*value, error) {
	var ins []*value
	for _, r := range n.Input {
		if len(r) > 0 && r[0] == '^' {
			continue
		}
		v, ok := c.vals[canonRef(r)]
		if !ok {
			return nil, fmt.Errorf("input %q was not converted", r)
		}
		ins = append(ins, v)
	}
	if need := minInputs[n.Op]; len(ins) < need {
		return nil, fmt.Errorf("expects at least %d inputs, has %d", need, len(ins))
	}
	one := func(v *value, err error) ([]*value, error) {
		if err != nil {
			return nil, err
		}
		return []*value{v}, nil
	}
	switch n.Op {
	case "Const":
		return one(c.constNode(n))
	case "Identity", "StopGradient", "Snapshot":
		return one(ins[0], nil)
	case "Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "Maximum", "Minimum", "BiasAdd":
		if len(ins) != 2 {
			return nil, fmt.Errorf("expects 2 inputs, has %d", len(ins))
		}
		if n.Op == "BiasAdd" && n.attrString("data_format") == "NCHW" {
			return nil, fmt.Errorf("data_format NCHW is not supported")
		}
		return one(c.elementwise(n.Op, ins, n.Name))
	case "AddN":
		return one(c.elementwise("AddN", ins, n.Name))
	case "Relu6", "Relu", "Sigmoid", "Exp", "Tanh", "Neg", "Sqrt", "Rsqrt":
		return one(c.unaryOp(n.Op, ins[0], n.Name))
	case "FusedBatchNorm", "FusedBatchNormV3":
		return one(c.batchNorm(n, ins))
	case "Conv2D", "DepthwiseConv2dNative":
		return one(c.conv2d(n, ins))
	case "Shape":
		return one(c.shapeOp(n, ins[0]))
	case "Reshape":
		k, err := c.constInput(ins, 1, "shape")
		if err != nil {
			return nil, err
		}
		shape, err := resolveReshape(ins[0].shape, k.Data)
		if err != nil {
			return nil, err
		}
		return one(c.reshapeTo(ins[0], shape, c.baseName(n.Name)))
	case "ExpandDims":
		k, err := c.constInput(ins, 1, "axis")
		if err != nil {
			return nil, err
		}
		ax, err := normAxis(int64(k.Data[0]), len(ins[0].shape)+1)
		if err != nil {
			return nil, err
		}
		shape := append(append(append([]int64{}, ins[0].shape[:ax]...), 1), ins[0].shape[ax:]...)
		return one(c.reshapeTo(ins[0], shape, c.baseName(n.Name)))
	case "Squeeze":
		return one(c.squeeze(n, ins[0]))
	case "ConcatV2":
		return one(c.concat(n, ins))
	case "Pack":
		return one(c.pack(n, ins))
	case "Unpack":
		return c.unpack(n, ins[0])
	case "Transpose":
		return one(c.transpose(n, ins))
	case "StridedSlice":
		return one(c.stridedSlice(n, ins))
	case "Slice":
		return one(c.slice(n, ins))
	case "Tile":
		return one(c.tile(n, ins))
	}
	return nil, unsupportedOpError{n.Op}
}

// minInputs is the number of data inputs each op reads unconditionally.
var minInputs = map[string]int{
	"Identity": 1, "StopGradient": 1, "Snapshot": 1, "AddN": 1,
	"Relu6": 1, "Relu": 1, "Sigmoid": 1, "Exp": 1, "Tanh": 1, "Neg": 1, "Sqrt": 1, "Rsqrt": 1,
	"Conv2D": 2, "DepthwiseConv2dNative": 2, "Shape": 1, "Reshape": 2, "ExpandDims": 2,
	"Squeeze": 1, "ConcatV2": 2, "Pack": 1, "Unpack": 1, "Transpose": 2, "Tile": 2,
}

// baseName reserves nothing; it returns the readable base for a node's
// output (Unique is applied when the tensor is created).
func (c *converter) baseName(name string) string { return name }

func (c *converter) constNode(n *Node) (*value, error) {
	t, ok := c.m.Weights[n.Name]
	if !ok {
		return nil, fmt.Errorf("constant has no weight in the weights manifest")
	}
	return &value{k: t, shape: t.Shape}, nil
}

func (c *converter) constInput(ins []*value, i int, what string) (*Tensor, error) {
	if i >= len(ins) {
		return nil, fmt.Errorf("missing %s input", what)
	}
	if ins[i].k == nil {
		return nil, fmt.Errorf("%s must be a constant (it is computed at run time)", what)
	}
	return ins[i].k, nil
}

var binaryFuncs = map[string]func(x, y float64) float64{
	"Add": func(x, y float64) float64 { return x + y },
	"Sub": func(x, y float64) float64 { return x - y },
	"Mul": func(x, y float64) float64 { return x * y },
	"Div": func(x, y float64) float64 { return x / y },
	"Max": math.Max,
	"Min": math.Min,
}

var onnxBinary = map[string]string{
	"Add": "Add", "AddV2": "Add", "BiasAdd": "Add", "Sub": "Sub", "Mul": "Mul",
	"RealDiv": "Div", "Div": "Div", "Maximum": "Max", "Minimum": "Min", "AddN": "Sum",
}

// elementwise converts a broadcasting element-wise op. Constants fold;
// a per-channel Mul/Add on a convolution's only use folds into its weights;
// otherwise the op runs channels-first when a 4-D input already is.
func (c *converter) elementwise(op string, ins []*value, name string) (*value, error) {
	onnxOp := onnxBinary[op]
	allConst := true
	for _, v := range ins {
		allConst = allConst && v.k != nil
	}
	if allConst {
		f := binaryFuncs[onnxOp]
		if onnxOp == "Sum" {
			f = binaryFuncs["Add"]
		}
		acc := ins[0].k
		for _, v := range ins[1:] {
			var err error
			if acc, err = binaryT(acc, v.k, f); err != nil {
				return nil, err
			}
		}
		return &value{k: acc, shape: acc.Shape}, nil
	}
	if len(ins) == 2 {
		if v, ok := c.foldIntoConv(onnxOp, ins[0], ins[1], name); ok {
			return v, nil
		}
		if onnxOp == "Add" || onnxOp == "Mul" {
			if v, ok := c.foldIntoConv(onnxOp, ins[1], ins[0], name); ok {
				return v, nil
			}
		}
	}
	if len(ins) == 1 {
		return ins[0], nil
	}
	shape := ins[0].shape
	for _, v := range ins[1:] {
		var err error
		if shape, err = broadcastShape(shape, v.shape); err != nil {
			return nil, err
		}
	}
	// Channels-first if the result is 4-D, some input is stored that way and
	// every run-time input is 4-D (constants are permuted here, for free).
	useNCHW := false
	if len(shape) == 4 {
		ok := true
		for _, v := range ins {
			if v.k == nil && v.nchw {
				useNCHW = true
			}
			if v.k == nil && len(v.shape) != 4 {
				ok = false
			}
		}
		useNCHW = useNCHW && ok
	}
	// Keep inputs that carry an extra leading 1 (from unpack) as they are:
	// broadcasting gives the result the same extra leading 1.
	useLead1 := false
	if !useNCHW {
		for _, v := range ins {
			if v.k == nil && v.lead1 {
				useLead1 = true
			}
		}
	}
	var names []string
	for i, v := range ins {
		hint := fmt.Sprintf("%s/in%d", name, i)
		var n string
		var err error
		switch {
		case useLead1 && v.k == nil && (v.lead1 || len(v.shape) <= len(shape)):
			n = v.name
			if !v.lead1 && v.nchw {
				n, err = c.nhwc(v, hint)
			}
		case useNCHW && v.k != nil:
			n = c.addInit(hint, transposeT(reshapeT(v.k, pad4(v.k.Shape)), []int64{0, 3, 1, 2}), false)
		case useNCHW:
			n, err = c.nchw(v, hint)
		default:
			n, err = c.nhwc(v, hint)
		}
		if err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	if onnxOp == "Sum" && len(names) == 2 {
		onnxOp = "Add"
	}
	out := c.emit(onnxOp, names, name)
	return &value{name: out, shape: shape, nchw: useNCHW, lead1: useLead1}, nil
}

// pad4 left-pads a shape of rank <= 4 with ones.
func pad4(s []int64) []int64 {
	out := []int64{1, 1, 1, 1}
	copy(out[4-len(s):], s)
	return out
}

// foldIntoConv folds x op k (k a per-channel constant) into the Conv that
// produces x when x has no other use. It returns false if it cannot.
func (c *converter) foldIntoConv(op string, x, kv *value, name string) (*value, bool) {
	if x.conv == nil || kv.k == nil || c.uses[x.name] > 1 {
		return nil, false
	}
	k := kv.k
	ch := x.shape[len(x.shape)-1]
	if len(k.Shape) > len(x.shape) {
		return nil, false
	}
	for i, d := range k.Shape {
		if i < len(k.Shape)-1 && d != 1 {
			return nil, false
		}
		if i == len(k.Shape)-1 && d != 1 && d != ch {
			return nil, false
		}
	}
	at := func(o int64) float64 {
		if len(k.Data) == 1 {
			return k.Data[0]
		}
		return k.Data[o]
	}
	cv := x.conv
	per := int64(len(cv.w.Data)) / ch
	switch op {
	case "Mul":
		for o := range ch {
			s := at(o)
			for j := o * per; j < (o+1)*per; j++ {
				cv.w.Data[j] *= s
			}
			cv.b.Data[o] *= s
		}
	case "Add":
		for o := range ch {
			cv.b.Data[o] += at(o)
		}
	case "Sub":
		for o := range ch {
			cv.b.Data[o] -= at(o)
		}
	case "Div":
		for o := range ch {
			s := 1 / at(o)
			for j := o * per; j < (o+1)*per; j++ {
				cv.w.Data[j] *= s
			}
			cv.b.Data[o] *= s
		}
	default:
		return nil, false
	}
	// Give the conv output the latest readable name.
	newName := c.g.Unique(name)
	c.rename(x.name, newName)
	c.uses[newName] = c.uses[canonRef(name)]
	return &value{name: newName, shape: x.shape, nchw: x.nchw, conv: cv}, true
}

func (c *converter) unaryOp(op string, x *value, name string) (*value, error) {
	if x.k != nil {
		f := map[string]func(float64) float64{
			"Relu6":   func(v float64) float64 { return math.Min(math.Max(v, 0), 6) },
			"Relu":    func(v float64) float64 { return math.Max(v, 0) },
			"Sigmoid": func(v float64) float64 { return 1 / (1 + math.Exp(-v)) },
			"Exp":     math.Exp,
			"Tanh":    math.Tanh,
			"Neg":     func(v float64) float64 { return -v },
			"Sqrt":    math.Sqrt,
			"Rsqrt":   func(v float64) float64 { return 1 / math.Sqrt(v) },
		}[op]
		if x.k.hasSym() {
			return nil, errDynamic
		}
		t := unary(x.k, f)
		return &value{k: t, shape: t.Shape}, nil
	}
	var out string
	switch op {
	case "Relu6":
		if c.opts.Opset < 11 {
			// Opset 10 Clip has attribute bounds: the form OpenCV 4.6 reads.
			out = c.emit("Clip", []string{x.name}, name, onnxgraph.AttrFloat("min", 0), onnxgraph.AttrFloat("max", 6))
			break
		}
		// Opset 11+ Clip takes its bounds as inputs.
		out = c.emit("Clip", []string{x.name, c.scalarF("clip_min_0", 0), c.scalarF("clip_max_6", 6)}, name)
	case "Rsqrt":
		s := c.emit("Sqrt", []string{x.name}, name+"/sqrt")
		out = c.emit("Reciprocal", []string{s}, name)
	default:
		out = c.emit(op, []string{x.name}, name)
	}
	return &value{name: out, shape: x.shape, nchw: x.nchw, lead1: x.lead1}, nil
}

// batchNorm turns inference-mode batch norm into a per-channel scale and
// shift, which fold into a preceding convolution.
func (c *converter) batchNorm(n *Node, ins []*value) (*value, error) {
	if len(ins) < 5 {
		return nil, fmt.Errorf("expects 5 inputs, has %d", len(ins))
	}
	if f := n.attrString("data_format"); f != "" && f != "NHWC" {
		return nil, fmt.Errorf("data_format %s is not supported", f)
	}
	for i, what := range []string{"scale", "offset", "mean", "variance"} {
		if ins[i+1].k == nil {
			return nil, fmt.Errorf("%s must be a constant", what)
		}
	}
	eps := n.attrFloat("epsilon", 0.001)
	scale, offset, mean, vari := ins[1].k, ins[2].k, ins[3].k, ins[4].k
	ch := len(scale.Data)
	if len(offset.Data) != ch || len(mean.Data) != ch || len(vari.Data) != ch {
		return nil, fmt.Errorf("scale, offset, mean and variance differ in size")
	}
	a := &Tensor{DType: Float32, Shape: []int64{int64(ch)}, Data: make([]float64, ch)}
	b := &Tensor{DType: Float32, Shape: []int64{int64(ch)}, Data: make([]float64, ch)}
	for i := range ch {
		// float32 maths, as TF.js computes it.
		inv := float32(scale.Data[i]) / float32(math.Sqrt(float64(float32(vari.Data[i])+float32(eps))))
		a.Data[i] = float64(inv)
		b.Data[i] = float64(float32(offset.Data[i]) - float32(mean.Data[i])*inv)
	}
	mul, err := c.elementwise("Mul", []*value{ins[0], {k: a, shape: a.Shape}}, n.Name+"/scale")
	if err != nil {
		return nil, err
	}
	c.uses[mul.name] = 1
	return c.elementwise("Add", []*value{mul, {k: b, shape: b.Shape}}, n.Name)
}

func (c *converter) conv2d(n *Node, ins []*value) (*value, error) {
	if f := n.attrString("data_format"); f != "" && f != "NHWC" {
		return nil, fmt.Errorf("data_format %s is not supported", f)
	}
	x := ins[0]
	if len(ins) != 2 || ins[1].k == nil {
		return nil, fmt.Errorf("filter must be a constant")
	}
	if len(x.shape) != 4 || x.shape[1] < 0 || x.shape[2] < 0 {
		return nil, fmt.Errorf("input shape %s: need a 4-D NHWC input with known height and width", fmtShape(x.shape))
	}
	f := ins[1].k
	if len(f.Shape) != 4 {
		return nil, fmt.Errorf("filter shape %v is not 4-D", f.Shape)
	}
	kh, kw, ci := f.Shape[0], f.Shape[1], f.Shape[2]
	if ci != x.shape[3] {
		return nil, fmt.Errorf("filter has %d input channels, input has %d", ci, x.shape[3])
	}
	strides, dil := n.attrInts("strides"), n.attrInts("dilations")
	if len(strides) == 0 {
		strides = []int64{1, 1, 1, 1}
	}
	if len(dil) == 0 {
		dil = []int64{1, 1, 1, 1}
	}
	if len(strides) != 4 || len(dil) != 4 || strides[0] != 1 || strides[3] != 1 || dil[0] != 1 || dil[3] != 1 {
		return nil, fmt.Errorf("strides %v / dilations %v are not supported", strides, dil)
	}
	sh, sw, dh, dw := strides[1], strides[2], dil[1], dil[2]
	var w *Tensor
	var co, group int64
	if n.Op == "Conv2D" {
		co, group = f.Shape[3], 1
		w = transposeT(f, []int64{3, 2, 0, 1}) // HWIO -> OIHW
	} else {
		mult := f.Shape[3]
		co, group = ci*mult, ci
		// [kh,kw,C,M] -> [C,M,kh,kw] -> [C*M,1,kh,kw]: TF's output channel c*M+m.
		w = reshapeT(transposeT(f, []int64{2, 3, 0, 1}), []int64{co, 1, kh, kw})
	}
	pads := make([]int64, 4) // top, left, bottom, right
	var oh, ow int64
	ekh, ekw := (kh-1)*dh+1, (kw-1)*dw+1
	H, W := x.shape[1], x.shape[2]
	switch p := n.attrString("padding"); p {
	case "SAME":
		oh, ow = (H+sh-1)/sh, (W+sw-1)/sw
		th := max((oh-1)*sh+ekh-H, 0)
		tw := max((ow-1)*sw+ekw-W, 0)
		pads = []int64{th / 2, tw / 2, th - th/2, tw - tw/2}
	case "VALID":
		oh, ow = (H-ekh)/sh+1, (W-ekw)/sw+1
	case "EXPLICIT":
		ep := n.attrInts("explicit_paddings")
		if len(ep) != 8 {
			return nil, fmt.Errorf("explicit_paddings %v: want 8 values", ep)
		}
		pads = []int64{ep[2], ep[4], ep[3], ep[5]}
		oh, ow = (H+ep[2]+ep[3]-ekh)/sh+1, (W+ep[4]+ep[5]-ekw)/sw+1
	default:
		return nil, fmt.Errorf("padding %q is not supported", p)
	}
	if oh <= 0 || ow <= 0 {
		return nil, fmt.Errorf("input %s is smaller than the kernel", fmtShape(x.shape))
	}
	in, err := c.nchw(x, n.Name+"/input")
	if err != nil {
		return nil, err
	}
	w = &Tensor{DType: Float32, Shape: w.Shape, Data: append([]float64{}, w.Data...)}
	b := &Tensor{DType: Float32, Shape: []int64{co}, Data: make([]float64, co)}
	out := c.g.Unique(n.Name)
	node := &onode{op: "Conv", in: []string{in}, out: []string{out}, w: w, b: b, attrs: []*onnx.AttributeProto{
		onnxgraph.AttrInts("kernel_shape", kh, kw),
		onnxgraph.AttrInts("strides", sh, sw),
		onnxgraph.AttrInts("dilations", dh, dw),
		onnxgraph.AttrInts("pads", pads...),
		onnxgraph.AttrInt("group", group),
	}}
	c.nodes = append(c.nodes, node)
	c.uses[out] = c.uses[canonRef(n.Name)]
	return &value{name: out, shape: []int64{x.shape[0], oh, ow, co}, nchw: true, conv: node}, nil
}

func (c *converter) shapeOp(n *Node, x *value) (*value, error) {
	t := &Tensor{DType: Int32, Shape: []int64{int64(len(x.shape))}}
	for _, d := range x.shape {
		t.Data = append(t.Data, symValue(d))
	}
	return &value{k: t, shape: t.Shape}, nil
}

func (c *converter) squeeze(n *Node, x *value) (*value, error) {
	axes := n.attrInts("squeeze_dims")
	if len(axes) == 0 {
		axes = n.attrInts("axis")
	}
	drop := map[int]bool{}
	for _, a := range axes {
		ax, err := normAxis(a, len(x.shape))
		if err != nil {
			return nil, err
		}
		if x.shape[ax] != 1 {
			return nil, fmt.Errorf("cannot squeeze axis %d of shape %s", a, fmtShape(x.shape))
		}
		drop[ax] = true
	}
	var shape []int64
	for i, d := range x.shape {
		if drop[i] || (len(axes) == 0 && d == 1) {
			continue
		}
		shape = append(shape, d)
	}
	return c.reshapeTo(x, shape, n.Name)
}

func (c *converter) concat(n *Node, ins []*value) (*value, error) {
	if len(ins) < 2 {
		return nil, fmt.Errorf("expects values and an axis")
	}
	k, err := c.constInput(ins, len(ins)-1, "axis")
	if err != nil {
		return nil, err
	}
	parts := ins[:len(ins)-1]
	ax, err := normAxis(int64(k.Data[0]), len(parts[0].shape))
	if err != nil {
		return nil, err
	}
	shape := append([]int64{}, parts[0].shape...)
	shape[ax] = 0
	allConst := true
	for _, p := range parts {
		if len(p.shape) != len(shape) {
			return nil, fmt.Errorf("inputs differ in rank")
		}
		d := p.shape[ax]
		if (d < 0) != (shape[ax] < 0) && shape[ax] != 0 {
			return nil, errDynamic
		}
		shape[ax] += d
		allConst = allConst && p.k != nil
	}
	if allConst {
		ts := make([]*Tensor, len(parts))
		for i, p := range parts {
			ts[i] = p.k
		}
		t := concatT(ts, ax)
		return &value{k: t, shape: t.Shape}, nil
	}
	var names []string
	for i, p := range parts {
		nm, err := c.nhwc(p, fmt.Sprintf("%s/in%d", n.Name, i))
		if err != nil {
			return nil, err
		}
		names = append(names, nm)
	}
	out := c.emit("Concat", names, n.Name, onnxgraph.AttrInt("axis", int64(ax)))
	return &value{name: out, shape: shape}, nil
}

func (c *converter) pack(n *Node, ins []*value) (*value, error) {
	rank := len(ins[0].shape)
	ax, err := normAxis(n.attrInt("axis", 0), rank+1)
	if err != nil {
		return nil, err
	}
	shape := append(append(append([]int64{}, ins[0].shape[:ax]...), 1), ins[0].shape[ax:]...)
	if ax == 0 {
		// Inputs stored with a leading 1 (from unpack) concatenate as they are.
		var names []string
		for _, v := range ins {
			if v.k != nil || !v.lead1 || !equalShape(v.shape, ins[0].shape) {
				names = nil
				break
			}
			names = append(names, v.name)
		}
		if names != nil {
			out := c.emit("Concat", names, n.Name, onnxgraph.AttrInt("axis", 0))
			full := append([]int64{int64(len(ins))}, ins[0].shape...)
			return &value{name: out, shape: full}, nil
		}
	}
	var parts []*value
	for i, v := range ins {
		if len(v.shape) != rank {
			return nil, fmt.Errorf("inputs differ in rank")
		}
		r, err := c.reshapeTo(v, shape, fmt.Sprintf("%s/in%d", n.Name, i))
		if err != nil {
			return nil, err
		}
		parts = append(parts, r)
	}
	axis := &Tensor{DType: Int32, Shape: []int64{}, Data: []float64{float64(ax)}}
	return c.concat(n, append(parts, &value{k: axis, shape: axis.Shape}))
}

func (c *converter) unpack(n *Node, x *value) ([]*value, error) {
	ax, err := normAxis(n.attrInt("axis", 0), len(x.shape))
	if err != nil {
		return nil, err
	}
	num := x.shape[ax]
	if num < 0 {
		return nil, errDynamic
	}
	if want := n.attrInt("num", num); want != num {
		return nil, fmt.Errorf("num %d does not match axis size %d", want, num)
	}
	shape := append(append([]int64{}, x.shape[:ax]...), x.shape[ax+1:]...)
	var outs []*value
	for i := range num {
		if x.k != nil {
			begin := make([]int64, len(x.shape))
			size := append([]int64{}, x.shape...)
			step := make([]int64, len(x.shape))
			for j := range step {
				step[j] = 1
			}
			begin[ax], size[ax] = i, 1
			t := reshapeT(sliceT(x.k, begin, size, step), shape)
			outs = append(outs, &value{k: t, shape: shape})
			continue
		}
		src, err := c.nhwc(x, n.Name)
		if err != nil {
			return nil, err
		}
		// Slice keeps the unpacked axis. On axis 0 the result stays stored
		// with that leading 1 (lead1): element-wise ops and Pack use it as is,
		// and OpenCV's DNN, which mishandles 1-D tensors, never sees one.
		one := []int64{1}
		out := c.emit("Slice", []string{src, c.ints64(fmt.Sprintf("index_%d", i), one, i), c.ints64(fmt.Sprintf("index_%d", i+1), one, i+1),
			c.ints64(fmt.Sprintf("axis_%d", ax), one, int64(ax))}, fmt.Sprintf("%s_%d", n.Name, i))
		v := &value{name: out, shape: shape, lead1: true}
		if ax != 0 {
			kept := append(append(append([]int64{}, shape[:ax]...), 1), shape[ax:]...)
			rv, err := c.reshapeTo(&value{name: out, shape: kept}, shape, fmt.Sprintf("%s_%d/squeeze", n.Name, i))
			if err != nil {
				return nil, err
			}
			v = rv
		}
		outs = append(outs, v)
	}
	return outs, nil
}

func (c *converter) transpose(n *Node, ins []*value) (*value, error) {
	k, err := c.constInput(ins, 1, "perm")
	if err != nil {
		return nil, err
	}
	x := ins[0]
	perm := k.ints()
	if len(perm) != len(x.shape) {
		return nil, fmt.Errorf("perm %v does not match rank %d", perm, len(x.shape))
	}
	shape := make([]int64, len(perm))
	seen := map[int64]bool{}
	for i, p := range perm {
		if p < 0 || p >= int64(len(perm)) || seen[p] {
			return nil, fmt.Errorf("bad perm %v", perm)
		}
		seen[p] = true
		shape[i] = x.shape[p]
	}
	if x.k != nil {
		t := transposeT(x.k, perm)
		return &value{k: t, shape: t.Shape}, nil
	}
	src := x.name
	if x.nchw {
		// Compose with the stored channels-first layout: no extra transpose.
		fromNCHW := []int64{0, 2, 3, 1}
		q := make([]int64, 4)
		for i, p := range perm {
			q[i] = fromNCHW[p]
		}
		perm = q
	}
	out := c.emit("Transpose", []string{src}, n.Name, onnxgraph.AttrInts("perm", perm...))
	return &value{name: out, shape: shape}, nil
}

// sliceSpec is a slice of every input dimension plus the final shape.
type sliceSpec struct {
	begin, size, step []int64 // per input dimension
	out               []int64 // output shape after shrink / new axes
}

func (c *converter) stridedSlice(n *Node, ins []*value) (*value, error) {
	if len(ins) != 4 {
		return nil, fmt.Errorf("expects 4 inputs, has %d", len(ins))
	}
	var kb, ke, ks *Tensor
	var err error
	if kb, err = c.constInput(ins, 1, "begin"); err != nil {
		return nil, err
	}
	if ke, err = c.constInput(ins, 2, "end"); err != nil {
		return nil, err
	}
	if ks, err = c.constInput(ins, 3, "strides"); err != nil {
		return nil, err
	}
	spec, err := stridedSpec(ins[0].shape, kb.ints(), ke.ints(), ks.ints(),
		n.attrInt("begin_mask", 0), n.attrInt("end_mask", 0), n.attrInt("ellipsis_mask", 0),
		n.attrInt("new_axis_mask", 0), n.attrInt("shrink_axis_mask", 0))
	if err != nil {
		return nil, err
	}
	return c.applySlice(ins[0], spec, n.Name)
}

// stridedSpec resolves TF StridedSlice arguments against a shape.
func stridedSpec(shape, begin, end, strides []int64, bm, em, elm, nam, sam int64) (*sliceSpec, error) {
	if len(begin) != len(end) || len(begin) != len(strides) {
		return nil, fmt.Errorf("begin, end and strides differ in length")
	}
	rank := len(shape)
	sp := &sliceSpec{}
	full := func(d int) {
		sp.begin = append(sp.begin, 0)
		sp.size = append(sp.size, shape[d])
		sp.step = append(sp.step, 1)
		sp.out = append(sp.out, shape[d])
	}
	bit := func(m int64, i int) bool { return m&(1<<uint(i)) != 0 }
	consumed := 0
	for i := range begin {
		if !bit(nam, i) && !bit(elm, i) {
			consumed++
		}
	}
	d := 0
	sawEllipsis := false
	for i := range begin {
		switch {
		case bit(elm, i):
			if sawEllipsis {
				return nil, fmt.Errorf("more than one ellipsis")
			}
			sawEllipsis = true
			for range rank - consumed {
				if d >= rank {
					return nil, fmt.Errorf("slice has more dimensions than the input")
				}
				full(d)
				d++
			}
			continue
		case bit(nam, i):
			sp.out = append(sp.out, 1)
			continue
		}
		if d >= rank {
			return nil, fmt.Errorf("slice has more dimensions than the input")
		}
		D := shape[d]
		s := strides[i]
		if s == 0 {
			return nil, fmt.Errorf("stride 0")
		}
		if bit(sam, i) {
			if D < 0 {
				return nil, errDynamic
			}
			b := begin[i]
			if b < 0 {
				b += D
			}
			if b < 0 || b >= D {
				return nil, fmt.Errorf("index %d out of range for dimension of size %d", begin[i], D)
			}
			sp.begin = append(sp.begin, b)
			sp.size = append(sp.size, 1)
			sp.step = append(sp.step, 1)
			d++
			continue
		}
		if D < 0 {
			// The dynamic batch dimension: only a full forward slice.
			if s == 1 && (bit(bm, i) || begin[i] == 0) && (bit(em, i) || end[i] >= bigEnd) {
				full(d)
				d++
				continue
			}
			return nil, errDynamic
		}
		var b, e int64
		if s > 0 {
			b, e = 0, D
			if !bit(bm, i) {
				b = begin[i]
				if b < 0 {
					b += D
				}
				b = clamp(b, 0, D)
			}
			if !bit(em, i) {
				e = end[i]
				if e < 0 {
					e += D
				}
				e = clamp(e, 0, D)
			}
		} else {
			b, e = D-1, -1
			if !bit(bm, i) {
				b = begin[i]
				if b < 0 {
					b += D
				}
				b = clamp(b, -1, D-1)
			}
			if !bit(em, i) {
				e = end[i]
				if e < 0 {
					e += D
				}
				e = clamp(e, -1, D-1)
			}
		}
		size := max((e-b+s-sign(s))/s, 0)
		sp.begin = append(sp.begin, b)
		sp.size = append(sp.size, size)
		sp.step = append(sp.step, s)
		sp.out = append(sp.out, size)
		d++
	}
	for ; d < rank; d++ {
		full(d)
	}
	return sp, nil
}

func sign(v int64) int64 {
	if v < 0 {
		return -1
	}
	return 1
}

func (c *converter) slice(n *Node, ins []*value) (*value, error) {
	if len(ins) != 3 {
		return nil, fmt.Errorf("expects 3 inputs, has %d", len(ins))
	}
	kb, err := c.constInput(ins, 1, "begin")
	if err != nil {
		return nil, err
	}
	ks, err := c.constInput(ins, 2, "size")
	if err != nil {
		return nil, err
	}
	x := ins[0]
	b, s := kb.ints(), ks.ints()
	if len(b) != len(x.shape) || len(s) != len(x.shape) {
		return nil, fmt.Errorf("begin/size do not match rank %d", len(x.shape))
	}
	sp := &sliceSpec{}
	for d, D := range x.shape {
		size := s[d]
		if D < 0 {
			if b[d] != 0 || size != -1 {
				return nil, errDynamic
			}
			size = D
		} else {
			if size == -1 {
				size = D - b[d]
			}
			if b[d] < 0 || size < 0 || b[d]+size > D {
				return nil, fmt.Errorf("slice begin %v size %v out of range for %s", b, s, fmtShape(x.shape))
			}
		}
		sp.begin = append(sp.begin, b[d])
		sp.size = append(sp.size, size)
		sp.step = append(sp.step, 1)
		sp.out = append(sp.out, size)
	}
	return c.applySlice(x, sp, n.Name)
}

// applySlice folds a slice of a constant, or emits an ONNX Slice over the
// dimensions that change plus a Reshape for dropped or new axes.
func (c *converter) applySlice(x *value, sp *sliceSpec, name string) (*value, error) {
	if x.k != nil {
		t := reshapeT(sliceT(x.k, sp.begin, sp.size, sp.step), sp.out)
		return &value{k: t, shape: t.Shape}, nil
	}
	src, err := c.nhwc(x, name)
	if err != nil {
		return nil, err
	}
	var starts, ends, axes, steps []int64
	for d, D := range x.shape {
		if sp.begin[d] == 0 && sp.step[d] == 1 && sp.size[d] == D {
			continue
		}
		e := sp.begin[d] + sp.size[d]*sp.step[d]
		if sp.step[d] < 0 && e < 0 {
			e = math.MinInt64 / 2 // ONNX: before the first element
		}
		starts = append(starts, sp.begin[d])
		ends = append(ends, e)
		axes = append(axes, int64(d))
		steps = append(steps, sp.step[d])
	}
	cur := &value{name: src, shape: x.shape}
	if len(axes) > 0 {
		l := []int64{int64(len(axes))}
		out := c.emit("Slice", []string{src,
			c.ints64(name+"/starts", l, starts...), c.ints64(name+"/ends", l, ends...),
			c.ints64(name+"/axes", l, axes...), c.ints64(name+"/steps", l, steps...)}, name)
		cur = &value{name: out, shape: sp.size}
	}
	if !equalShape(cur.shape, sp.out) {
		return c.reshapeTo(cur, sp.out, name+"/reshape")
	}
	return cur, nil
}

func equalShape(a, b []int64) bool {
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

func (c *converter) tile(n *Node, ins []*value) (*value, error) {
	k, err := c.constInput(ins, 1, "multiples")
	if err != nil {
		return nil, err
	}
	x := ins[0]
	if len(k.Data) != len(x.shape) {
		return nil, fmt.Errorf("multiples %v do not match rank %d", k.Data, len(x.shape))
	}
	shape := make([]int64, len(x.shape))
	dynamic := false
	for i, d := range x.shape {
		if k.Data[i] < 0 && !isSym(k.Data[i]) {
			return nil, fmt.Errorf("negative multiple %v", k.Data[i])
		}
		m := dimOf(k.Data[i])
		switch {
		case m < 0 && d == 1:
			shape[i], dynamic = m, true
		case m < 0 || (d < 0 && m != 1):
			return nil, errDynamic
		default:
			shape[i] = d * m
		}
	}
	if x.k != nil && !dynamic {
		t := tileT(x.k, k.ints())
		return &value{k: t, shape: t.Shape}, nil
	}
	src, err := c.nhwc(x, n.Name+"/input")
	if err != nil {
		return nil, err
	}
	var reps string
	if !dynamic {
		reps = c.ints64(n.Name+"/repeats", []int64{int64(len(shape))}, k.ints()...)
	} else {
		// Build the repeats at run time: the batch size comes from the input.
		var parts []string
		for i := range k.Data {
			m := dimOf(k.Data[i])
			switch {
			case m == -1:
				parts = append(parts, c.batchSize())
			case m < 0:
				return nil, errDynamic
			default:
				parts = append(parts, c.ints64(fmt.Sprintf("%s/repeats_%d", n.Name, i), []int64{1}, m))
			}
		}
		reps = c.emit("Concat", parts, n.Name+"/repeats", onnxgraph.AttrInt("axis", 0))
	}
	out := c.emit("Tile", []string{src, reps}, n.Name)
	return &value{name: out, shape: shape}, nil
}
