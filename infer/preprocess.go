package infer

import (
	"fmt"
	"image"
	"sync"

	"gocv.io/x/gocv"
)

// preprocessor owns the scratch Mats of Preprocess and the per-channel
// lookup tables that turn a pixel value into the model's input value. The
// Mats are reused across calls (OpenCV reallocates only when a size
// changes), so steady-state preprocessing allocates nothing in Go and
// nothing new in C.
type preprocessor struct {
	mu           sync.Mutex
	bgr, resized gocv.Mat
	// lut[k][v] is model channel k's input value for pixel value v: the
	// format's scale, shift, mean and std in one table.
	lut [3][256]float32
	// src[k] is the BGR channel model channel k reads.
	src    [3]int
	closed bool
}

func (p *preprocessor) init(spec *formatSpec) {
	p.bgr, p.resized = gocv.NewMat(), gocv.NewMat()
	p.setSpec(spec)
}

// setSpec fills the channel map and lookup tables for spec.
func (p *preprocessor) setSpec(spec *formatSpec) {
	p.src = [3]int{2, 1, 0} // RGB from BGR
	if spec.bgr {
		p.src = [3]int{0, 1, 2}
	}
	for k := range 3 {
		for v := range 256 {
			x := float32(v)*spec.scale + spec.shift
			if spec.std[0] != 0 {
				x = (x - spec.mean[k]) / spec.std[k]
			}
			p.lut[k][v] = x
		}
	}
}

func (p *preprocessor) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.bgr.Close()
	p.resized.Close()
}

// Preprocess turns a BGR (or grey, or BGRA) 8-bit image into dst: resized
// or letterboxed to the model input, converted to the format's channel
// order, value range and layout, with dst.Transform set for mapping boxes
// back. img is not modified. Safe to call while Detect runs; concurrent
// Preprocess calls are serialised (they share scratch Mats).
//
// OpenCV resizes; everything after that is one pass from the resized
// pixels into dst (channel order, value range, padding and layout at once),
// with no intermediate image.
func (d *Detector) Preprocess(img gocv.Mat, dst *Input) error {
	if img.Empty() {
		return fmt.Errorf("infer: preprocess: empty image")
	}
	if img.Type()&7 != gocv.MatTypeCV8U {
		return fmt.Errorf("infer: preprocess: image type %v, want 8-bit", img.Type())
	}
	inW, inH := d.params.inW, d.params.inH
	if dst == nil || !d.fits(dst) {
		return fmt.Errorf("infer: preprocess: input buffer has the wrong size or type for model %s: get it from this detector's NewInputPool", d.cfg.Path)
	}
	p := &d.pre
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	src := img
	switch img.Channels() {
	case 3:
	case 1:
		gocv.CvtColor(img, &p.bgr, gocv.ColorGrayToBGR)
		src = p.bgr
	case 4:
		gocv.CvtColor(img, &p.bgr, gocv.ColorBGRAToBGR)
		src = p.bgr
	default:
		return fmt.Errorf("infer: preprocess: image has %d channels, want 1, 3 or 4", img.Channels())
	}
	t, w, h := fitTransform(src.Cols(), src.Rows(), inW, inH, d.resize, d.spec.padTopLeft)
	gocv.Resize(src, &p.resized, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	px, err := p.resized.DataPtrUint8()
	if err != nil {
		return fmt.Errorf("infer: preprocess: %w", err)
	}
	r := region{w: w, h: h, left: int(t.PadX), top: int(t.PadY), inW: inW, inH: inH}
	pad := uint8(d.spec.padValue)
	switch {
	case d.u8:
		fillU8(dst.U8, px, r, p.src, pad, d.layout)
	case d.layout == layoutNHWC:
		p.fillNHWC(dst.Data, px, r, pad)
	default:
		p.fillNCHW(dst.Data, px, r, pad)
	}
	dst.Transform = t
	return nil
}

// region places the resized w x h image at (left, top) in the inW x inH
// model input; the rest is padding.
type region struct{ w, h, left, top, inW, inH int }

func (p *preprocessor) fillNHWC(out []float32, px []uint8, r region, pad uint8) {
	l0, l1, l2 := &p.lut[0], &p.lut[1], &p.lut[2]
	c0, c1, c2 := p.src[0], p.src[1], p.src[2]
	p0, p1, p2 := l0[pad], l1[pad], l2[pad]
	padRun := func(o []float32) {
		for i := 0; i+2 < len(o); i += 3 {
			o[i], o[i+1], o[i+2] = p0, p1, p2
		}
	}
	stride := r.inW * 3
	for y := range r.inH {
		row := out[y*stride : (y+1)*stride]
		sy := y - r.top
		if sy < 0 || sy >= r.h {
			padRun(row)
			continue
		}
		padRun(row[:r.left*3])
		padRun(row[(r.left+r.w)*3:])
		s := px[sy*r.w*3 : (sy+1)*r.w*3]
		o := row[r.left*3 : (r.left+r.w)*3]
		for i := 0; i+2 < len(s) && i+2 < len(o); i += 3 {
			o[i], o[i+1], o[i+2] = l0[s[i+c0]], l1[s[i+c1]], l2[s[i+c2]]
		}
	}
}

func (p *preprocessor) fillNCHW(out []float32, px []uint8, r region, pad uint8) {
	plane := r.inW * r.inH
	for k := range 3 {
		lut, c := &p.lut[k], p.src[k]
		pv := lut[pad]
		pl := out[k*plane : (k+1)*plane]
		for y := range r.inH {
			row := pl[y*r.inW : (y+1)*r.inW]
			sy := y - r.top
			if sy < 0 || sy >= r.h {
				for i := range row {
					row[i] = pv
				}
				continue
			}
			for i := range r.left {
				row[i] = pv
			}
			for i := r.left + r.w; i < r.inW; i++ {
				row[i] = pv
			}
			s := px[sy*r.w*3 : (sy+1)*r.w*3]
			o := row[r.left : r.left+r.w]
			for x := range o {
				o[x] = lut[s[3*x+c]]
			}
		}
	}
}

// fillU8 writes pixels as they are (the format's value range is 0..255 and
// the model takes uint8), reordering channels and padding.
func fillU8(out []uint8, px []uint8, r region, src [3]int, pad uint8, l layout) {
	if l == layoutNCHW {
		plane := r.inW * r.inH
		for k := range 3 {
			pl := out[k*plane : (k+1)*plane]
			for y := range r.inH {
				row := pl[y*r.inW : (y+1)*r.inW]
				sy := y - r.top
				if sy < 0 || sy >= r.h {
					fill(row, pad)
					continue
				}
				fill(row[:r.left], pad)
				fill(row[r.left+r.w:], pad)
				s := px[sy*r.w*3 : (sy+1)*r.w*3]
				o := row[r.left : r.left+r.w]
				for x := range o {
					o[x] = s[3*x+src[k]]
				}
			}
		}
		return
	}
	c0, c1, c2 := src[0], src[1], src[2]
	stride := r.inW * 3
	for y := range r.inH {
		row := out[y*stride : (y+1)*stride]
		sy := y - r.top
		if sy < 0 || sy >= r.h {
			fill(row, pad)
			continue
		}
		fill(row[:r.left*3], pad)
		fill(row[(r.left+r.w)*3:], pad)
		s := px[sy*r.w*3 : (sy+1)*r.w*3]
		o := row[r.left*3 : (r.left+r.w)*3]
		if c0 == 0 && c1 == 1 && c2 == 2 {
			copy(o, s)
			continue
		}
		for i := 0; i+2 < len(s) && i+2 < len(o); i += 3 {
			o[i], o[i+1], o[i+2] = s[i+c0], s[i+c1], s[i+c2]
		}
	}
}

func fill(b []uint8, v uint8) {
	for i := range b {
		b[i] = v
	}
}
