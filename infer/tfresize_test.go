package infer

import (
	"image"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/internal/matcheck"
)

// The taps follow TensorFlow's three coordinate rules, checked by hand on
// a 4-pixel axis shrunk to 2 and grown to 8.
func TestTFBilinearTaps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		k       TFBilinear
		in, out int
		want    []tap
	}{
		// legacy: source = i*in/out, so output 1 reads source 2 exactly.
		{"legacy shrink", TFBilinear{}, 4, 2, []tap{{0, 0, 0}, {2, 2, 0}}},
		// half pixel centres: (i+0.5)*2-0.5 = 0.5, 2.5.
		{"half pixel shrink", TFBilinear{HalfPixelCenters: true}, 4, 2, []tap{{0, 1, 0.5}, {2, 3, 0.5}}},
		// align corners: i*(in-1)/(out-1), the last output on the last pixel.
		{"align corners shrink", TFBilinear{AlignCorners: true}, 4, 2, []tap{{0, 0, 0}, {3, 3, 0}}},
		// legacy growth: 0.5 steps, the last taps clamped to pixel 3.
		{"legacy grow", TFBilinear{}, 4, 8, []tap{{0, 0, 0}, {0, 1, 0.5}, {1, 1, 0}, {1, 2, 0.5}, {2, 2, 0}, {2, 3, 0.5}, {3, 3, 0}, {3, 3, 0.5}}},
		// half pixel growth starts before pixel 0: TF clamps the index, not the weight.
		{"half pixel grow", TFBilinear{HalfPixelCenters: true}, 2, 4, []tap{{0, 0, -0.25}, {0, 1, 0.25}, {0, 1, 0.75}, {1, 1, 0.25}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.k.taps(tc.in, tc.out))
		})
	}
}

func TestParseTFBilinear(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     TFBilinear
		err      string
	}{
		{"written by the importer", "tf-bilinear align_corners=false half_pixel_centers=false", TFBilinear{}, ""},
		{"defaults", "tf-bilinear", TFBilinear{}, ""},
		{"flags", "tf-bilinear half_pixel_centers=true align_corners=1", TFBilinear{AlignCorners: true, HalfPixelCenters: true}, ""},
		{"other kernel", "cv-area", TFBilinear{}, `osprey.resize "cv-area": want tf-bilinear [align_corners=BOOL] [half_pixel_centers=BOOL]`},
		{"bad bool", "tf-bilinear align_corners=maybe", TFBilinear{}, `osprey.resize "tf-bilinear align_corners=maybe": align_corners needs a true or false value`},
		{"unknown attribute", "tf-bilinear antialias=true", TFBilinear{}, `osprey.resize "tf-bilinear antialias=true": unknown attribute antialias (align_corners and half_pixel_centers are known)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseTFBilinear(tc.in)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, k)
			if tc.name == "written by the importer" {
				require.Equal(t, tc.in, k.String())
			}
		})
	}
}

// tfSSD plants SSD models that declare TF's resize: float NHWC, uint8 NHWC.
func tfSSD(t testing.TB, u8 bool) *Detector {
	outs := []plantedOut{{planted: planted{"scores", []int64{2, 90}, make([]float32, 180)}}, {planted: planted{"boxes", []int64{2, 1, 4}, make([]float32, 8)}}}
	meta := map[string]string{MetaResize: TFBilinear{}.String()}
	return openTest(t, Config{Path: plant(t, plantSpec{input: []int64{-1, 300, 300, 3}, u8: u8, meta: meta, outs: outs}), Format: "ssd"})
}

// A model that declares TF's resize gets it in every input convention:
// the direct formula on sampled pixels, uint8 as the float rounded, NCHW
// as NHWC transposed, a letterbox padded around the same kind of values,
// and a region of a frame (not continuous in memory) like its copy. The
// values equal TF.js's on real frames (infer/tfjs TestEndToEndMatchesTFJS).
func TestPreprocessTFResize(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	frames := videoFrames(t, vtestPath, 1)
	defer closeAll(frames)
	f := frames[0]
	fp, u8 := tfSSD(t, false), tfSSD(t, true)
	require.Equal(t, "tf-bilinear align_corners=false half_pixel_centers=false", fp.ResizeKernel())
	a, b := fp.NewInputPool().Get(), u8.NewInputPool().Get()
	defer a.Release()
	defer b.Release()
	require.NoError(t, fp.Preprocess(f, a))
	require.NoError(t, u8.Preprocess(f, b))
	px, err := f.DataPtrUint8()
	require.NoError(t, err)
	step := 3 * f.Cols()
	rx, ry := float64(f.Cols())/300, float64(f.Rows())/300
	for _, p := range []image.Point{{0, 0}, {1, 1}, {150, 77}, {299, 299}, {123, 250}} {
		sx, sy := rx*float64(p.X), ry*float64(p.Y)
		x0, y0 := int(sx), int(sy)
		x1, y1 := min(x0+1, f.Cols()-1), min(y0+1, f.Rows()-1)
		for k := range 3 { // model channel k is RGB, the frame BGR
			at := func(x, y int) float64 { return float64(px[y*step+3*x+2-k]) }
			top := at(x0, y0) + (at(x1, y0)-at(x0, y0))*(sx-float64(x0))
			bot := at(x0, y1) + (at(x1, y1)-at(x0, y1))*(sx-float64(x0))
			want := top + (bot-top)*(sy-float64(y0))
			got := a.Data[3*(p.Y*300+p.X)+k]
			require.InDelta(t, want, got, 1e-4, "pixel %v channel %d", p, k)
		}
	}
	for i, v := range a.Data {
		require.Equal(t, uint8(math.Round(float64(v))), b.U8[i], "value %d", i)
	}

	// A region: the same values as its continuous copy.
	view := f.Region(image.Rect(100, 50, 500, 400))
	defer view.Close()
	clone := view.Clone()
	defer clone.Close()
	c, d := fp.NewInputPool().Get(), fp.NewInputPool().Get()
	defer c.Release()
	defer d.Release()
	require.NoError(t, fp.Preprocess(view, c))
	require.NoError(t, fp.Preprocess(clone, d))
	require.Equal(t, d.Data, c.Data)

	// NCHW with a letterbox: the planes are the NHWC letterbox's, and the
	// padding is the pad value.
	yolo := plant(t, plantSpec{input: []int64{1, 3, 320, 320}, meta: map[string]string{MetaResize: "tf-bilinear"}, outs: []plantedOut{{planted: planted{"out", []int64{84, yoloAnchorCount}, yolov8Output(80, yoloAnchors)}}}})
	nchw := openTest(t, Config{Path: yolo, Format: "yolov8"})
	nhwc := openTest(t, Config{Path: plant(t, plantSpec{input: []int64{1, 320, 320, 3}, meta: map[string]string{MetaResize: "tf-bilinear"}, outs: []plantedOut{{planted: planted{"out", []int64{84, yoloAnchorCount}, yolov8Output(80, yoloAnchors)}}}}), Format: "yolov8"})
	e, g := nchw.NewInputPool().Get(), nhwc.NewInputPool().Get()
	defer e.Release()
	defer g.Release()
	require.NoError(t, nchw.Preprocess(f, e))
	require.NoError(t, nhwc.Preprocess(f, g))
	require.Equal(t, nchw.layout, layoutNCHW)
	require.Equal(t, nhwc.layout, layoutNHWC)
	plane := 320 * 320
	for i := range plane {
		for k := range 3 {
			require.Equal(t, g.Data[3*i+k], e.Data[k*plane+i], "pixel %d channel %d", i, k)
		}
	}
	pad := nchw.pre.lut[0][114]
	require.Equal(t, pad, e.Data[0], "top-left padding")
	require.Equal(t, pad, g.Data[0], "top-left padding")
}

// resizeReference is the resize written the plain way, one channel at a
// time through the taps: the C kernel must give the same float32 bits.
func resizeReference(k TFBilinear, px []uint8, srcW, srcH, step, w, h int) []float32 {
	cols, rows := k.taps(srcW, w), k.taps(srcH, h)
	out := make([]float32, 0, 3*w*h)
	for _, ty := range rows {
		for _, tx := range cols {
			for c := range 3 {
				at := func(x, y int) float64 { return float64(px[y*step+3*x+c]) }
				t := at(tx.lo, ty.lo) + float64((at(tx.hi, ty.lo)-at(tx.lo, ty.lo))*tx.frac)
				b := at(tx.lo, ty.hi) + float64((at(tx.hi, ty.hi)-at(tx.lo, ty.hi))*tx.frac)
				out = append(out, float32(t+float64((b-t)*ty.frac)))
			}
		}
	}
	return out
}

// The resize equals the reference bit for bit on a real frame, shrinking
// and growing, under all three coordinate rules, and so does its rounding
// for uint8 inputs.
func TestTFResizeExact(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	frames := videoFrames(t, vtestPath, 1)
	defer closeAll(frames)
	f := frames[0]
	px, err := f.DataPtrUint8()
	require.NoError(t, err)
	for _, k := range []TFBilinear{{}, {HalfPixelCenters: true}, {AlignCorners: true}} {
		for _, size := range [][2]int{{300, 300}, {320, 192}, {1024, 900}} {
			r := tfResizer{k: k}
			r.prepare(f.Cols(), f.Rows(), size[0], size[1], false)
			got := make([]float32, 3*size[0]*size[1])
			require.NoError(t, r.resizeInto(px, 3*f.Cols(), tfTarget{f32: got, inW: size[0], plane: size[0] * size[1], scale: 1}))
			want := resizeReference(k, px, f.Cols(), f.Rows(), 3*f.Cols(), size[0], size[1])
			require.Equal(t, len(want), len(got))
			for i := range want {
				if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
					t.Fatalf("%v to %v: value %d is %v, want %v", k, size, i, got[i], want[i])
				}
			}
			// uint8 inputs, RGB: computed in float, the values float cannot
			// round for sure redone in double; the same integers.
			r.prepare(f.Cols(), f.Rows(), size[0], size[1], true)
			u8 := make([]uint8, len(want))
			require.NoError(t, r.resizeInto(px, 3*f.Cols(), tfTarget{u8: u8, inW: size[0], plane: size[0] * size[1], scale: 1}))
			for i := range want {
				if v := want[i-i%3+2-i%3]; u8[i] != uint8(int(v+0.5)) {
					t.Fatalf("%v to %v, uint8: value %d is %d, want %d (%v)", k, size, i, u8[i], uint8(int(v+0.5)), v)
				}
			}
		}
	}
}

// The kernel is only called with buffers that hold what it reads and
// writes: short ones are errors, not memory faults.
func TestTFResizeIntoChecksSizes(t *testing.T) {
	r := tfResizer{}
	r.prepare(4, 4, 2, 2, true)
	px := make([]uint8, 4*4*3)
	out := make([]uint8, 2*2*3)
	require.NoError(t, r.resizeInto(px, 12, tfTarget{u8: out, inW: 2, plane: 4}))
	require.ErrorContains(t, r.resizeInto(px[:40], 12, tfTarget{u8: out, inW: 2, plane: 4}), "40 bytes of 12-byte rows for a 4x4 image")
	require.ErrorContains(t, r.resizeInto(px, 12, tfTarget{u8: out[:11], inW: 2, plane: 4}), "input of 11 values does not hold a 2x2 resize")
	require.ErrorContains(t, r.resizeInto(px, 12, tfTarget{u8: out, f32: make([]float32, 12), inW: 2, plane: 4}), "does not hold")
	require.ErrorContains(t, r.resizeInto(px, 12, tfTarget{u8: out, inW: 2, plane: 4, top: 1}), "at (0, 1)")
}
