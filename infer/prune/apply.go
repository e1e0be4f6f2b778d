package prune

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"gonum.org/v1/gonum/mat"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
)

// ridge is the relative Tikhonov term of the refit: a channel that is dead
// or constant on the calibration frames makes the moment matrix singular.
const ridge = 1e-5

// convState is a Conv's weight and bias while edits are applied.
type convState struct {
	w    []float32
	dims []int64
	b    []float32 // nil: the Conv has no bias
}

// apply edits m's graph in place: refit every sink on its kept input
// channels first (with the sink's full set of output rows), then drop the
// removed output channels of the pruned Convs, their depthwise Convs and
// channel-wise ops. A sink that is itself a pruned Conv gets both.
func apply(m *onnx.ModelProto, ix *index, groups []*group, keeps [][]int, mom map[string]*moments) error {
	g := m.GetGraph()
	state := map[*onnx.NodeProto]*convState{}
	load := func(n *onnx.NodeProto) (*convState, error) {
		if s := state[n]; s != nil {
			return s, nil
		}
		wt := ix.inits[n.GetInput()[1]]
		w, err := floats(wt)
		if err != nil {
			return nil, err
		}
		s := &convState{w: w, dims: append([]int64(nil), wt.GetDims()...)}
		if len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
			if s.b, err = floats(ix.inits[n.GetInput()[2]]); err != nil {
				return nil, err
			}
		}
		state[n] = s
		return s, nil
	}
	for i, gr := range groups {
		for _, sk := range gr.sinks {
			s, err := load(sk.conv)
			if err != nil {
				return err
			}
			if err := refit(s, keeps[i], mom[sk.input]); err != nil {
				return fmt.Errorf("prune: refit %s: %w", sk.conv.GetName(), err)
			}
		}
	}
	for i, gr := range groups {
		for _, n := range append([]*onnx.NodeProto{gr.conv}, gr.dw...) {
			s, err := load(n)
			if err != nil {
				return err
			}
			s.keepRows(keeps[i])
		}
		for _, n := range gr.dw {
			setAttrInt(n, "group", int64(len(keeps[i])))
		}
		for _, n := range gr.follow {
			if err := sliceFollower(g, ix, n, gr.channels, keeps[i]); err != nil {
				return err
			}
		}
	}
	for n, s := range state {
		base := n.GetName()
		if base == "" {
			base = n.GetOutput()[0]
		}
		wn := unique(ix, base+"/pruned_weight")
		g.Initializer = append(g.Initializer, onnxgraph.FloatTensor(wn, s.dims, s.w))
		n.Input[1] = wn
		if s.b != nil {
			bn := unique(ix, base+"/pruned_bias")
			g.Initializer = append(g.Initializer, onnxgraph.FloatTensor(bn, []int64{int64(len(s.b))}, s.b))
			if len(n.Input) > 2 {
				n.Input[2] = bn
			} else {
				n.Input = append(n.Input, bn)
			}
		}
	}
	// Shapes recorded for the old channel counts would contradict the new
	// tensors; ONNX Runtime infers them again.
	g.ValueInfo = nil
	removeUnused(g)
	return nil
}

// refit replaces the sink's weights W (O x C, 1x1) and bias b by the least
// squares fit on the kept input channels K: with x~ = [x; 1] and
// M = E[x~ x~^T], the fit of W~ = [W b] is W~ M[:, K1] (M[K1, K1])^-1,
// K1 = K and the constant. The result always has a bias.
func refit(s *convState, keep []int, st *moments) error {
	if st == nil || st.n == 0 {
		return fmt.Errorf("no calibration statistics")
	}
	c := int(s.dims[1])
	o := int(s.dims[0])
	if st.channels != c {
		return fmt.Errorf("statistics have %d channels, the Conv reads %d", st.channels, c)
	}
	k1 := append(append([]int(nil), keep...), c)
	n := len(k1)
	a := mat.NewSymDense(n, nil)
	trace := 0.0
	for i, ki := range k1 {
		for j := i; j < n; j++ {
			a.SetSym(i, j, st.sum.At(ki, k1[j])/st.n)
		}
		trace += a.At(i, i)
	}
	lam := ridge*trace/float64(n) + 1e-12
	for i := 0; i < n-1; i++ { // the constant term is not shrunk
		a.SetSym(i, i, a.At(i, i)+lam)
	}
	// rhs = (W~ M[:, K1])^T, n x O.
	wt := mat.NewDense(c+1, o, nil) // W~^T
	for r := range o {
		for j := range c {
			wt.Set(j, r, float64(s.w[r*c+j]))
		}
		if s.b != nil {
			wt.Set(c, r, float64(s.b[r]))
		}
	}
	mk := mat.NewDense(n, c+1, nil) // M[K1, :]
	for i, ki := range k1 {
		for j := 0; j <= c; j++ {
			mk.Set(i, j, st.sum.At(ki, j)/st.n)
		}
	}
	var rhs mat.Dense
	rhs.Mul(mk, wt)
	var chol mat.Cholesky
	if !chol.Factorize(a) {
		return fmt.Errorf("the moment matrix is not positive definite")
	}
	var x mat.Dense
	if err := chol.SolveTo(&x, &rhs); err != nil {
		return err
	}
	k := len(keep)
	w := make([]float32, o*k)
	b := make([]float32, o)
	for r := range o {
		for i := range k {
			w[r*k+i] = float32(x.At(i, r))
		}
		b[r] = float32(x.At(k, r))
	}
	s.w, s.b = w, b
	s.dims[1] = int64(k)
	return nil
}

// keepRows keeps the output channels (first dimension) in keep.
func (s *convState) keepRows(keep []int) {
	per := len(s.w) / int(s.dims[0])
	w := make([]float32, 0, per*len(keep))
	for _, c := range keep {
		w = append(w, s.w[c*per:(c+1)*per]...)
	}
	s.w = w
	s.dims[0] = int64(len(keep))
	if s.b != nil {
		b := make([]float32, len(keep))
		for i, c := range keep {
			b[i] = s.b[c]
		}
		s.b = b
	}
}

// sliceFollower slices the per-channel constants of a channel-wise node.
func sliceFollower(g *onnx.GraphProto, ix *index, n *onnx.NodeProto, channels int, keep []int) error {
	for i, in := range n.GetInput() {
		t := ix.inits[in]
		if t == nil || in == "" {
			continue
		}
		pc, _ := perChannelConst(t, channels)
		bn := n.GetOpType() == "BatchNormalization" && i > 0
		if !pc && !bn {
			continue
		}
		v, err := floats(t)
		if err != nil {
			return err
		}
		out := make([]float32, len(keep))
		for j, c := range keep {
			out[j] = v[c]
		}
		dims := append([]int64(nil), t.GetDims()...)
		for d := range dims {
			if dims[d] == int64(channels) {
				dims[d] = int64(len(keep))
			}
		}
		name := unique(ix, in+"/pruned_for_"+n.GetOutput()[0])
		g.Initializer = append(g.Initializer, onnxgraph.FloatTensor(name, dims, out))
		n.Input[i] = name
	}
	return nil
}

// unique returns base, or base_1, base_2... if taken, and reserves it.
func unique(ix *index, base string) string {
	name := base
	for i := 1; ix.inits[name] != nil || ix.producer[name] != nil; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	ix.inits[name] = &onnx.TensorProto{Name: name}
	return name
}

func setAttrInt(n *onnx.NodeProto, name string, v int64) {
	if a := attr(n, name); a != nil {
		a.I = v
		return
	}
	n.Attribute = append(n.Attribute, onnxgraph.AttrInt(name, v))
}

// removeUnused drops initializers no node reads any more (and the graph
// inputs that old IR versions list for them).
func removeUnused(g *onnx.GraphProto) {
	used := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			used[in] = true
		}
	}
	for _, o := range g.GetOutput() {
		used[o.GetName()] = true
	}
	gone := map[string]bool{}
	kept := g.Initializer[:0]
	for _, t := range g.GetInitializer() {
		if used[t.GetName()] {
			kept = append(kept, t)
		} else {
			gone[t.GetName()] = true
		}
	}
	g.Initializer = kept
	ins := g.Input[:0]
	for _, in := range g.GetInput() {
		if !gone[in.GetName()] {
			ins = append(ins, in)
		}
	}
	g.Input = ins
}
