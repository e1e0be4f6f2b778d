package infer

import (
	"fmt"
	"image"
	"image/color"
	"sync"

	"gocv.io/x/gocv"
)

// preprocessor owns the scratch Mats of Preprocess. They are reused across
// calls (OpenCV reallocates only when a size changes), so steady-state
// preprocessing allocates nothing in Go and nothing new in C.
type preprocessor struct {
	mu                          sync.Mutex
	bgr, resized, padded, color gocv.Mat
	f32                         gocv.Mat
	closed                      bool
}

func (p *preprocessor) init() {
	p.bgr, p.resized, p.padded, p.color, p.f32 = gocv.NewMat(), gocv.NewMat(), gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
}

func (p *preprocessor) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, m := range []*gocv.Mat{&p.bgr, &p.resized, &p.padded, &p.color, &p.f32} {
		m.Close()
	}
}

// Preprocess turns a BGR (or grey, or BGRA) 8-bit image into dst: resized
// or letterboxed to the model input, converted to the format's channel
// order, value range and layout, with dst.Transform set for mapping boxes
// back. img is not modified. Safe to call while Detect runs; concurrent
// Preprocess calls are serialised (they share scratch Mats).
func (d *Detector) Preprocess(img gocv.Mat, dst *Input) error {
	if img.Empty() {
		return fmt.Errorf("infer: preprocess: empty image")
	}
	if img.Type()&7 != gocv.MatTypeCV8U {
		return fmt.Errorf("infer: preprocess: image type %v, want 8-bit", img.Type())
	}
	inW, inH := d.params.inW, d.params.inH
	if dst == nil || len(dst.Data) != inW*inH*3 {
		return fmt.Errorf("infer: preprocess: input buffer has the wrong size for model %s: get it from this detector's NewInputPool", d.cfg.Path)
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
	cur := p.resized
	if w != inW || h != inH {
		left, top := int(t.PadX), int(t.PadY)
		v := uint8(d.spec.padValue)
		gocv.CopyMakeBorder(p.resized, &p.padded, top, inH-h-top, left, inW-w-left, gocv.BorderConstant, color.RGBA{v, v, v, 0})
		cur = p.padded
	}
	if !d.spec.bgr {
		gocv.CvtColor(cur, &p.color, gocv.ColorBGRToRGB)
		cur = p.color
	}
	cur.ConvertToWithParams(&p.f32, gocv.MatTypeCV32FC3, d.spec.scale, d.spec.shift)
	px, err := p.f32.DataPtrFloat32()
	if err != nil {
		return fmt.Errorf("infer: preprocess: %w", err)
	}
	if sp := d.spec; sp.std[0] != 0 {
		// Per-channel mean/std (RGB order), in the scratch Mat.
		for i := 0; i+2 < len(px); i += 3 {
			for c := range 3 {
				px[i+c] = (px[i+c] - sp.mean[c]) / sp.std[c]
			}
		}
	}
	if d.layout == layoutNHWC {
		copy(dst.Data, px)
	} else {
		plane := inW * inH
		r, g, b := dst.Data[:plane], dst.Data[plane:2*plane], dst.Data[2*plane:3*plane]
		for i := range plane {
			r[i], g[i], b[i] = px[3*i], px[3*i+1], px[3*i+2]
		}
	}
	dst.Transform = t
	return nil
}
