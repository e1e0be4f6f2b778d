package prune

import (
	"fmt"
	"math/rand/v2"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"gonum.org/v1/gonum/mat"

	"github.com/osprey-vision/osprey/infer/quant"
)

// moments holds the second-moment matrix of one activation tensor's
// channels, with a constant 1 appended (so the last row holds the channel
// sums and the last entry the sample count): all least squares needs to
// refit a 1x1 Conv that reads the tensor, for any subset of its channels.
type moments struct {
	channels int
	sum      *mat.SymDense // (channels+1)^2, sums over samples
	n        float64
}

func (m *moments) mean(c int) float64 { return m.sum.At(c, m.channels) / m.n }

func (m *moments) variance(c int) float64 {
	mu := m.mean(c)
	return max(m.sum.At(c, c)/m.n-mu*mu, 0)
}

// collect runs m in ONNX Runtime on frames with tensors added as graph
// outputs and accumulates their moments over up to samples spatial
// positions per frame (a fixed-seed random subset on large maps).
func collect(m *onnx.ModelProto, frames [][]float32, shape []int64, tensors []string, samples int) (map[string]*moments, error) {
	if len(frames) == 0 {
		return nil, fmt.Errorf("%w: no calibration frames", quant.ErrFrames)
	}
	s, err := session(m, tensors, "calibration model")
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	mom := map[string]*moments{}
	for _, f := range frames {
		res, err := s.Run(shape, f)
		if err != nil {
			return nil, err
		}
		for i, r := range res {
			if len(r.Shape) != 4 || r.Shape[0] != 1 {
				return nil, fmt.Errorf("%w: activation %s has shape %v, want [1,C,H,W]", quant.ErrModel, tensors[i], r.Shape)
			}
			c, hw := int(r.Shape[1]), int(r.Shape[2]*r.Shape[3])
			st := mom[tensors[i]]
			if st == nil {
				st = &moments{channels: c, sum: mat.NewSymDense(c+1, nil)}
				mom[tensors[i]] = st
			}
			pos := positions(hw, samples, rng)
			x := mat.NewDense(c+1, len(pos), nil)
			for ch := range c {
				row := r.Data[ch*hw : (ch+1)*hw]
				for j, p := range pos {
					x.Set(ch, j, float64(row[p]))
				}
			}
			for j := range pos {
				x.Set(c, j, 1)
			}
			st.sum.SymRankK(st.sum, 1, x)
			st.n += float64(len(pos))
		}
	}
	return mom, nil
}

// positions returns every index below hw, or n of them spread evenly with
// a random jitter inside each stride.
func positions(hw, n int, rng *rand.Rand) []int {
	if hw <= n {
		out := make([]int, hw)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, n)
	step := float64(hw) / float64(n)
	for i := range out {
		out[i] = min(int(float64(i)*step+rng.Float64()*step), hw-1)
	}
	return out
}
