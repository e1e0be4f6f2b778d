package infer

import (
	"sync"

	"github.com/osprey-vision/osprey/geom"
)

// Transform maps between source-image pixels and model-input pixels for a
// resize (ScaleX != ScaleY allowed) or a letterbox (equal scales plus padding):
// model = source*Scale + Pad.
type Transform struct {
	ScaleX, ScaleY float64
	PadX, PadY     float64
	// SrcW, SrcH are the source image size, used to clamp mapped boxes.
	SrcW, SrcH int
}

// ToSource maps a box in model-input pixels back to source pixels, clamped to
// the source image.
func (t Transform) ToSource(r geom.Rect) geom.Rect {
	out := geom.Rect{
		X: (r.X - t.PadX) / t.ScaleX,
		Y: (r.Y - t.PadY) / t.ScaleY,
		W: r.W / t.ScaleX,
		H: r.H / t.ScaleY,
	}
	return out.Clamp(float64(t.SrcW), float64(t.SrcH))
}

// PointToSource maps a point in model-input pixels back to source pixels.
func (t Transform) PointToSource(p geom.Point) geom.Point {
	return geom.Point{X: (p.X - t.PadX) / t.ScaleX, Y: (p.Y - t.PadY) / t.ScaleY}
}

// Input is one preprocessed image ready for the model: Data (float models)
// or U8 (models that take uint8 pixels) holds exactly one image in the
// model's input layout and value range; the other is nil. Inputs come from
// a pool (see InputPool) so the hot path does not allocate; Release returns
// one.
type Input struct {
	Data      []float32
	U8        []uint8
	Transform Transform
	pool      *InputPool
}

// Len returns the number of values the input holds.
func (in *Input) Len() int { return len(in.Data) + len(in.U8) }

// Release returns the input's buffer to its pool. Safe on a nil Input.
func (in *Input) Release() {
	if in == nil || in.pool == nil {
		return
	}
	p := in.pool
	in.pool = nil
	p.mu.Lock()
	p.free = append(p.free, in)
	p.mu.Unlock()
}

// InputPool recycles Inputs of one size. It keeps every input returned to
// it: the pipeline's bounded queues bound how many are out at once, and
// unlike a sync.Pool, which a garbage collection empties, it never makes
// the hot path allocate a new megabyte-sized tensor again.
type InputPool struct {
	newInput func() *Input
	mu       sync.Mutex
	free     []*Input
}

// NewInputPool returns a pool of inputs of n float32 values each.
func NewInputPool(n int) *InputPool {
	return &InputPool{newInput: func() *Input { return &Input{Data: make([]float32, n)} }}
}

// NewInputPoolU8 returns a pool of inputs of n uint8 values each.
func NewInputPoolU8(n int) *InputPool {
	return &InputPool{newInput: func() *Input { return &Input{U8: make([]uint8, n)} }}
}

// Get returns an input whose Data (or U8) has the pool's size; contents
// are undefined.
func (p *InputPool) Get() *Input {
	p.mu.Lock()
	var in *Input
	if n := len(p.free); n > 0 {
		in = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	}
	p.mu.Unlock()
	if in == nil {
		in = p.newInput()
	}
	in.pool = p
	return in
}
