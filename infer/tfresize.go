package infer

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MetaResize is the ONNX metadata key through which a model declares the
// resize its source framework runs before the graph's input, so Preprocess
// can reproduce it instead of using OpenCV's. The TF.js importer
// (infer/tfjs) writes it when it cuts a TensorFlow ResizeBilinear off the
// graph. The value is "tf-bilinear" followed by the op's attributes, e.g.
// "tf-bilinear align_corners=false half_pixel_centers=false" (see
// ParseTFBilinear).
const MetaResize = "osprey.resize"

// TFBilinear is TensorFlow's ResizeBilinear with its two attributes. Its
// legacy form (both false) maps output pixel i to source coordinate
// i*in/out (asymmetric coordinates), where OpenCV's INTER_LINEAR uses
// (i+0.5)*in/out-0.5 and fixed-point weights, so the two differ by up to
// tens of grey levels on edges.
type TFBilinear struct {
	AlignCorners     bool
	HalfPixelCenters bool
}

// String returns the MetaResize value for k.
func (k TFBilinear) String() string {
	return fmt.Sprintf("tf-bilinear align_corners=%t half_pixel_centers=%t", k.AlignCorners, k.HalfPixelCenters)
}

// ParseTFBilinear reads a MetaResize value. Attributes left out take
// TensorFlow's defaults (false).
func ParseTFBilinear(s string) (TFBilinear, error) {
	var k TFBilinear
	f := strings.Fields(s)
	if len(f) == 0 || f[0] != "tf-bilinear" {
		return k, fmt.Errorf("%s %q: want tf-bilinear [align_corners=BOOL] [half_pixel_centers=BOOL]", MetaResize, s)
	}
	for _, a := range f[1:] {
		name, val, _ := strings.Cut(a, "=")
		b, err := strconv.ParseBool(val)
		switch {
		case err != nil:
			return k, fmt.Errorf("%s %q: %s needs a true or false value", MetaResize, s, name)
		case name == "align_corners":
			k.AlignCorners = b
		case name == "half_pixel_centers":
			k.HalfPixelCenters = b
		default:
			return k, fmt.Errorf("%s %q: unknown attribute %s (align_corners and half_pixel_centers are known)", MetaResize, s, name)
		}
	}
	return k, nil
}

// metaResizeKernel reads a model's MetaResize: nil (OpenCV's resize) when
// absent, an error when present but not understood.
func metaResizeKernel(props map[string]string) (*TFBilinear, error) {
	v, ok := props[MetaResize]
	if !ok {
		return nil, nil
	}
	k, err := ParseTFBilinear(v)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// tap is where one output coordinate reads the source: between lo and hi
// (equal at the border) with weight frac on hi.
type tap struct {
	lo, hi int
	frac   float64
}

// taps returns the source taps of each of the out output coordinates along
// an axis of in source pixels. The arithmetic is TF.js's CPU kernel's
// (tfjs-backend-cpu ResizeBilinear) in float64, as JavaScript computes it.
func (k TFBilinear) taps(in, out int) []tap {
	effIn, effOut := float64(in), float64(out)
	if k.AlignCorners && out > 1 {
		effIn, effOut = float64(in-1), float64(out-1)
	}
	ratio := effIn / effOut
	t := make([]tap, out)
	for i := range t {
		var src float64
		if k.HalfPixelCenters {
			src = float64(ratio*(float64(i)+0.5)) - 0.5
		} else {
			src = ratio * float64(i)
		}
		lo := max(0, int(math.Floor(src)))
		hi := min(in-1, int(math.Ceil(src)))
		t[i] = tap{lo: lo, hi: hi, frac: src - float64(lo)}
	}
	return t
}

// tfResizer runs a TFBilinear resize from a BGR uint8 image straight into a
// model input (tfresize.c), caching the taps of the last geometry (a
// stream's frames keep one size).
type tfResizer struct {
	k                TFBilinear
	srcW, srcH, w, h int
	rgb              bool
	// col0 and col1 are the byte offsets in a source row of each output
	// column's lo and hi pixel, fx4 its weight on hi once per lane of the
	// kernel's four-byte pixels; row0, row1 and fy the same per output row.
	col0, col1 []int32
	fx4        []float64
	fx4f       []float32 // fx4 in float, for uint8 inputs
	row0, row1 []int32
	fy         []float64
	scratch    []uint8
}

// prepare computes the taps for a srcW x srcH image resized to w x h, into
// RGB order when rgb (the channels stay BGR otherwise).
func (r *tfResizer) prepare(srcW, srcH, w, h int, rgb bool) {
	if r.col0 != nil && r.srcW == srcW && r.srcH == srcH && r.w == w && r.h == h && r.rgb == rgb {
		return
	}
	r.srcW, r.srcH, r.w, r.h, r.rgb = srcW, srcH, w, h, rgb
	cols, rows := r.k.taps(srcW, w), r.k.taps(srcH, h)
	r.col0, r.col1, r.fx4, r.fx4f = make([]int32, w), make([]int32, w), make([]float64, 4*w), make([]float32, 4*w)
	for x, t := range cols {
		r.col0[x], r.col1[x] = int32(3*t.lo), int32(3*t.hi)
		for k := range 4 {
			r.fx4[4*x+k], r.fx4f[4*x+k] = t.frac, float32(t.frac)
		}
	}
	r.row0, r.row1, r.fy = make([]int32, h), make([]int32, h), make([]float64, h)
	for y, t := range rows {
		r.row0[y], r.row1[y], r.fy[y] = int32(t.lo), int32(t.hi), t.frac
	}
	r.scratch = make([]uint8, 40*w)
}

// tfTarget is where resizeInto writes: exactly one of u8 and f32, an
// inW-wide input with the resized image at (left, top), and for float
// inputs the format's value range (x*scale + shift, then (x - mean) / std
// when norm).
type tfTarget struct {
	u8                    []uint8
	f32                   []float32
	inW, plane, left, top int
	nchw                  bool
	scale, shift          float32
	mean, std             [3]float32
	norm                  bool
}

// resizeInto resizes px (srcH rows step bytes apart, as last prepared) into
// t. The value of each output is the float32 TF.js's Float32Array holds:
// computed in float64, rounded once (then to the nearest integer for
// uint8 inputs).
func (r *tfResizer) resizeInto(px []uint8, step int, t tfTarget) error {
	if r.w <= 0 || r.h <= 0 {
		return nil // nothing to write
	}
	if r.col0 == nil || r.srcW <= 0 || r.srcH <= 0 || step < 3*r.srcW || len(px) < (r.srcH-1)*step+3*r.srcW {
		return fmt.Errorf("infer: preprocess: %d bytes of %d-byte rows for a %dx%d image", len(px), step, r.srcW, r.srcH)
	}
	need := t.plane * 3
	if (t.u8 == nil) == (t.f32 == nil) || len(t.u8)+len(t.f32) < need || (t.top+r.h-1)*t.inW+t.left+r.w > t.plane {
		return fmt.Errorf("infer: preprocess: input of %d values does not hold a %dx%d resize at (%d, %d)", len(t.u8)+len(t.f32), r.w, r.h, t.left, t.top)
	}
	runTFResize(r, px, step, t)
	return nil
}
