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
	p.pool.Put(in)
}

// InputPool recycles Inputs of one size.
type InputPool struct {
	size int
	pool sync.Pool
}

// NewInputPool returns a pool of inputs of n float32 values each.
func NewInputPool(n int) *InputPool {
	p := &InputPool{size: n}
	p.pool.New = func() any { return &Input{Data: make([]float32, n)} }
	return p
}

// NewInputPoolU8 returns a pool of inputs of n uint8 values each.
func NewInputPoolU8(n int) *InputPool {
	p := &InputPool{size: n}
	p.pool.New = func() any { return &Input{U8: make([]uint8, n)} }
	return p
}

// Get returns an input whose Data has the pool's size; contents are undefined.
func (p *InputPool) Get() *Input {
	in := p.pool.Get().(*Input)
	in.pool = p
	return in
}
