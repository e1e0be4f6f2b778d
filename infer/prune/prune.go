// Package prune makes smaller dense variants of ONNX models by structured
// pruning without training: it removes whole output channels of Conv layers
// and then reconstructs the next layer's weights by least squares on
// activations recorded from calibration frames (the channel-pruning recipe
// of He et al. 2017 and ThiNet, with no gradient step).
//
// A Conv is prunable when its channels only flow through channel-wise ops
// (activations, batch norm, per-channel constants, depthwise Convs) into
// dense 1x1 Convs: in MobileNetV2 that is the expansion Conv of every
// inverted-residual block (expand -> depthwise -> project) and the extra
// SSD feature layers. The removed channels go from the Conv, from every
// depthwise Conv and channel-wise op in between, and from the input of each
// 1x1 Conv at the end, whose weights and bias are then refitted so its
// output stays as close as possible to the original on the calibration
// activations. Convs whose output reaches a residual Add, a Concat or a
// reshape keep all their channels.
//
// The result is an ordinary FP32 ONNX model with smaller tensors: the
// decoders in infer and the INT8 quantiser in infer/quant take it as they
// take its parent.
package prune

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/osprey-vision/osprey/infer/onnxgraph"
)

// Errors the package wraps.
var (
	// ErrOptions is wrapped by errors about the pruning options.
	ErrOptions = errors.New("prune: bad options")
	// ErrNotPrunable is returned for a model with no prunable Conv.
	ErrNotPrunable = errors.New("prune: no prunable Conv")
)

// Importance ranks a Conv's output channels; the lowest go first.
type Importance string

// Importance criteria.
const (
	// L1 is the L1 norm of each output channel's filter (Li et al. 2017).
	L1 Importance = "l1"
	// BNScale is |gamma| of the BatchNormalization right after the Conv
	// (network slimming). Models whose batch norm was folded into the Conv
	// weights, as TF imports are, have no gamma left to rank by.
	BNScale Importance = "bn"
	// Energy is the variance of each channel at the input of the 1x1 Convs
	// that read it, times the squared norm of their weights for it: how much
	// output the channel moves that the refitted bias cannot absorb.
	Energy Importance = "energy"
)

// Scope says how many channels each Conv loses.
type Scope string

// Scopes.
const (
	// PerLayer removes Ratio of the channels of every prunable Conv.
	PerLayer Scope = "layer"
	// Global ranks all prunable channels together (importance divided by
	// its Conv's mean, so layers compare) and removes the lowest Ratio of
	// them, keeping at least Floor of each Conv.
	Global Scope = "global"
)

// Options configure a pruning.
type Options struct {
	// Ratio is the share of prunable output channels to remove, in (0, 1).
	Ratio float64
	// Importance ranks channels (default Energy).
	Importance Importance
	// Scope is PerLayer (default) or Global.
	Scope Scope
	// Floor is the share of each Conv's channels that Global keeps at least
	// (default 0.25).
	Floor float64
	// Multiple rounds each Conv's kept channel count to a multiple of it, so
	// the CPU kernels' channel blocks stay full (default 16, the AVX-512
	// block of ONNX Runtime's NCHWc and int8 kernels; 1 turns it off).
	Multiple int
	// Samples caps the spatial positions per frame and tensor used for the
	// least-squares statistics (default 256).
	Samples int
	// Exclude lists node-name substrings whose Convs keep all channels.
	Exclude []string
	// Sequential fits the 1x1 Convs again, one pruned Conv's sinks at a
	// time in graph order, on the pruned model's own activations against
	// the original model's outputs, so each fit also corrects what pruning
	// changed upstream (He et al.). It runs both models over the frames
	// once per pruned Conv.
	Sequential bool
}

func (o Options) withDefaults() (Options, error) {
	if !(o.Ratio > 0 && o.Ratio < 1) {
		return o, fmt.Errorf("%w: --ratio %v is outside (0, 1): give the share of channels to remove, e.g. 0.25", ErrOptions, o.Ratio)
	}
	if o.Importance == "" {
		o.Importance = Energy
	}
	switch o.Importance {
	case L1, BNScale, Energy:
	default:
		return o, fmt.Errorf("%w: importance %q: use l1, bn or energy", ErrOptions, o.Importance)
	}
	if o.Scope == "" {
		o.Scope = PerLayer
	}
	if o.Scope != PerLayer && o.Scope != Global {
		return o, fmt.Errorf("%w: scope %q: use layer or global", ErrOptions, o.Scope)
	}
	if o.Floor == 0 {
		o.Floor = 0.25
	}
	if o.Floor < 0 || o.Floor >= 1 {
		return o, fmt.Errorf("%w: floor %v is outside [0, 1): give the share of each Conv's channels to keep", ErrOptions, o.Floor)
	}
	if o.Multiple == 0 {
		o.Multiple = 16
	}
	if o.Multiple < 1 {
		return o, fmt.Errorf("%w: multiple %d: must be >= 1", ErrOptions, o.Multiple)
	}
	if o.Samples == 0 {
		o.Samples = 256
	}
	if o.Samples < 1 {
		return o, fmt.Errorf("%w: samples %d: must be >= 1", ErrOptions, o.Samples)
	}
	return o, nil
}

// ConvReport is what happened to one prunable Conv.
type ConvReport struct {
	Name     string `json:"name"`
	Channels int    `json:"channels"`
	Kept     int    `json:"kept"`
	Sinks    int    `json:"reconstructed"` // 1x1 Convs refitted
}

// Report describes a pruning.
type Report struct {
	Convs []ConvReport `json:"convs"`
	// Channels and Removed count output channels of the prunable Convs.
	Channels int `json:"channels"`
	Removed  int `json:"removed"`
	// ParamsBefore and ParamsAfter count initializer elements.
	ParamsBefore int64 `json:"params_before"`
	ParamsAfter  int64 `json:"params_after"`
	// Refined counts the 1x1 Convs fitted again on the pruned model's own
	// activations (with Sequential).
	Refined int `json:"refined"`
}

// Plan finds the prunable Convs of m, checking the options and the model
// before any calibration runs. It is what Prune does first.
func Plan(m *onnx.ModelProto, opts Options) ([]string, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	groups, err := prunable(m, opts)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.conv.GetName()
	}
	return names, nil
}

func prunable(m *onnx.ModelProto, opts Options) ([]*group, error) {
	if m.GetGraph() == nil {
		return nil, onnxgraph.ErrNoGraph
	}
	all, why := findGroups(m.GetGraph())
	var groups []*group
	for _, g := range all {
		if !excluded(g.conv, opts.Exclude) {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		convs := len(why)
		if len(why) > 3 {
			why = append(why[:3], fmt.Sprintf("and %d more", len(why)-3))
		}
		msg := fmt.Sprintf("%d Convs", convs)
		if len(all) > 0 {
			msg = fmt.Sprintf("all %d prunable Convs excluded", len(all))
		}
		if len(why) == 0 && len(all) == 0 {
			return nil, fmt.Errorf("%w: the model has no Conv layers: structured pruning here removes Conv output channels", ErrNotPrunable)
		}
		return nil, fmt.Errorf("%w (%s): a Conv is prunable when its channels reach only channel-wise ops, depthwise Convs and 1x1 Convs; %s", ErrNotPrunable, msg, strings.Join(why, "; "))
	}
	if opts.Importance == BNScale {
		for _, g := range groups {
			if g.bnScale == nil {
				return nil, fmt.Errorf("%w: importance bn needs a BatchNormalization right after each Conv; %s has none (models imported from TF have their batch norm folded into the Conv weights): use --importance l1 or energy", ErrOptions, g.conv.GetName())
			}
		}
	}
	return groups, nil
}

func excluded(n *onnx.NodeProto, pats []string) bool {
	for _, p := range pats {
		if p != "" && strings.Contains(n.GetName(), p) {
			return true
		}
	}
	return false
}

// Prune removes output channels from m's prunable Convs and refits the 1x1
// Convs after them on frames (model inputs of the given shape, as
// quant.ReadFrames makes them). m is not changed.
func Prune(m *onnx.ModelProto, frames [][]float32, shape []int64, opts Options) (*onnx.ModelProto, Report, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, Report{}, err
	}
	groups, err := prunable(m, opts)
	if err != nil {
		return nil, Report{}, err
	}
	var tensors []string
	for _, g := range groups {
		for _, s := range g.sinks {
			if !slices.Contains(tensors, s.input) {
				tensors = append(tensors, s.input)
			}
		}
	}
	mom, err := collect(m, frames, shape, tensors, opts.Samples)
	if err != nil {
		return nil, Report{}, err
	}
	out := proto.Clone(m).(*onnx.ModelProto)
	// Re-find the groups in the copy, so edits touch its nodes.
	groups, err = prunable(out, opts)
	if err != nil {
		return nil, Report{}, err
	}
	ix := indexGraph(out.GetGraph())
	imps := make([][]float64, len(groups))
	for i, g := range groups {
		if imps[i], err = importance(g, opts.Importance, ix, mom); err != nil {
			return nil, Report{}, err
		}
	}
	keeps := choose(groups, imps, opts)
	rep := Report{ParamsBefore: onnxgraph.ParamCount(m.GetGraph())}
	if err := apply(out, ix, groups, keeps, mom); err != nil {
		return nil, rep, err
	}
	if opts.Sequential {
		rows := map[string][]int{}
		for i, g := range groups {
			rows[g.conv.GetOutput()[0]] = keeps[i]
		}
		for _, g := range groups {
			var targets []target
			for _, s := range g.sinks {
				o := s.conv.GetOutput()[0]
				targets = append(targets, target{output: o, input: s.input, rows: rows[o]})
			}
			n, err := refine(m, out, targets, frames, shape, opts.Samples)
			if err != nil {
				return nil, rep, err
			}
			rep.Refined += n
		}
	}
	for i, g := range groups {
		rep.Convs = append(rep.Convs, ConvReport{Name: g.conv.GetName(), Channels: g.channels, Kept: len(keeps[i]), Sinks: len(g.sinks)})
		rep.Channels += g.channels
		rep.Removed += g.channels - len(keeps[i])
	}
	rep.ParamsAfter = onnxgraph.ParamCount(out.GetGraph())
	if err := onnxgraph.Check(out.GetGraph()); err != nil {
		return nil, rep, fmt.Errorf("prune: the pruned graph is broken (a bug): %w", err)
	}
	return out, rep, nil
}

// importance returns one score per output channel of g's Conv.
func importance(g *group, kind Importance, ix *index, mom map[string]*moments) ([]float64, error) {
	imp := make([]float64, g.channels)
	switch kind {
	case BNScale:
		for c := range imp {
			imp[c] = math.Abs(float64(g.bnScale[c]))
		}
	case Energy:
		for _, s := range g.sinks {
			w, err := floats(ix.inits[s.conv.GetInput()[1]])
			if err != nil {
				return nil, err
			}
			st := mom[s.input]
			for c := range imp {
				var norm float64
				for o := 0; o < len(w)/g.channels; o++ {
					v := float64(w[o*g.channels+c])
					norm += v * v
				}
				imp[c] += norm * st.variance(c)
			}
		}
	default:
		w, err := floats(ix.inits[g.conv.GetInput()[1]])
		if err != nil {
			return nil, err
		}
		per := len(w) / g.channels
		for c := range imp {
			for _, v := range w[c*per : (c+1)*per] {
				imp[c] += math.Abs(float64(v))
			}
		}
	}
	return imp, nil
}

// choose returns, per group, the sorted indices of the channels to keep.
func choose(groups []*group, imps [][]float64, opts Options) [][]int {
	remove := make([]int, len(groups))
	if opts.Scope == Global {
		type ch struct {
			g     int
			score float64
		}
		var all []ch
		total := 0
		for i, g := range groups {
			mean := 0.0
			for _, v := range imps[i] {
				mean += v
			}
			mean /= float64(g.channels)
			if mean == 0 {
				mean = 1
			}
			for _, v := range imps[i] {
				all = append(all, ch{i, v / mean})
			}
			total += g.channels
		}
		slices.SortStableFunc(all, func(a, b ch) int { return cmp.Compare(a.score, b.score) })
		target := int(math.Round(opts.Ratio * float64(total)))
		done := 0
		for _, c := range all {
			if done == target {
				break
			}
			g := groups[c.g]
			if float64(g.channels-remove[c.g]-1) < opts.Floor*float64(g.channels) {
				continue
			}
			remove[c.g]++
			done++
		}
	} else {
		for i, g := range groups {
			remove[i] = int(math.Round(opts.Ratio * float64(g.channels)))
		}
	}
	keeps := make([][]int, len(groups))
	for i, g := range groups {
		keep := roundKeep(g.channels-remove[i], g.channels, opts.Multiple)
		order := make([]int, g.channels)
		for c := range order {
			order[c] = c
		}
		imp := imps[i]
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(imp[b], imp[a]) })
		k := order[:keep]
		slices.Sort(k)
		keeps[i] = k
	}
	return keeps
}

// roundKeep rounds a kept channel count to the nearest multiple, within
// [multiple, channels] (a Conv narrower than the multiple keeps all).
func roundKeep(keep, channels, multiple int) int {
	if multiple > 1 {
		keep = int(math.Round(float64(keep)/float64(multiple))) * multiple
		keep = max(keep, multiple)
	}
	return min(max(keep, 1), channels)
}

func floats(t *onnx.TensorProto) ([]float32, error) {
	if t == nil {
		return nil, fmt.Errorf("prune: missing initializer")
	}
	v, err := onnxgraph.Floats(t)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	return v, nil
}
