package prune

import (
	"fmt"
	"math/rand/v2"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"gonum.org/v1/gonum/mat"
	"google.golang.org/protobuf/proto"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
	"github.com/osprey-vision/osprey/infer/quant"
)

// target is one refitted 1x1 Conv for a refinement pass.
type target struct {
	output string // the Conv's output tensor (the same name in both models)
	input  string // the tensor it reads
	rows   []int  // its output channels kept in the pruned model (nil: all)
}

// refine refits every sink of pruned again, as He et al. do: the inputs are
// now the pruned model's own activations, so the fit also corrects what
// pruning changed upstream, and the targets are the original model's sink
// outputs. Both models run on the same frames; positions are sampled alike
// in both (the sinks are 1x1, stride 1, unpadded; others keep the first fit).
func refine(orig, pruned *onnx.ModelProto, targets []target, frames [][]float32, shape []int64, samples int) (int, error) {
	ixo := indexGraph(orig.GetGraph())
	var ok []target
	for _, tg := range targets {
		n := ixo.producer[tg.output]
		if n == nil || !plain1x1(n) {
			continue
		}
		ok = append(ok, tg)
	}
	if len(ok) == 0 {
		return 0, nil
	}
	// Two sinks may read one tensor; each tensor is one session output.
	var ys, xs []string
	yi, xi := make([]int, len(ok)), make([]int, len(ok))
	for i, tg := range ok {
		yi[i], ys = slot(ys, tg.output)
		xi[i], xs = slot(xs, tg.input)
	}
	so, err := session(orig, ys, "original model")
	if err != nil {
		return 0, err
	}
	defer so.Close()
	sp, err := session(pruned, xs, "pruned model")
	if err != nil {
		return 0, err
	}
	defer sp.Close()
	type acc struct {
		xx *mat.SymDense
		xy *mat.Dense
		n  float64
	}
	accs := make([]*acc, len(ok))
	rng := rand.New(rand.NewPCG(3, 4))
	for _, f := range frames {
		ro, err := so.Run(shape, f)
		if err != nil {
			return 0, err
		}
		rp, err := sp.Run(shape, f)
		if err != nil {
			return 0, err
		}
		for i, tg := range ok {
			x, y := rp[xi[i]], ro[yi[i]]
			if len(x.Shape) != 4 || len(y.Shape) != 4 || x.Shape[2] != y.Shape[2] || x.Shape[3] != y.Shape[3] {
				return 0, fmt.Errorf("%w: %s %v and %s %v do not line up", quant.ErrModel, tg.input, x.Shape, tg.output, y.Shape)
			}
			k, hw := int(x.Shape[1]), int(x.Shape[2]*x.Shape[3])
			rows := tg.rows
			if rows == nil {
				rows = make([]int, y.Shape[1])
				for r := range rows {
					rows[r] = r
				}
			}
			a := accs[i]
			if a == nil {
				a = &acc{xx: mat.NewSymDense(k+1, nil), xy: mat.NewDense(k+1, len(rows), nil)}
				accs[i] = a
			}
			pos := positions(hw, samples, rng)
			xm := mat.NewDense(k+1, len(pos), nil)
			ym := mat.NewDense(len(pos), len(rows), nil)
			for c := range k {
				for j, p := range pos {
					xm.Set(c, j, float64(x.Data[c*hw+p]))
				}
			}
			for j, p := range pos {
				xm.Set(k, j, 1)
				for r, o := range rows {
					ym.Set(j, r, float64(y.Data[o*hw+p]))
				}
			}
			a.xx.SymRankK(a.xx, 1, xm)
			var xy mat.Dense
			xy.Mul(xm, ym)
			a.xy.Add(a.xy, &xy)
			a.n += float64(len(pos))
		}
	}
	ixp := indexGraph(pruned.GetGraph())
	refined := 0
	for i, tg := range ok {
		a := accs[i]
		k := a.xx.SymmetricDim() - 1
		if a.n < minSamplesPerInput*float64(k+1) {
			// Too few positions (the small maps of the last SSD layers)
			// for a free fit: it would follow these frames, not the
			// model. The first fit, anchored to the original weights,
			// stays.
			continue
		}
		refined++
		trace := 0.0
		for c := range k {
			trace += a.xx.At(c, c)
		}
		lam := ridge*trace/float64(k) + 1e-12*a.n
		for c := range k {
			a.xx.SetSym(c, c, a.xx.At(c, c)+lam)
		}
		var chol mat.Cholesky
		if !chol.Factorize(a.xx) {
			return 0, fmt.Errorf("prune: refine %s: the moment matrix is not positive definite", tg.output)
		}
		var sol mat.Dense // (k+1) x O
		if err := chol.SolveTo(&sol, a.xy); err != nil {
			return 0, fmt.Errorf("prune: refine %s: %w", tg.output, err)
		}
		n := ixp.producer[tg.output]
		_, o := sol.Dims()
		w := make([]float32, o*k)
		b := make([]float32, o)
		for r := range o {
			for c := range k {
				w[r*k+c] = float32(sol.At(c, r))
			}
			b[r] = float32(sol.At(k, r))
		}
		if n == nil || len(n.GetInput()) < 3 {
			return 0, fmt.Errorf("prune: refine %s: the pruned Conv has no refitted bias (a bug)", tg.output)
		}
		wt, bt := ixp.inits[n.GetInput()[1]], ixp.inits[n.GetInput()[2]]
		if wt == nil || bt == nil {
			return 0, fmt.Errorf("prune: refine %s: the pruned Conv has no refitted weight and bias (a bug)", tg.output)
		}
		*wt = *onnxgraph.FloatTensor(wt.GetName(), wt.GetDims(), w)
		*bt = *onnxgraph.FloatTensor(bt.GetName(), bt.GetDims(), b)
	}
	return refined, nil
}

// minSamplesPerInput is the fewest sampled positions per fitted input
// (channel or bias) that a refinement needs.
const minSamplesPerInput = 8

// slot returns the index of name in list, appending it if missing.
func slot(list []string, name string) (int, []string) {
	for i, v := range list {
		if v == name {
			return i, list
		}
	}
	return len(list), append(list, name)
}

// plain1x1 reports whether a Conv maps each input position to the same
// output position (1x1, stride 1, no padding).
func plain1x1(n *onnx.NodeProto) bool {
	for _, name := range []string{"strides", "pads"} {
		if a := attr(n, name); a != nil {
			for _, v := range a.GetInts() {
				if (name == "strides" && v != 1) || (name == "pads" && v != 0) {
					return false
				}
			}
		}
	}
	return true
}

// session compiles m with the given tensors as its only outputs.
func session(m *onnx.ModelProto, outputs []string, name string) (*quant.Session, error) {
	aug := proto.Clone(m).(*onnx.ModelProto)
	g := aug.GetGraph()
	g.Output = g.Output[:0]
	for _, t := range outputs {
		g.Output = append(g.Output, &onnx.ValueInfoProto{
			Name: t,
			Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{ElemType: int32(onnx.TensorProto_FLOAT)}}},
		})
	}
	b, err := proto.Marshal(aug)
	if err != nil {
		return nil, fmt.Errorf("prune: encode the %s: %w", name, err)
	}
	return quant.NewSession(b, name, outputs, quant.SessionConfig{})
}
