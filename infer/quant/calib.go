package quant

import (
	"fmt"
	"math"
	"slices"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Method picks how activation ranges are derived from calibration data.
type Method string

// Calibration methods.
const (
	// MinMax uses the observed minimum and maximum.
	MinMax Method = "minmax"
	// Percentile clips both tails of the histogram at a percentile.
	Percentile Method = "percentile"
	// Entropy picks the clipping threshold that minimises the KL divergence
	// between the FP32 histogram and its 8-bit quantised version.
	Entropy Method = "entropy"
)

// Range is a calibrated [Min, Max] for one tensor.
type Range struct{ Min, Max float32 }

const histBins = 2048

type tensorStats struct {
	min, max float32
	hist     []float64 // over [min, max] of pass 1
	// zeros counts exact zeros (in hist too): ReLU outputs are often half
	// zeros, which every quantisation grid represents exactly.
	zeros float64
}

// Calibrate runs the FP32 model on frames with every tensor in names exposed
// as an extra graph output and returns a range per tensor.
func Calibrate(m *onnx.ModelProto, frames [][]float32, shape []int64, names []string, method Method, pct float64) (map[string]Range, error) {
	if len(frames) == 0 {
		return nil, fmt.Errorf("%w: no calibration frames", ErrFrames)
	}
	g := m.GetGraph()
	inputName := ""
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, in := range g.GetInput() {
		if !inits[in.GetName()] {
			inputName = in.GetName()
			break
		}
	}
	aug := proto.Clone(m).(*onnx.ModelProto)
	existing := map[string]bool{}
	for _, o := range aug.GetGraph().GetOutput() {
		existing[o.GetName()] = true
	}
	var outs []string
	for _, n := range names {
		if n == inputName {
			continue // the input's range comes straight from the frames
		}
		if !existing[n] {
			aug.GetGraph().Output = append(aug.GetGraph().Output, tensorValueInfo(n, onnx.TensorProto_FLOAT))
		}
		outs = append(outs, n)
	}
	b, err := proto.Marshal(aug)
	if err != nil {
		return nil, fmt.Errorf("quant: encode calibration model: %w", err)
	}
	s, err := NewSession(b, "calibration model", outs, SessionConfig{})
	if err != nil {
		return nil, err
	}
	defer s.Close()

	stats := map[string]*tensorStats{}
	visit := func(name string, data []float32, pass int) {
		st := stats[name]
		if pass == 1 {
			if st == nil {
				st = &tensorStats{min: float32(math.Inf(1)), max: float32(math.Inf(-1))}
				stats[name] = st
			}
			for _, v := range data {
				st.min = min(st.min, v)
				st.max = max(st.max, v)
			}
			return
		}
		if st.hist == nil {
			st.hist = make([]float64, histBins)
		}
		w := float64(st.max - st.min)
		if w <= 0 {
			st.hist[0] += float64(len(data))
			return
		}
		k := histBins / w
		for _, v := range data {
			i := int(float64(v-st.min) * k)
			st.hist[min(max(i, 0), histBins-1)]++
			if v == 0 {
				st.zeros++
			}
		}
	}
	passes := 1
	if method != MinMax {
		passes = 2
	}
	for pass := 1; pass <= passes; pass++ {
		for _, f := range frames {
			res, err := s.Run(shape, f)
			if err != nil {
				return nil, err
			}
			for i, r := range res {
				visit(outs[i], r.Data, pass)
			}
			if inputName != "" {
				visit(inputName, f, pass)
			}
		}
	}
	ranges := make(map[string]Range, len(stats))
	for name, st := range stats {
		switch method {
		case Percentile:
			ranges[name] = percentileRange(st, pct)
		case Entropy:
			ranges[name] = entropyRange(st)
		default:
			ranges[name] = Range{st.min, st.max}
		}
	}
	return ranges, nil
}

func binEdge(st *tensorStats, i int) float32 {
	return st.min + (st.max-st.min)*float32(i)/histBins
}

// percentileRange clips pct% on the high side and (100-pct)% on the low side.
func percentileRange(st *tensorStats, pct float64) Range {
	var total float64
	for _, c := range st.hist {
		total += c
	}
	if total == 0 || st.max <= st.min {
		return Range{st.min, st.max}
	}
	tail := total * (100 - pct) / 100
	lo, hi := 0, histBins
	for acc := 0.0; lo < histBins-1; lo++ {
		if acc+st.hist[lo] > tail {
			break
		}
		acc += st.hist[lo]
	}
	for acc := 0.0; hi > lo+1; hi-- {
		if acc+st.hist[hi-1] > tail {
			break
		}
		acc += st.hist[hi-1]
	}
	return Range{binEdge(st, lo), binEdge(st, hi)}
}

// entropyRange clips each side of zero separately at the threshold that
// minimises KL(P || Q), where P is that side's histogram with the clipped
// outliers folded into its last bin and Q is the unclipped histogram
// squeezed into the side's share of the 255 levels (TensorRT-style). Most
// activations here follow ReLU/ReLU6, so usually only the high side counts.
//
// Exact zeros are left out of the histograms: they cost nothing at any
// threshold (zero is always on the grid), and left in, a ReLU's zero spike
// dominates the divergence. Whether the first level holds that spike alone
// or shares it with the next bin then decides the result, which drove every
// ReLU6 range of the SSD down to under a quarter of its real 6.
func entropyRange(st *tensorStats) Range {
	if st.max <= st.min {
		return Range{st.min, st.max}
	}
	z := 0 // first bin at or above zero
	if st.min < 0 {
		z = min(int(float64(-st.min)/float64(st.max-st.min)*histBins), histBins)
	}
	hist := slices.Clone(st.hist)
	if st.zeros > 0 && st.min <= 0 && st.max >= 0 {
		zb := min(int(float64(-st.min)/float64(st.max-st.min)*histBins), histBins-1)
		hist[zb] = max(hist[zb]-st.zeros, 0)
	}
	pos := slices.Clone(hist[z:])
	neg := slices.Clone(hist[:z])
	slices.Reverse(neg)
	levels := 255
	if len(pos) > 0 && len(neg) > 0 {
		levels = 128
	}
	r := Range{st.min, st.max}
	if len(pos) > levels {
		r.Max = binEdge(st, z+klThreshold(pos, levels))
	}
	if len(neg) > levels {
		r.Min = binEdge(st, z-klThreshold(neg, levels))
	}
	return r
}

// klThreshold returns how many bins of hist (counted from zero outwards)
// to keep.
func klThreshold(hist []float64, levels int) int {
	best, bestKL := len(hist), math.Inf(1)
	for t := levels; t <= len(hist); t += 16 {
		p := make([]float64, t)
		copy(p, hist[:t])
		for _, c := range hist[t:] {
			p[t-1] += c // outliers clip onto the last bin
		}
		// q is the unclipped histogram squeezed into the levels, so
		// clipping outliers onto p's last bin costs divergence.
		q := make([]float64, t)
		per := float64(t) / float64(levels)
		for l := 0; l < levels; l++ {
			a, b := int(float64(l)*per), int(float64(l+1)*per)
			if l == levels-1 {
				b = t
			}
			var sum float64
			nz := 0
			for i := a; i < b; i++ {
				sum += hist[i]
				if hist[i] > 0 {
					nz++
				}
			}
			for i := a; i < b; i++ {
				if hist[i] > 0 {
					q[i] = sum / float64(nz)
				}
			}
		}
		if kl := klDiv(p, q); kl < bestKL {
			best, bestKL = t, kl
		}
	}
	return best
}

func klDiv(p, q []float64) float64 {
	var sp, sq float64
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	if sp == 0 || sq == 0 {
		return math.Inf(1)
	}
	var kl float64
	for i := range p {
		if p[i] == 0 {
			continue
		}
		pi, qi := p[i]/sp, q[i]/sq
		if qi == 0 {
			qi = 1e-12 // the clipped last bin can be empty in q's own bins
		}
		kl += pi * math.Log(pi/qi)
	}
	return kl
}
