package prune

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// group is one prunable unit: a dense Conv whose output channels can be
// removed because every tensor they flow into is either channel-wise
// (activations, batch norm, per-channel constants, depthwise Convs, which
// follow the channel set of their input) or the input of a dense 1x1 Conv
// (a sink), whose input channels are then removed and whose weights are
// reconstructed by least squares. A residual Add, a Concat, a reshape or a
// graph output anywhere in that region makes the Conv not prunable.
type group struct {
	conv     *onnx.NodeProto // the Conv whose output channels go
	channels int
	follow   []*onnx.NodeProto // channel-wise nodes in between, in graph order
	dw       []*onnx.NodeProto // depthwise Convs in between
	sinks    []sink
	// bnScale is the scale of a BatchNormalization right after conv (nil
	// when the model has its batch norm folded into the Conv weights).
	bnScale []float32
}

// sink is a dense 1x1 Conv that reads the group's channels.
type sink struct {
	conv  *onnx.NodeProto
	input string // the tensor it reads: the activation whose moments are needed
}

// index answers "who produces / consumes this tensor" and "is it a
// constant" for one graph.
type index struct {
	producer  map[string]*onnx.NodeProto
	consumers map[string][]*onnx.NodeProto
	inits     map[string]*onnx.TensorProto
	outputs   map[string]bool
	order     map[*onnx.NodeProto]int
}

func indexGraph(g *onnx.GraphProto) *index {
	ix := &index{
		producer:  map[string]*onnx.NodeProto{},
		consumers: map[string][]*onnx.NodeProto{},
		inits:     map[string]*onnx.TensorProto{},
		outputs:   map[string]bool{},
		order:     map[*onnx.NodeProto]int{},
	}
	for _, t := range g.GetInitializer() {
		ix.inits[t.GetName()] = t
	}
	for i, n := range g.GetNode() {
		ix.order[n] = i
		for _, o := range n.GetOutput() {
			ix.producer[o] = n
		}
		for _, in := range n.GetInput() {
			if in != "" {
				ix.consumers[in] = append(ix.consumers[in], n)
			}
		}
	}
	for _, o := range g.GetOutput() {
		ix.outputs[o.GetName()] = true
	}
	return ix
}

func attr(n *onnx.NodeProto, name string) *onnx.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func attrInt(n *onnx.NodeProto, name string, def int64) int64 {
	if a := attr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

// convWeight returns a Conv's weight initializer, or nil when the weight is
// computed or the bias is not a constant (nothing here can slice those).
func (ix *index) convWeight(n *onnx.NodeProto) *onnx.TensorProto {
	if n.GetOpType() != "Conv" || len(n.GetInput()) < 2 {
		return nil
	}
	w := ix.inits[n.GetInput()[1]]
	if w == nil || len(w.GetDims()) != 4 || w.GetDataType() != int32(onnx.TensorProto_FLOAT) {
		return nil
	}
	if len(n.GetInput()) > 2 && n.GetInput()[2] != "" && ix.inits[n.GetInput()[2]] == nil {
		return nil
	}
	return w
}

// channelWise are the unary ops whose output channel c depends only on
// input channel c.
var channelWise = map[string]bool{"Relu": true, "Clip": true, "LeakyRelu": true, "Sigmoid": true, "HardSigmoid": true, "HardSwish": true, "Identity": true}

// perChannelConst reports whether t is a constant that broadcasts one value
// per NCHW channel (or a scalar, which needs no slicing).
func perChannelConst(t *onnx.TensorProto, c int) (perChannel, scalar bool) {
	n := 1
	for _, d := range t.GetDims() {
		n *= int(d)
	}
	if n == 1 {
		return false, true
	}
	d := t.GetDims()
	switch len(d) {
	case 3:
		return d[0] == int64(c) && d[1] == 1 && d[2] == 1, false
	case 4:
		return d[0] == 1 && d[1] == int64(c) && d[2] == 1 && d[3] == 1, false
	}
	return false, false
}

// findGroups returns every prunable Conv of g, in graph order, and for the
// Convs that are not prunable the first reason found (for the error when
// none is).
func findGroups(g *onnx.GraphProto) ([]*group, []string) {
	ix := indexGraph(g)
	var groups []*group
	var why []string
	for _, n := range g.GetNode() {
		if n.GetOpType() != "Conv" {
			continue
		}
		gr, reason := ix.group(n)
		if gr == nil {
			why = append(why, fmt.Sprintf("%s: %s", n.GetName(), reason))
			continue
		}
		groups = append(groups, gr)
	}
	return groups, why
}

// group walks the region fed by conv's output channels.
func (ix *index) group(conv *onnx.NodeProto) (*group, string) {
	w := ix.convWeight(conv)
	if w == nil {
		return nil, "weight or bias is not a float initializer"
	}
	if attrInt(conv, "group", 1) != 1 {
		return nil, "grouped or depthwise (its channels follow its input)"
	}
	c := int(w.GetDims()[0])
	if c < 2 {
		return nil, "one output channel"
	}
	gr := &group{conv: conv, channels: c}
	seen := map[string]bool{}
	var walk func(t string) string
	walk = func(t string) string {
		if seen[t] {
			return ""
		}
		seen[t] = true
		if ix.outputs[t] {
			return fmt.Sprintf("its channels reach the graph output %s", t)
		}
		if len(ix.consumers[t]) == 0 {
			return fmt.Sprintf("%s is never used", t)
		}
		for _, m := range ix.consumers[t] {
			if len(m.GetOutput()) != 1 {
				return fmt.Sprintf("consumer %s (%s) has %d outputs", m.GetName(), m.GetOpType(), len(m.GetOutput()))
			}
			// t may only be the data input of m (input 0), never a weight.
			for i, in := range m.GetInput() {
				if in == t && i != 0 && m.GetOpType() != "Add" && m.GetOpType() != "Mul" {
					return fmt.Sprintf("%s is an operand of %s (%s) other than its data input", t, m.GetName(), m.GetOpType())
				}
			}
			switch op := m.GetOpType(); {
			case channelWise[op]:
				for _, in := range m.GetInput()[1:] {
					if in != "" && ix.inits[in] == nil {
						return fmt.Sprintf("%s (%s) has a computed operand", m.GetName(), op)
					}
				}
				gr.follow = append(gr.follow, m)
			case op == "BatchNormalization":
				for _, in := range m.GetInput()[1:] {
					if ix.inits[in] == nil {
						return fmt.Sprintf("%s (BatchNormalization) has a computed parameter", m.GetName())
					}
				}
				if ix.producer[t] == conv && gr.bnScale == nil {
					s, err := floats(ix.inits[m.GetInput()[1]])
					if err != nil {
						return err.Error()
					}
					gr.bnScale = s
				}
				gr.follow = append(gr.follow, m)
			case op == "Add" || op == "Mul":
				other := m.GetInput()[0]
				if other == t {
					other = m.GetInput()[1]
				}
				k := ix.inits[other]
				if k == nil {
					return fmt.Sprintf("%s (%s) joins it with another branch (a residual sum keeps its channel set)", m.GetName(), op)
				}
				if pc, sc := perChannelConst(k, c); !pc && !sc {
					return fmt.Sprintf("%s (%s) has a constant %v that is not per channel", m.GetName(), op, k.GetDims())
				}
				gr.follow = append(gr.follow, m)
			case op == "Conv":
				mw := ix.convWeight(m)
				if mw == nil {
					return fmt.Sprintf("consumer %s has a computed weight", m.GetName())
				}
				d := mw.GetDims()
				grp := attrInt(m, "group", 1)
				switch {
				case grp == int64(c) && d[0] == int64(c) && d[1] == 1:
					gr.dw = append(gr.dw, m)
				case grp == 1 && d[1] == int64(c) && d[2] == 1 && d[3] == 1:
					gr.sinks = append(gr.sinks, sink{conv: m, input: t})
					continue // the channel set ends here
				case grp == 1:
					return fmt.Sprintf("consumer %s is a %dx%d Conv (only 1x1 Convs are reconstructed)", m.GetName(), d[2], d[3])
				default:
					return fmt.Sprintf("consumer %s is a grouped Conv (group %d)", m.GetName(), grp)
				}
			default:
				return fmt.Sprintf("consumer %s is %s, which mixes or reshapes channels", m.GetName(), op)
			}
			if r := walk(m.GetOutput()[0]); r != "" {
				return r
			}
		}
		return ""
	}
	if r := walk(conv.GetOutput()[0]); r != "" {
		return nil, r
	}
	if len(gr.sinks) == 0 {
		return nil, "no 1x1 Conv reads its channels"
	}
	return gr, ""
}
