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
// model input, caching the taps of the last geometry (a stream's frames
// keep one size).
type tfResizer struct {
	k                TFBilinear
	srcW, srcH, w, h int
	cols, rows       []tap
	colOff0, colOff1 []int // byte offsets of each column's lo and hi pixel
	out              []float32
}

func (r *tfResizer) prepare(srcW, srcH, w, h int) {
	if r.cols != nil && r.srcW == srcW && r.srcH == srcH && r.w == w && r.h == h {
		return
	}
	r.srcW, r.srcH, r.w, r.h = srcW, srcH, w, h
	r.cols, r.rows = r.k.taps(srcW, w), r.k.taps(srcH, h)
	r.colOff0, r.colOff1 = make([]int, w), make([]int, w)
	for x, t := range r.cols {
		r.colOff0[x], r.colOff1[x] = 3*t.lo, 3*t.hi
	}
}

// resize computes the w x h resize of the srcW x srcH BGR image px (rows
// step bytes apart) into r.out as float32 B, G, R values, each rounded
// once from float64 like TF.js's Float32Array. The products are converted
// explicitly so the compiler never fuses them into multiply-adds, which
// would round differently.
func (r *tfResizer) resize(px []uint8, step int) []float32 {
	n := 3 * r.w * r.h
	if cap(r.out) < n {
		r.out = make([]float32, n)
	}
	out := r.out[:n]
	o := 0
	for _, ty := range r.rows {
		top := px[ty.lo*step : ty.lo*step+step]
		bot := px[ty.hi*step : ty.hi*step+step]
		fy := ty.frac
		for x, tx := range r.cols {
			o0, o1, fx := r.colOff0[x], r.colOff1[x], tx.frac
			tl, tr, bl, br := top[o0:o0+3], top[o1:o1+3], bot[o0:o0+3], bot[o1:o1+3]
			px := out[o : o+3]
			for c := range 3 {
				t := float64(tl[c]) + float64((float64(tr[c])-float64(tl[c]))*fx)
				b := float64(bl[c]) + float64((float64(br[c])-float64(bl[c]))*fx)
				px[c] = float32(t + float64((b-t)*fy))
			}
			o += 3
		}
	}
	return out
}
