package quant

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// ErrOptions is wrapped by errors about quantisation options.
var ErrOptions = errors.New("quant: bad options")

// DefaultOps are the operators whose inputs get QuantizeLinear /
// DequantizeLinear pairs (ONNX Runtime fuses DQ->op->Q into QLinear* kernels).
var DefaultOps = []string{"Conv", "MatMul", "Gemm", "Add"}

// computeOps are the heavy operators; everything with none of them
// downstream is the model's decoding tail (box maths, Exp, Sigmoid ...).
var computeOps = map[string]bool{"Conv": true, "MatMul": true, "Gemm": true}

// fusedActivations follow a compute op and are folded into its quantised
// output (ORT drops Relu/Clip before a QuantizeLinear whose range covers it).
var fusedActivations = map[string]bool{"Relu": true, "Clip": true}

// Options configure static quantisation.
type Options struct {
	// Method and Percentile choose the activation-range calibration
	// (default: percentile 99.99).
	Method     Method
	Percentile float64
	// Ops lists the operator types to quantise (DefaultOps when nil).
	Ops []string
	// Exclude holds glob patterns matched against node names and op types;
	// matching nodes stay FP32.
	Exclude []string
	// QuantizeTail also quantises nodes after the last Conv/MatMul/Gemm
	// (the decoding tail), which stays FP32 by default.
	QuantizeTail bool
	// QuantizeHeads also quantises the last compute ops (the raw box/score
	// heads). By default they stay FP32: raw score logits span hundreds of
	// units while the decision happens near 0, which 8 bits cannot hold
	// (BlazeFace precision fell from 1.0 to 0.03 with quantised heads).
	QuantizeHeads bool
}

// Report describes what a quantisation did.
type Report struct {
	QuantizedNodes  int
	Activations     int
	Weights         int
	ExcludedNodes   []string
	PerChannel      bool
	OpsetBumpedFrom int64
	// FoldedAdds counts constant Adds moved into a Conv bias first.
	FoldedAdds int
	// Uint8 is set when the input was made uint8 (FileConfig.Uint8Input).
	Uint8 *Uint8Report
}

// plan is the set of nodes and tensors a static quantisation touches.
type plan struct {
	quantNodes  map[*onnx.NodeProto]bool
	activations []string // tensors to calibrate and Q/DQ
	excluded    []string
	excludedSet map[*onnx.NodeProto]bool
	perChannel  bool
	bumpFrom    int64
}

// opsBrokenBy13 changed their inputs at opset 13, so a model using them
// cannot simply be relabelled opset 13 to get per-channel QDQ.
var opsBrokenBy13 = map[string]bool{"Squeeze": true, "Unsqueeze": true, "Split": true, "ReduceSum": true}

func makePlan(m *onnx.ModelProto, opts Options) (*plan, error) {
	g := m.GetGraph()
	ix := indexGraph(g)
	ops := opts.Ops
	if ops == nil {
		ops = DefaultOps
	}
	p := &plan{quantNodes: map[*onnx.NodeProto]bool{}}

	v := opsetVersion(m)
	switch {
	case v < 10:
		return nil, fmt.Errorf("%w: opset %d has no QuantizeLinear (need >= 10); re-export the model", ErrModel, v)
	case v >= 13:
		p.perChannel = true
	default:
		p.perChannel = true
		for _, n := range g.GetNode() {
			if opsBrokenBy13[n.GetOpType()] {
				p.perChannel = false
			}
		}
		if p.perChannel {
			p.bumpFrom = v
		}
	}

	// Exclusions: every pattern must match something, so typos surface.
	excluded := map[*onnx.NodeProto]bool{}
	for _, pat := range opts.Exclude {
		re, err := globRegexp(pat)
		if err != nil {
			return nil, fmt.Errorf("%w: --exclude pattern %q: %v", ErrOptions, pat, err)
		}
		hit := false
		for _, n := range g.GetNode() {
			if re.MatchString(n.GetName()) || re.MatchString(n.GetOpType()) {
				excluded[n] = true
				hit = true
			}
		}
		if !hit {
			return nil, fmt.Errorf("%w: --exclude pattern %q matches no node name or operator in the model (see `pipeline model inspect`)", ErrOptions, pat)
		}
	}
	// Tail: nodes with no compute op downstream (nodes are topologically
	// sorted, so one reverse pass sees consumers first).
	computeBelow := map[*onnx.NodeProto]bool{}
	nodes := g.GetNode()
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		for _, o := range n.GetOutput() {
			for _, c := range ix.consumers[o] {
				if computeOps[c.GetOpType()] || computeBelow[c] {
					computeBelow[n] = true
				}
			}
		}
	}
	isTail := func(n *onnx.NodeProto) bool {
		return !opts.QuantizeTail && !computeBelow[n] && !computeOps[n.GetOpType()]
	}
	p.excludedSet = excluded
	isHead := func(n *onnx.NodeProto) bool { return computeOps[n.GetOpType()] && !computeBelow[n] }
	for _, n := range nodes {
		if excluded[n] || isTail(n) {
			if excluded[n] {
				p.excluded = append(p.excluded, nodeLabel(n))
			}
			continue
		}
		if isHead(n) && !opts.QuantizeHeads {
			continue
		}
		if !slices.Contains(ops, n.GetOpType()) {
			continue
		}
		if !quantizableShape(n, ix) {
			continue
		}
		p.quantNodes[n] = true
	}

	// Activations: the float inputs of quantised nodes, and their outputs
	// (moved past a following Relu/Clip) so ORT can fuse DQ->op->Q.
	seen := map[string]bool{}
	add := func(t string) {
		if t == "" || seen[t] || ix.inits[t] != nil {
			return
		}
		seen[t] = true
		p.activations = append(p.activations, t)
	}
	for _, n := range nodes {
		if !p.quantNodes[n] {
			continue
		}
		for i, in := range n.GetInput() {
			if isWeightInput(n, i) && ix.inits[in] != nil {
				continue
			}
			add(in)
		}
		out := n.GetOutput()[0]
		if cs := ix.consumers[out]; len(cs) == 1 && fusedActivations[cs[0].GetOpType()] && !excluded[cs[0]] && !ix.outputs[out] {
			out = cs[0].GetOutput()[0]
		}
		if ix.outputs[out] {
			continue // graph outputs keep their names and FP32 values
		}
		add(out)
	}
	return p, nil
}

// globRegexp compiles a glob where * matches any run of characters
// (slashes included: node names are paths like BoxPredictor_0/Conv) and ?
// any one character.
func globRegexp(pat string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pat {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

func nodeLabel(n *onnx.NodeProto) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	return n.GetOpType() + "->" + n.GetOutput()[0]
}

// isWeightInput reports whether input i of n is a weight/bias slot that is
// quantised as a constant rather than calibrated.
func isWeightInput(n *onnx.NodeProto, i int) bool {
	switch n.GetOpType() {
	case "Conv", "Gemm":
		return i >= 1
	case "MatMul", "Add":
		return true // constants in any slot are weights
	}
	return false
}

// quantizableShape rejects node forms the QDQ rewrite does not handle.
func quantizableShape(n *onnx.NodeProto, ix *graphIndex) bool {
	switch n.GetOpType() {
	case "Conv":
		return len(n.GetInput()) >= 2 && ix.inits[n.GetInput()[1]] != nil
	case "Gemm":
		return attrIntOr(n, "transA", 0) == 0
	}
	return true
}

// actQuant returns uint8 asymmetric scale and zero point for a range; the
// range always includes 0 so zero is exact (padding, ReLU).
func actQuant(r Range) (float32, uint8) {
	lo, hi := min(float64(r.Min), 0), max(float64(r.Max), 0)
	if hi-lo < 1e-8 {
		return 1, 0
	}
	scale := (hi - lo) / 255
	zp := math.Round(-lo / scale)
	return float32(scale), uint8(min(max(zp, 0), 255))
}

// weightQuant quantises w symmetrically to int8 [-127,127], per channel
// along axis 0 when channels > 1.
func weightQuant(w []float32, channels int) ([]int8, []float32) {
	per := len(w) / channels
	q := make([]int8, len(w))
	scales := make([]float32, channels)
	for c := 0; c < channels; c++ {
		var m float64
		for _, x := range w[c*per : (c+1)*per] {
			m = max(m, math.Abs(float64(x)))
		}
		s := m / 127
		if s == 0 {
			s = 1
		}
		scales[c] = float32(s)
		for i := c * per; i < (c+1)*per; i++ {
			q[i] = int8(min(max(math.Round(float64(w[i])/s), -127), 127))
		}
	}
	return q, scales
}

// QuantizeStatic returns an INT8 QDQ copy of m whose activation ranges come
// from running m on frames (model input shape given by shape).
func QuantizeStatic(m *onnx.ModelProto, frames [][]float32, shape []int64, opts Options) (*onnx.ModelProto, Report, error) {
	opts, err := checkMethod(opts)
	if err != nil {
		return nil, Report{}, err
	}
	m = proto.Clone(m).(*onnx.ModelProto)
	folded := foldConstAdds(m.GetGraph())
	p, err := makePlan(m, opts)
	if err != nil {
		return nil, Report{}, err
	}
	if len(p.quantNodes) == 0 {
		return nil, Report{}, fmt.Errorf("%w: nothing to quantise (no %v outside the excluded nodes)", ErrOptions, opts.Ops)
	}
	ranges, err := Calibrate(m, frames, shape, p.activations, opts.Method, opts.Percentile)
	if err != nil {
		return nil, Report{}, err
	}
	q, rep, err := applyQDQ(m, p, ranges)
	rep.FoldedAdds = folded
	return q, rep, err
}

// checkMethod validates the calibration method and fills its defaults.
func checkMethod(opts Options) (Options, error) {
	if opts.Method == "" {
		opts.Method = Percentile // min-max lets rare outliers squeeze every other value
	}
	switch opts.Method {
	case MinMax, Entropy:
	case Percentile:
		if opts.Percentile == 0 {
			opts.Percentile = 99.99
		}
		if opts.Percentile <= 50 || opts.Percentile > 100 {
			return opts, fmt.Errorf("%w: --percentile %g must be in (50,100]", ErrOptions, opts.Percentile)
		}
	default:
		return opts, fmt.Errorf("%w: --method %q: use minmax, percentile or entropy", ErrOptions, opts.Method)
	}
	return opts, nil
}

// qdqBuilder accumulates new initializers and nodes for the rewrite.
type qdqBuilder struct {
	inits      []*onnx.TensorProto
	perChannel bool
	actScale   map[string]float32
	weightDQ   map[string]string
}

func applyQDQ(m *onnx.ModelProto, p *plan, ranges map[string]Range) (*onnx.ModelProto, Report, error) {
	out := proto.Clone(m).(*onnx.ModelProto)
	g := out.GetGraph()
	// Map the plan's node pointers (into m) onto the clone by position.
	quant, excl := map[int]bool{}, map[int]bool{}
	for i, n := range m.GetGraph().GetNode() {
		quant[i] = p.quantNodes[n]
		excl[i] = p.excludedSet[n]
	}
	ix := indexGraph(g)
	b := &qdqBuilder{perChannel: p.perChannel, actScale: map[string]float32{}, weightDQ: map[string]string{}}
	rep := Report{QuantizedNodes: len(p.quantNodes), ExcludedNodes: p.excluded, PerChannel: p.perChannel, OpsetBumpedFrom: p.bumpFrom}

	// Q/DQ pairs on activations, placed right after their producer.
	after := map[string][]*onnx.NodeProto{} // producer output -> nodes to insert after it
	var head []*onnx.NodeProto              // for graph inputs
	dqName := map[string]string{}
	for _, t := range p.activations {
		r, ok := ranges[t]
		if !ok {
			return nil, rep, fmt.Errorf("%w: no calibration range for %q", ErrModel, t)
		}
		scale, zp := actQuant(r)
		b.actScale[t] = scale
		sName, zName := t+"_scale", t+"_zero_point"
		b.inits = append(b.inits, floatTensor(sName, nil, []float32{scale}), uint8Tensor(zName, nil, []uint8{zp}))
		q := node("QuantizeLinear", t+"_QuantizeLinear", []string{t, sName, zName}, []string{t + "_quantized"})
		dq := node("DequantizeLinear", t+"_DequantizeLinear", []string{t + "_quantized", sName, zName}, []string{t + "_dequantized"})
		dqName[t] = t + "_dequantized"
		if ix.producer[t] == nil {
			head = append(head, q, dq)
		} else {
			after[t] = append(after[t], q, dq)
		}
		rep.Activations++
	}

	var nodes []*onnx.NodeProto
	nodes = append(nodes, head...)
	for i, n := range g.GetNode() {
		var pre []*onnx.NodeProto
		if quant[i] {
			var err error
			pre, err = b.quantizeWeights(n, ix, dqName)
			if err != nil {
				return nil, rep, err
			}
		}
		// Every consumer of a quantised tensor reads its dequantised copy
		// (a second FP32 reader would stop ORT fusing producer and Q);
		// excluded nodes read the FP32 original, as asked.
		if !excl[i] {
			for j, in := range n.GetInput() {
				if d, ok := dqName[in]; ok {
					n.Input[j] = d
				}
			}
		}
		nodes = append(nodes, pre...)
		nodes = append(nodes, n)
		for _, o := range n.GetOutput() {
			nodes = append(nodes, after[o]...)
		}
	}
	rep.Weights = len(b.weightDQ)
	g.Node = nodes
	g.Initializer = append(g.Initializer, b.inits...)
	g.ValueInfo = nil // stale after the rewrite; ORT re-infers shapes
	if p.bumpFrom != 0 {
		for _, o := range out.GetOpsetImport() {
			if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
				o.Version = 13
			}
		}
		if out.GetIrVersion() < 7 {
			out.IrVersion = 7
		}
	}
	removeUnusedInitializers(g)
	return out, rep, nil
}

// quantizeWeights replaces the constant inputs of n with DQ(int8) weights
// and, for Conv/Gemm, an int32 bias scaled by input*weight scales.
func (b *qdqBuilder) quantizeWeights(n *onnx.NodeProto, ix *graphIndex, dqName map[string]string) ([]*onnx.NodeProto, error) {
	var pre []*onnx.NodeProto
	op := n.GetOpType()
	var wScales []float32
	for i, in := range n.GetInput() {
		t := ix.inits[in]
		if in == "" || t == nil || !isWeightInput(n, i) {
			continue
		}
		if onnx.TensorProto_DataType(t.GetDataType()) != onnx.TensorProto_FLOAT {
			continue
		}
		isBias := (op == "Conv" || op == "Gemm") && i == 2
		if isBias {
			continue // after the weight, below
		}
		w, err := floatData(t)
		if err != nil {
			return nil, err
		}
		if op == "Add" {
			// A constant addend: per-tensor uint8 like an activation.
			lo, hi := float32(0), float32(0)
			for _, x := range w {
				lo, hi = min(lo, x), max(hi, x)
			}
			s, zp := actQuant(Range{lo, hi})
			qv := make([]uint8, len(w))
			for k, x := range w {
				qv[k] = uint8(min(max(math.Round(float64(x/s))+float64(zp), 0), 255))
			}
			name := in + "_quantized"
			if _, done := b.weightDQ[in]; !done {
				b.inits = append(b.inits, uint8Tensor(name, t.GetDims(), qv), floatTensor(in+"_scale", nil, []float32{s}), uint8Tensor(in+"_zero_point", nil, []uint8{zp}))
				pre = append(pre, node("DequantizeLinear", in+"_DequantizeLinear", []string{name, in + "_scale", in + "_zero_point"}, []string{in + "_dequantized"}))
				b.weightDQ[in] = in + "_dequantized"
			}
			n.Input[i] = b.weightDQ[in]
			continue
		}
		channels := 1
		if op == "Conv" && b.perChannel && len(t.GetDims()) > 0 {
			channels = int(t.GetDims()[0])
		}
		q, scales := weightQuant(w, channels)
		wScales = scales
		if _, done := b.weightDQ[in]; !done {
			sDims := []int64{int64(channels)}
			zp := make([]int8, channels)
			var attrs []*onnx.AttributeProto
			if channels == 1 {
				sDims = nil
			} else {
				attrs = append(attrs, attrInt("axis", 0))
			}
			b.inits = append(b.inits, int8Tensor(in+"_quantized", t.GetDims(), q), floatTensor(in+"_scale", sDims, scales), int8Tensor(in+"_zero_point", sDims, zp))
			pre = append(pre, node("DequantizeLinear", in+"_DequantizeLinear", []string{in + "_quantized", in + "_scale", in + "_zero_point"}, []string{in + "_dequantized"}, attrs...))
			b.weightDQ[in] = in + "_dequantized"
		}
		n.Input[i] = b.weightDQ[in]
	}
	if (op == "Conv" || op == "Gemm") && len(n.GetInput()) > 2 && n.GetInput()[2] != "" && wScales != nil {
		in := n.GetInput()[2]
		t := ix.inits[in]
		xScale, ok := b.actScale[n.GetInput()[0]]
		if t == nil || !ok {
			return pre, nil
		}
		bias, err := floatData(t)
		if err != nil {
			return nil, err
		}
		name := n.GetOutput()[0] + "_bias"
		scales := make([]float32, len(bias))
		q := make([]int32, len(bias))
		for c := range bias {
			ws := wScales[0]
			if len(wScales) == len(bias) {
				ws = wScales[c]
			}
			scales[c] = xScale * ws
			q[c] = int32(min(max(math.Round(float64(bias[c])/float64(scales[c])), math.MinInt32), math.MaxInt32))
		}
		var attrs []*onnx.AttributeProto
		sDims := []int64{int64(len(bias))}
		if len(wScales) == 1 {
			scales, sDims = scales[:1], nil
		} else {
			attrs = append(attrs, attrInt("axis", 0))
		}
		zp := make([]int32, len(scales))
		b.inits = append(b.inits, int32Tensor(name+"_quantized", t.GetDims(), q), floatTensor(name+"_scale", sDims, scales), int32Tensor(name+"_zero_point", sDims, zp))
		pre = append(pre, node("DequantizeLinear", name+"_DequantizeLinear", []string{name + "_quantized", name + "_scale", name + "_zero_point"}, []string{name + "_dequantized"}, attrs...))
		n.Input[2] = name + "_dequantized"
	}
	return pre, nil
}

// removeUnusedInitializers drops FP32 weights that only the quantised nodes read.
func removeUnusedInitializers(g *onnx.GraphProto) {
	used := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			used[in] = true
		}
	}
	for _, o := range g.GetOutput() {
		used[o.GetName()] = true
	}
	kept := g.Initializer[:0]
	for _, t := range g.GetInitializer() {
		if used[t.GetName()] {
			kept = append(kept, t)
		}
	}
	g.Initializer = kept
	var ins []*onnx.ValueInfoProto
	for _, in := range g.GetInput() {
		if used[in.GetName()] {
			ins = append(ins, in)
		}
	}
	g.Input = ins
}
