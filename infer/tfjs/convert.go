package tfjs

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/osprey-vision/osprey/infer/onnxgraph"
)

// Output names one TF tensor to export and the ONNX name to give it.
type Output struct {
	Tensor string // TF tensor, "node" or "node:k"
	Name   string // ONNX output name
}

// Options choose where to cut the TF.js graph and how to name the ends.
// The zero value converts the COCO-SSD (SSD-MobileNetV2) model.
type Options struct {
	// Input is the TF tensor fed by the ONNX input (default
	// Preprocessor/map/TensorArrayStack/TensorArrayGatherV3, the resized
	// image batch of COCO-SSD, after its preprocessing while-loop).
	Input string
	// InputName is the ONNX input name (default "image" for the default
	// Input, else the Input tensor's name).
	InputName string
	// InputShape is the TF (NHWC) shape of Input; -1 marks the dynamic
	// batch. Default: the Placeholder's shape when Input is a Placeholder,
	// else [-1,300,300,3].
	InputShape []int64
	// Outputs are the tensors to export (default Postprocessor/Slice as
	// "scores" [N,1917,90] and Postprocessor/ExpandDims_1 as "boxes"
	// [N,1917,1,4]).
	Outputs []Output
	// Batch, when > 0, fixes the batch size. Every shape computation then
	// folds to a constant, which OpenCV's DNN importer needs.
	Batch int64
	// Opset is the ONNX opset to declare (default 13). Opset 10 writes
	// Relu6 as an attribute-bounded Clip, which OpenCV 4.6 needs.
	Opset int64
}

// COCO-SSD cut points (see docs/model-import.md).
const (
	DefaultInput  = "Preprocessor/map/TensorArrayStack/TensorArrayGatherV3"
	DefaultScores = "Postprocessor/Slice"
	DefaultBoxes  = "Postprocessor/ExpandDims_1"
)

func (o Options) withDefaults(m *Model) (Options, error) {
	if o.Input == "" {
		o.Input = DefaultInput
		if o.InputShape == nil {
			o.InputShape = []int64{-1, 300, 300, 3}
		}
		if o.InputName == "" {
			o.InputName = "image"
		}
	}
	if o.InputName == "" {
		o.InputName = canonRef(o.Input)
	}
	if len(o.Outputs) == 0 {
		o.Outputs = []Output{{DefaultScores, "scores"}, {DefaultBoxes, "boxes"}}
	}
	for i := range o.Outputs {
		if o.Outputs[i].Name == "" {
			o.Outputs[i].Name = o.Outputs[i].Tensor
		}
	}
	if o.Opset == 0 {
		o.Opset = 13
	}
	if o.Opset < 10 || o.Opset > 21 {
		return o, fmt.Errorf("tfjs: opset %d is not supported: use 10 to 21 (13 is the default; 10 with a fixed batch for OpenCV 4.6)", o.Opset)
	}
	name, _ := splitRef(o.Input)
	n, ok := m.Nodes[name]
	if !ok {
		return o, fmt.Errorf("tfjs: %s: input tensor %q is not in the graph: check --input", m.Path, o.Input)
	}
	if o.InputShape == nil {
		if n.Op != "Placeholder" || n.Attr["shape"].Shape == nil {
			return o, fmt.Errorf("tfjs: %s: input %q is a %s node with no known shape: give its NHWC shape", m.Path, o.Input, n.Op)
		}
		for _, d := range n.Attr["shape"].Shape.Dim {
			o.InputShape = append(o.InputShape, int64(d.Size))
		}
	}
	o.InputShape = append([]int64{}, o.InputShape...)
	for i, d := range o.InputShape {
		switch {
		case d == -1 && o.Batch > 0:
			o.InputShape[i] = o.Batch
		case d == -1 && i == 0:
		case d <= 0:
			return o, fmt.Errorf("tfjs: input %q has unknown dimension %d in %v: only the batch (first) dimension may be dynamic", o.Input, i, o.InputShape)
		}
	}
	return o, nil
}

// splitRef splits a TF tensor reference "node:k" into node name and output
// index.
func splitRef(ref string) (string, int) {
	ref = strings.TrimPrefix(ref, "^")
	if i := strings.LastIndexByte(ref, ':'); i >= 0 {
		if k, err := strconv.Atoi(ref[i+1:]); err == nil {
			return ref[:i], k
		}
	}
	return ref, 0
}

func canonRef(ref string) string {
	name, k := splitRef(ref)
	if k == 0 {
		return name
	}
	return name + ":" + strconv.Itoa(k)
}

// Convert reads a TF.js graph model from model.json and converts the part
// between the cut points in opts to an ONNX model.
func Convert(modelJSON string, opts Options) (*onnx.ModelProto, error) {
	m, err := ReadModel(modelJSON)
	if err != nil {
		return nil, err
	}
	return ConvertModel(m, opts)
}

// value is a converted TF tensor: a constant, or an ONNX tensor whose TF
// shape (NHWC, negative = multiple of the batch N) is tracked, and which
// may be stored channels-first (nchw) to keep convolutions transpose-free.
type value struct {
	name  string
	shape []int64
	nchw  bool
	lead1 bool // stored with an extra leading dimension of 1 (see unpack)
	k     *Tensor
	conv  *onode // the Conv producing this tensor, while it may still absorb per-channel affine ops
}

// onode is an ONNX node being built. Conv nodes keep their weights and bias
// as Go tensors so later Mul/Add/BatchNorm can be folded into them.
type onode struct {
	op    string
	in    []string
	out   []string
	attrs []*onnx.AttributeProto
	w, b  *Tensor
}

type converter struct {
	m      *Model
	opts   Options
	g      *onnxgraph.Graph
	vals   map[string]*value
	uses   map[string]int
	nodes  []*onode
	inits  []*onnx.TensorProto
	toNHWC map[string]string
	toNCHW map[string]string
	shared map[string]string
	batch  string
}

// ConvertModel converts an already-read model; see Convert.
func ConvertModel(m *Model, opts Options) (*onnx.ModelProto, error) {
	opts, err := opts.withDefaults(m)
	if err != nil {
		return nil, err
	}
	c := &converter{
		m: m, opts: opts, g: onnxgraph.NewGraph("tfjs"),
		vals: map[string]*value{}, uses: map[string]int{},
		toNHWC: map[string]string{}, toNCHW: map[string]string{}, shared: map[string]string{},
	}
	// Reserve the public names first so graph tensors never take them.
	c.g.Unique(opts.InputName)
	for _, o := range opts.Outputs {
		if c.g.Has(o.Name) {
			return nil, fmt.Errorf("tfjs: output name %q is used twice", o.Name)
		}
		c.g.Unique(o.Name)
	}
	order, err := c.subgraph()
	if err != nil {
		return nil, err
	}
	c.vals[canonRef(opts.Input)] = &value{name: opts.InputName, shape: opts.InputShape}
	for _, name := range order {
		n := m.Nodes[name]
		outs, err := c.safeConvertNode(n)
		if err != nil {
			var ne *nodeError
			if errors.As(err, &ne) {
				return nil, err
			}
			return nil, &nodeError{node: n.Name, op: n.Op, err: err}
		}
		for k, v := range outs {
			ref := name
			if k > 0 {
				ref += ":" + strconv.Itoa(k)
			}
			c.vals[ref] = v
		}
	}
	return c.finish()
}

// safeConvertNode turns a panic on malformed input (an index the checks
// missed) into an error naming the node, so bad files never crash the CLI.
func (c *converter) safeConvertNode(n *Node) (outs []*value, err error) {
	defer func() {
		if r := recover(); r != nil {
			outs, err = nil, fmt.Errorf("malformed node: %v", r)
		}
	}()
	return c.convertNode(n)
}

type nodeError struct {
	node, op string
	err      error
}

func (e *nodeError) Error() string {
	if errors.Is(e.err, ErrUnsupportedOp) {
		return fmt.Sprintf("tfjs: node %q: %v", e.node, e.err)
	}
	return fmt.Sprintf("tfjs: node %q (%s): %v", e.node, e.op, e.err)
}

// ErrUnsupportedOp matches (with errors.Is) the error for a TF op the
// converter cannot translate.
var ErrUnsupportedOp = errors.New("tfjs: unsupported op")

type unsupportedOpError struct{ op string }

func (e unsupportedOpError) Error() string { return fmt.Sprintf("op %q is not supported", e.op) }

func (e unsupportedOpError) Is(target error) bool { return target == ErrUnsupportedOp }

func (e *nodeError) Unwrap() error { return e.err }

// subgraph returns, in dependency order, the nodes needed to compute the
// outputs from the cut input, and counts how often each tensor is used.
func (c *converter) subgraph() ([]string, error) {
	in := canonRef(c.opts.Input)
	state := map[string]int{} // 1 visiting, 2 done
	var order []string
	var visit func(ref, from string) error
	visit = func(ref, from string) error {
		ref = canonRef(ref)
		if ref == in {
			return nil
		}
		name, _ := splitRef(ref)
		n, ok := c.m.Nodes[name]
		if !ok {
			return fmt.Errorf("tfjs: %s: tensor %q (used by %q) is not in the graph", c.m.Path, ref, from)
		}
		switch state[name] {
		case 1:
			return fmt.Errorf("tfjs: %s: node %q is in a cycle: control flow is not supported; cut the graph after it", c.m.Path, name)
		case 2:
			return nil
		}
		if n.Op == "Placeholder" {
			return fmt.Errorf("tfjs: %s: output depends on graph input %q, which is not the cut input %q: choose another --input", c.m.Path, name, c.opts.Input)
		}
		state[name] = 1
		for _, i := range n.Input {
			if strings.HasPrefix(i, "^") {
				continue // control dependency: no data flows
			}
			c.uses[canonRef(i)]++
			if err := visit(i, name); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, o := range c.opts.Outputs {
		c.uses[canonRef(o.Tensor)]++
		if err := visit(o.Tensor, "outputs"); err != nil {
			return nil, err
		}
	}
	if _, ok := c.uses[in]; !ok {
		return nil, fmt.Errorf("tfjs: %s: the outputs do not depend on input %q: check --input and --output", c.m.Path, c.opts.Input)
	}
	return order, nil
}

// onnxName turns a TF reference into a readable, unique ONNX tensor name.
func (c *converter) onnxName(ref string) string {
	return c.g.Unique(strings.ReplaceAll(canonRef(ref), ":", "_"))
}

func (c *converter) emit(op string, in []string, outBase string, attrs ...*onnx.AttributeProto) string {
	out := c.g.Unique(outBase)
	c.nodes = append(c.nodes, &onode{op: op, in: in, out: []string{out}, attrs: attrs})
	return out
}

// addInit adds t as an initializer (float32, int32 or, with asInt64,
// int64) and returns its name.
func (c *converter) addInit(base string, t *Tensor, asInt64 bool) string {
	name := c.g.Unique(base)
	var tp *onnx.TensorProto
	switch {
	case asInt64:
		tp = onnxgraph.Int64Tensor(name, t.Shape, t.ints())
	case t.DType == Int32:
		v := t.ints()
		v32 := make([]int32, len(v))
		for i, x := range v {
			v32[i] = int32(x)
		}
		tp = onnxgraph.Int32Tensor(name, t.Shape, v32)
	default:
		tp = onnxgraph.FloatTensor(name, t.Shape, t.float32s())
	}
	c.inits = append(c.inits, tp)
	return name
}

// ints64 adds a small int64 initializer, shared between nodes.
func (c *converter) ints64(base string, shape []int64, v ...int64) string {
	key := fmt.Sprint("i64", shape, v)
	if n, ok := c.shared[key]; ok {
		return n
	}
	d := make([]float64, len(v))
	for i, x := range v {
		d[i] = float64(x)
	}
	n := c.addInit(base, &Tensor{DType: Int32, Shape: shape, Data: d}, true)
	c.shared[key] = n
	return n
}

// scalarF adds a shared float32 scalar initializer.
func (c *converter) scalarF(base string, v float64) string {
	key := fmt.Sprint("f32", v)
	if n, ok := c.shared[key]; ok {
		return n
	}
	n := c.addInit(base, &Tensor{DType: Float32, Shape: []int64{}, Data: []float64{v}}, false)
	c.shared[key] = n
	return n
}

// nhwc returns the ONNX name of v in TF layout, transposing (once per
// tensor) if it is stored channels-first, or adding it as an initializer if
// it is a constant.
func (c *converter) nhwc(v *value, hint string) (string, error) {
	if v.k != nil {
		if v.k.hasSym() {
			return "", fmt.Errorf("a shape that depends on the dynamic batch is used as data: fix the batch size")
		}
		if v.name == "" {
			v.name = c.addInit(hint, v.k, false)
		}
		return v.name, nil
	}
	if v.lead1 {
		if n, ok := c.toNHWC[v.name]; ok {
			return n, nil
		}
		target := make([]int64, len(v.shape))
		dyn := 0
		for i, d := range v.shape {
			target[i] = d
			if d < 0 {
				target[i], dyn = -1, dyn+1
			}
		}
		if dyn > 1 {
			return "", errDynamic
		}
		n := c.emit("Reshape", []string{v.name, c.ints64(v.name+"/squeeze", []int64{int64(len(target))}, target...)}, v.name+"/squeeze")
		c.toNHWC[v.name] = n
		return n, nil
	}
	if !v.nchw {
		return v.name, nil
	}
	if n, ok := c.toNHWC[v.name]; ok {
		return n, nil
	}
	n := c.emit("Transpose", []string{v.name}, v.name+"/nhwc", onnxgraph.AttrInts("perm", 0, 2, 3, 1))
	c.toNHWC[v.name] = n
	c.toNCHW[n] = v.name
	return n, nil
}

// nchw returns the ONNX name of the rank-4 v stored channels-first.
func (c *converter) nchw(v *value, hint string) (string, error) {
	if len(v.shape) != 4 {
		return "", fmt.Errorf("expected a 4-D tensor, got shape %s", fmtShape(v.shape))
	}
	if v.k != nil {
		return c.addInit(hint, transposeT(v.k, []int64{0, 3, 1, 2}), false), nil
	}
	if v.nchw {
		return v.name, nil
	}
	if n, ok := c.toNCHW[v.name]; ok {
		return n, nil
	}
	n := c.emit("Transpose", []string{v.name}, v.name+"/nchw", onnxgraph.AttrInts("perm", 0, 3, 1, 2))
	c.toNCHW[v.name] = n
	c.toNHWC[n] = v.name
	return n, nil
}

// batchSize returns an int64 [1] tensor holding N at run time.
func (c *converter) batchSize() string {
	if c.batch == "" {
		shape := c.emit("Shape", []string{c.opts.InputName}, c.opts.InputName+"/shape")
		c.batch = c.emit("Slice", []string{shape, c.ints64("zero", []int64{1}, 0), c.ints64("one", []int64{1}, 1)}, "batch_size")
	}
	return c.batch
}

// finish renames outputs, adds initializers and nodes to the graph and
// wraps it in a model.
func (c *converter) finish() (*onnx.ModelProto, error) {
	g := c.g
	g.AddInput(c.opts.InputName, onnxgraph.Float, dims(c.opts.InputShape)...)
	for _, o := range c.opts.Outputs {
		v := c.vals[canonRef(o.Tensor)]
		var src string
		var err error
		if v.k != nil {
			src, err = c.nhwc(v, o.Name+"/const")
		} else {
			src, err = c.nhwc(v, o.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("tfjs: output %q: %w", o.Tensor, err)
		}
		if p := c.producer(src); p != nil && src != c.opts.InputName && c.uses[canonRef(o.Tensor)] == 1 && !c.isOutputSource(src, o.Name) {
			c.rename(src, o.Name)
		} else {
			c.nodes = append(c.nodes, &onode{op: "Identity", in: []string{src}, out: []string{o.Name}})
		}
		g.AddOutput(o.Name, onnxgraph.Float, dims(v.shape)...)
	}
	for _, t := range c.inits {
		g.AddInitializer(t)
	}
	for _, n := range c.nodes {
		in := n.in
		if n.w != nil {
			wn := c.addInitLate(n.out[0]+"/weights", n.w)
			bn := c.addInitLate(n.out[0]+"/bias", n.b)
			in = []string{n.in[0], wn, bn}
		}
		g.AddNode(n.op, in, n.out, n.attrs...)
	}
	m, err := g.Model(c.opts.Opset)
	if err != nil {
		return nil, fmt.Errorf("tfjs: %s: building the ONNX graph failed: %w", c.m.Path, err)
	}
	m.DocString = "converted from TF.js graph model " + c.m.Path + " by osprey (infer/tfjs)"
	if v := cutResize(c.m, c.opts.Input, c.opts.InputShape); v != "" {
		setMeta(m, MetaResize, v)
	}
	return m, nil
}

func (c *converter) addInitLate(base string, t *Tensor) string {
	name := c.g.Unique(base)
	c.g.AddInitializer(onnxgraph.FloatTensor(name, t.Shape, t.float32s()))
	return name
}

// isOutputSource reports whether src already feeds another graph output
// under a different name (then it must be copied, not renamed).
func (c *converter) isOutputSource(src, name string) bool {
	for _, n := range c.nodes {
		if n.op == "Identity" && len(n.in) == 1 && n.in[0] == src && n.out[0] != name {
			return true
		}
	}
	return false
}

func (c *converter) producer(name string) *onode {
	for _, n := range c.nodes {
		for _, o := range n.out {
			if o == name {
				return n
			}
		}
	}
	return nil
}

func (c *converter) rename(from, to string) {
	for _, n := range c.nodes {
		for i := range n.out {
			if n.out[i] == from {
				n.out[i] = to
			}
		}
		for i := range n.in {
			if n.in[i] == from {
				n.in[i] = to
			}
		}
	}
}

func dims(shape []int64) []onnxgraph.Dim {
	out := make([]onnxgraph.Dim, len(shape))
	for i, d := range shape {
		switch {
		case d == -1:
			out[i] = onnxgraph.Sym("N")
		case d < 0:
			out[i] = onnxgraph.Sym(fmt.Sprintf("%dN", -d))
		default:
			out[i] = onnxgraph.Fixed(d)
		}
	}
	return out
}

// symNumel returns the element count of a shape as coef * N^pow.
func symNumel(shape []int64) (coef int64, pow int) {
	coef = 1
	for _, d := range shape {
		if d < 0 {
			coef *= -d
			pow++
		} else {
			coef *= d
		}
	}
	return coef, pow
}

var errDynamic = errors.New("this shape computation on the dynamic batch is not supported: fix the batch size (--batch)")

// resolveReshape turns TF reshape values (with -1 to infer and symbolic
// batch multiples) into a tracked shape.
func resolveReshape(in []int64, target []float64) ([]int64, error) {
	out := make([]int64, len(target))
	infer := -1
	for i, v := range target {
		if v == -1 {
			if infer >= 0 {
				return nil, fmt.Errorf("reshape target has two -1 entries")
			}
			infer = i
			continue
		}
		if v < 0 && !isSym(v) {
			return nil, fmt.Errorf("reshape target %v has a negative size", target)
		}
		out[i] = dimOf(v)
	}
	ic, ip := symNumel(in)
	if infer < 0 {
		oc, op := symNumel(out)
		if ic != oc || ip != op {
			return nil, fmt.Errorf("cannot reshape %s to %s", fmtShape(in), fmtShape(out))
		}
		return out, nil
	}
	out[infer] = 1
	oc, op := symNumel(out)
	if oc == 0 || ic%oc != 0 {
		return nil, fmt.Errorf("cannot reshape %s to %v", fmtShape(in), target)
	}
	switch ip - op {
	case 0:
		out[infer] = ic / oc
	case 1:
		out[infer] = -(ic / oc)
	default:
		return nil, errDynamic
	}
	return out, nil
}

// reshapeTo emits a Reshape of v to the tracked shape; at most one
// dimension may depend on N (it becomes -1).
func (c *converter) reshapeTo(v *value, shape []int64, outBase string) (*value, error) {
	if v.k != nil {
		return &value{k: reshapeT(v.k, shape), shape: shape}, nil
	}
	src, err := c.nhwc(v, outBase)
	if err != nil {
		return nil, err
	}
	target := make([]int64, len(shape))
	dyn := 0
	for i, d := range shape {
		target[i] = d
		if d < 0 {
			target[i] = -1
			dyn++
		}
	}
	if dyn > 1 {
		return nil, errDynamic
	}
	out := c.emit("Reshape", []string{src, c.ints64(outBase+"/shape", []int64{int64(len(target))}, target...)}, outBase)
	return &value{name: out, shape: shape}, nil
}

func normAxis(axis int64, rank int) (int, error) {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || axis >= int64(rank) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	return int(axis), nil
}

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }

const bigEnd = math.MaxInt32
