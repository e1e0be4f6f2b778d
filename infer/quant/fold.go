package quant

import (
	"github.com/advancedclimatesystems/gonnx/onnx"
)

// foldConstAdds moves per-channel constant additions into the bias of the
// Conv they follow, in place. TF graphs often keep a batch-norm shift as a
// separate Add, sometimes after the residual sum (TF's AddOpsRewrite turns
// conv+shift+skip into (conv+skip)+shift). In FP32 the result is the same;
// quantised, the shift becomes part of the exact int32 bias instead of a
// per-tensor uint8 operand of one more QLinearAdd. Returns how many Adds went.
func foldConstAdds(g *onnx.GraphProto) int {
	ix := indexGraph(g)
	single := func(t string) bool { return len(ix.consumers[t]) == 1 && !ix.outputs[t] }
	// convFor returns the Conv producing t if t feeds only its consumer.
	convFor := func(t string) *onnx.NodeProto {
		c := ix.producer[t]
		if c == nil || c.GetOpType() != "Conv" || !single(t) || len(c.GetInput()) < 2 || ix.inits[c.GetInput()[1]] == nil {
			return nil
		}
		return c
	}
	removed := map[*onnx.NodeProto]bool{}
	var extra []*onnx.TensorProto
	for _, a := range g.GetNode() {
		if a.GetOpType() != "Add" || len(a.GetInput()) != 2 {
			continue
		}
		ci := -1
		for i, in := range a.GetInput() {
			if ix.inits[in] != nil {
				ci = i
			}
		}
		if ci < 0 {
			continue
		}
		c := ix.inits[a.GetInput()[ci]]
		other := a.GetInput()[1-ci]
		// Either Add(conv, c) or Add(Add(conv, skip), c).
		var conv, via *onnx.NodeProto
		if conv = convFor(other); conv == nil {
			l := ix.producer[other]
			if l == nil || l.GetOpType() != "Add" || removed[l] || !single(other) {
				continue
			}
			for _, in := range l.GetInput() {
				if conv = convFor(in); conv != nil {
					break
				}
			}
			via = l
		}
		if conv == nil {
			continue
		}
		channels := ix.inits[conv.GetInput()[1]].GetDims()[0]
		if !perChannel(c.GetDims(), channels) {
			continue
		}
		shift, err := floatData(c)
		if err != nil {
			continue
		}
		bias := make([]float32, channels)
		if len(conv.GetInput()) > 2 && conv.GetInput()[2] != "" {
			t := ix.inits[conv.GetInput()[2]]
			if t == nil {
				continue
			}
			b, err := floatData(t)
			if err != nil || len(b) != int(channels) {
				continue
			}
			copy(bias, b)
		}
		for i := range bias {
			bias[i] += shift[i]
		}
		name := conv.GetOutput()[0] + "_folded_bias"
		extra = append(extra, floatTensor(name, []int64{channels}, bias))
		if len(conv.GetInput()) > 2 {
			conv.Input[2] = name
		} else {
			conv.Input = append(conv.Input, name)
		}
		// The last node before a takes over a's output name.
		last := conv
		if via != nil {
			last = via
		}
		last.Output[0] = a.GetOutput()[0]
		removed[a] = true
	}
	if len(removed) == 0 {
		return 0
	}
	kept := g.Node[:0]
	for _, n := range g.GetNode() {
		if !removed[n] {
			kept = append(kept, n)
		}
	}
	g.Node = kept
	g.Initializer = append(g.Initializer, extra...)
	removeUnusedInitializers(g)
	return len(removed)
}

// perChannel reports whether dims broadcast as one value per NCHW channel.
func perChannel(dims []int64, c int64) bool {
	switch len(dims) {
	case 3: // [C] alone would broadcast along W, not C
		return dims[0] == c && dims[1] == 1 && dims[2] == 1
	case 4:
		return dims[0] == 1 && dims[1] == c && dims[2] == 1 && dims[3] == 1
	}
	return false
}
