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
	src [3]int
	// scale, shift, mean and std are the format's value range, for values
	// that do not come from the lookup tables (tf).
	scale, shift float32
	mean, std    [3]float32
	// tf, when set, resizes like TensorFlow (the model's MetaResize)
	// instead of with OpenCV.
	tf     *tfResizer
	closed bool
}

func (p *preprocessor) init(spec *formatSpec) {
	p.bgr, p.resized = gocv.NewMat(), gocv.NewMat()
	p.setSpec(spec)
}

// setSpec fills the channel map and lookup tables for spec.
func (p *preprocessor) setSpec(spec *formatSpec) {
	p.scale, p.shift, p.mean, p.std = spec.scale, spec.shift, spec.mean, spec.std
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
// with no intermediate image. A model that declares TensorFlow's resize
// (MetaResize) gets it instead, computed straight into dst.
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
	r := region{w: w, h: h, left: int(t.PadX), top: int(t.PadY), inW: inW, inH: inH}
	pad := uint8(d.spec.padValue)
	if p.tf != nil {
		if err := p.fillTF(src, dst, r, pad, d.u8, d.layout); err != nil {
			return err
		}
		dst.Transform = t
		return nil
	}
	gocv.Resize(src, &p.resized, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	px, err := p.resized.DataPtrUint8()
	if err != nil {
		return fmt.Errorf("infer: preprocess: %w", err)
	}
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

// fillTF resizes the BGR image src into dst with TensorFlow's arithmetic
// (see TFBilinear): each value is the float32 TensorFlow's resize yields,
// then the format's value range (rounded to the nearest integer for uint8
// inputs), in the model's channel order and layout, padding the rest.
func (p *preprocessor) fillTF(src gocv.Mat, dst *Input, r region, pad uint8, u8 bool, l layout) error {
	if !src.IsContinuous() { // a region of a frame
		src.CopyTo(&p.bgr)
		src = p.bgr
	}
	px, err := src.DataPtrUint8()
	if err != nil {
		return fmt.Errorf("infer: preprocess: %w", err)
	}
	t := tfTarget{inW: r.inW, plane: r.inW * r.inH, left: r.left, top: r.top, nchw: l == layoutNCHW,
		scale: p.scale, shift: p.shift, mean: p.mean, std: p.std, norm: p.std[0] != 0}
	letterboxed := r.w != r.inW || r.h != r.inH
	if u8 {
		t.u8 = dst.U8
		if letterboxed {
			fill(dst.U8, pad)
		}
	} else {
		t.f32 = dst.Data
		if letterboxed {
			p.fillPad(dst.Data, pad, l)
		}
	}
	p.tf.prepare(src.Cols(), src.Rows(), r.w, r.h, p.src == [3]int{2, 1, 0})
	return p.tf.resizeInto(px, 3*src.Cols(), t)
}

// fillPad sets every value of a float input to the pad value of its
// channel.
func (p *preprocessor) fillPad(out []float32, pad uint8, l layout) {
	plane := len(out) / 3
	for k := range 3 {
		pv := p.lut[k][pad]
		for i := range plane {
			if l == layoutNCHW {
				out[k*plane+i] = pv
			} else {
				out[3*i+k] = pv
			}
		}
	}
}
