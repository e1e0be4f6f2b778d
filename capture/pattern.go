package capture

import (
	"fmt"
	"image"
	"image/color"

	"gocv.io/x/gocv"
)

// pattern is the test:// backend: colour bars, two boxes moving on fixed
// paths and the frame number. Frame k is a pure function of k and the size,
// so runs are reproducible.
type pattern struct {
	w, h   int
	rate   float64
	frames int // 0: endless
	k      int
	bars   gocv.Mat // background, drawn once
}

func newPattern(ep endpoint, cfg Config) *pattern {
	p := &pattern{w: cfg.Width, h: cfg.Height, rate: cfg.FPS, frames: ep.frames}
	if ep.w > 0 {
		p.w = ep.w
	}
	if ep.h > 0 {
		p.h = ep.h
	}
	if ep.fps > 0 {
		p.rate = ep.fps
	}
	if p.w <= 0 {
		p.w = DefaultTestWidth
	}
	if p.h <= 0 {
		p.h = DefaultTestHeight
	}
	if p.rate <= 0 {
		p.rate = DefaultTestFPS
	}
	p.bars = gocv.NewMatWithSize(p.h, p.w, gocv.MatTypeCV8UC3)
	// The eight classic bars: white, yellow, cyan, green, magenta, red, blue, black.
	cols := []color.RGBA{
		{255, 255, 255, 0}, {255, 255, 0, 0}, {0, 255, 255, 0}, {0, 255, 0, 0},
		{255, 0, 255, 0}, {255, 0, 0, 0}, {0, 0, 255, 0}, {0, 0, 0, 0},
	}
	for i, c := range cols {
		r := image.Rect(i*p.w/len(cols), 0, (i+1)*p.w/len(cols), p.h)
		// gocv takes RGBA and writes it as BGR.
		gocv.Rectangle(&p.bars, r, c, -1)
	}
	return p
}

func (p *pattern) read(m *gocv.Mat) error {
	if p.frames > 0 && p.k >= p.frames {
		return errEOF
	}
	p.bars.CopyTo(m)
	k := p.k
	p.k++
	bw, bh := max(p.w/8, 8), max(p.h/6, 8)
	// Box 1 bounces horizontally, box 2 diagonally, at different speeds.
	x1 := bounce(k*7, p.w-bw)
	y1 := p.h/3 - bh/2
	x2 := bounce(k*4, p.w-bw)
	y2 := bounce(k*3, p.h-bh)
	gocv.Rectangle(m, image.Rect(x1, y1, x1+bw, y1+bh), color.RGBA{32, 32, 32, 0}, -1)
	gocv.Rectangle(m, image.Rect(x2, y2, x2+bw, y2+bh), color.RGBA{255, 128, 0, 0}, -1)
	scale := float64(p.h) / 480
	gocv.PutText(m, fmt.Sprintf("%06d", k), image.Pt(10, p.h-int(20*scale)), gocv.FontHersheySimplex,
		1.5*scale, color.RGBA{255, 255, 255, 0}, max(1, int(3*scale)))
	return nil
}

// bounce maps a running position onto 0..span and back (a triangle wave).
func bounce(pos, span int) int {
	if span <= 0 {
		return 0
	}
	pos %= 2 * span
	if pos > span {
		return 2*span - pos
	}
	return pos
}

func (p *pattern) fps() float64 { return p.rate }

func (p *pattern) close() { _ = p.bars.Close() }
