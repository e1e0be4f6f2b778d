// Package builtin holds the stages every pipeline runs between capture and
// the sinks: preprocess (decide which frames to infer, make model input),
// detect (batched ONNX Runtime inference, optionally governed) and track
// (per-stream tracker plus zone and line analytics).
package builtin

import (
	"context"
	"image"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// Preprocessor is what the preprocess stage needs from a detector.
type Preprocessor interface {
	Preprocess(img gocv.Mat, dst *infer.Input) error
	NewInputPool() *infer.InputPool
}

// Sampling decides which frames of a stream go to the detector: one in Every,
// and at most MaxFPS per second. Every may be changed at run time (the
// latency governor does) and is read atomically.
type Sampling struct {
	Every  atomic.Int32
	MaxFPS float64
}

// NewSampling returns a sampling of one frame in every, capped at maxFPS (0: no cap).
func NewSampling(every int, maxFPS float64) *Sampling {
	s := &Sampling{MaxFPS: maxFPS}
	s.Every.Store(int32(max(every, 1)))
	return s
}

// Preprocess picks the frames to infer and makes their model input. Frames
// that skip inference pass through without one; the detect stage forwards
// them and the tracker only predicts on them.
type Preprocess struct {
	prep     Preprocessor
	pool     *infer.InputPool
	inputs   *Inputs
	sampling *Sampling

	mu      sync.Mutex
	streams map[string]*streamSample
}

type streamSample struct {
	n    uint64
	last time.Time
}

// NewPreprocess returns the preprocess stage; it hands each input to the
// detect stage through inputs.
func NewPreprocess(p Preprocessor, s *Sampling, inputs *Inputs) *Preprocess {
	return &Preprocess{prep: p, pool: p.NewInputPool(), inputs: inputs, sampling: s, streams: map[string]*streamSample{}}
}

// Process implements stages.Stage.
func (p *Preprocess) Process(ctx context.Context, f *stages.Frame) ([]*stages.Frame, error) {
	if f.Focus.Skip || !p.sample(f) {
		return []*stages.Frame{f}, nil
	}
	img, err := picture.Mat(f)
	if err != nil {
		return nil, err
	}
	fi := &frameInputs{}
	if len(f.Focus.Regions) == 0 {
		in := p.pool.Get()
		fi.ins = append(fi.ins, in)
		if err := p.prep.Preprocess(img, in); err != nil {
			fi.release()
			return nil, err
		}
		p.inputs.put(f, fi)
		return []*stages.Frame{f}, nil
	}
	// One input per region, each resized to the model's input on its own:
	// a small distant object gets more of the model's pixels.
	bounds := image.Rect(0, 0, img.Cols(), img.Rows())
	for _, r := range f.Focus.Regions {
		rect := image.Rect(int(r.X), int(r.Y), int(r.X+r.W), int(r.Y+r.H)).Intersect(bounds)
		if rect.Empty() {
			continue
		}
		view := img.Region(rect)
		in := p.pool.Get()
		fi.ins = append(fi.ins, in)
		fi.regions = append(fi.regions, geom.Rect{X: float64(rect.Min.X), Y: float64(rect.Min.Y), W: float64(rect.Dx()), H: float64(rect.Dy())})
		err := p.prep.Preprocess(view, in)
		_ = view.Close()
		if err != nil {
			fi.release()
			return nil, err
		}
	}
	if len(fi.ins) == 0 {
		return []*stages.Frame{f}, nil
	}
	p.inputs.put(f, fi)
	return []*stages.Frame{f}, nil
}

// sample reports whether f should be inferred.
func (p *Preprocess) sample(f *stages.Frame) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.streams[f.Stream]
	if s == nil {
		s = &streamSample{}
		p.streams[f.Stream] = s
	}
	s.n++
	every := uint64(p.sampling.Every.Load())
	if every > 1 && (s.n-1)%every != 0 {
		return false
	}
	if p.sampling.MaxFPS > 0 {
		// Allow a small tolerance so a camera at exactly max_fps is not halved
		// by timestamp jitter.
		minGap := time.Duration(float64(time.Second) / p.sampling.MaxFPS * 0.9)
		if !s.last.IsZero() && f.Captured.Sub(s.last) < minGap {
			return false
		}
	}
	s.last = f.Captured
	return true
}

// Close implements stages.Stage.
func (p *Preprocess) Close(context.Context) error { return nil }
