package infer

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/internal/matcheck"
)

// chainPreprocess is the OpenCV chain the fused Preprocess replaced:
// resize, border, colour conversion, ConvertTo, mean/std, layout copy.
// The fused pass must give the same values.
func chainPreprocess(t testing.TB, d *Detector, img gocv.Mat) []float32 {
	inW, inH := d.params.inW, d.params.inH
	tr, w, h := fitTransform(img.Cols(), img.Rows(), inW, inH, d.resize, d.spec.padTopLeft)
	resized, padded, rgb, f32 := gocv.NewMat(), gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	defer func() { resized.Close(); padded.Close(); rgb.Close(); f32.Close() }()
	gocv.Resize(img, &resized, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	cur := resized
	if w != inW || h != inH {
		v := uint8(d.spec.padValue)
		left, top := int(tr.PadX), int(tr.PadY)
		gocv.CopyMakeBorder(resized, &padded, top, inH-h-top, left, inW-w-left, gocv.BorderConstant, color.RGBA{v, v, v, 0})
		cur = padded
	}
	if !d.spec.bgr {
		gocv.CvtColor(cur, &rgb, gocv.ColorBGRToRGB)
		cur = rgb
	}
	cur.ConvertToWithParams(&f32, gocv.MatTypeCV32FC3, d.spec.scale, d.spec.shift)
	px, err := f32.DataPtrFloat32()
	if err != nil {
		t.Fatal(err)
	}
	px = append([]float32(nil), px...)
	if sp := d.spec; sp.std[0] != 0 {
		for i := 0; i+2 < len(px); i += 3 {
			for c := range 3 {
				px[i+c] = (px[i+c] - sp.mean[c]) / sp.std[c]
			}
		}
	}
	if d.layout == layoutNHWC {
		return px
	}
	plane := inW * inH
	out := make([]float32, 3*plane)
	for i := range plane {
		out[i], out[plane+i], out[2*plane+i] = px[3*i], px[3*i+1], px[3*i+2]
	}
	return out
}

// fusedCases are the input conventions of the formats, on planted models.
func fusedCases(t testing.TB) []struct {
	name string
	d    *Detector
} {
	ssd := plantModel(t, []int64{1, 300, 300, 3}, planted{"scores", []int64{2, 90}, make([]float32, 180)}, planted{"boxes", []int64{2, 1, 4}, make([]float32, 8)})
	yolo := plantModel(t, []int64{1, 3, 320, 320}, planted{"out", []int64{84, yoloAnchorCount}, yolov8Output(80, yoloAnchors)})
	yolox := plantModel(t, []int64{1, 3, 320, 320}, planted{"out", []int64{2100, 85}, make([]float32, 2100*85)})
	return []struct {
		name string
		d    *Detector
	}{
		{"ssd NHWC RGB 0..255 stretch", openTest(t, Config{Path: ssd, Format: "ssd"})},
		{"yolov8 NCHW RGB 0..1 letterbox", openTest(t, Config{Path: yolo, Format: "yolov8"})},
		{"yolox NCHW BGR top-left letterbox", openTest(t, Config{Path: yolox, Format: "yolox"})},
	}
}

// On real frames (768x576, so letterboxes pad), the fused pass equals the
// OpenCV chain for each convention, and for a mean/std one.
func TestPreprocessFusedMatchesChain(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	frames := videoFrames(t, vtestPath, 2)
	defer closeAll(frames)
	cases := fusedCases(t)
	// A mean/std convention (RF-DETR's ImageNet one) on the NCHW model.
	yolo := plantModel(t, []int64{1, 3, 320, 320}, planted{"out", []int64{84, yoloAnchorCount}, yolov8Output(80, yoloAnchors)})
	std := openTest(t, Config{Path: yolo, Format: "yolov8"})
	sp := *std.spec
	sp.mean, sp.std = [3]float32{0.485, 0.456, 0.406}, [3]float32{0.229, 0.224, 0.225}
	std.spec = &sp
	std.pre.setSpec(&sp)
	cases = append(cases, struct {
		name string
		d    *Detector
	}{"NCHW RGB mean/std", std})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.d.NewInputPool().Get()
			defer in.Release()
			for _, f := range frames {
				if err := c.d.Preprocess(f, in); err != nil {
					t.Fatal(err)
				}
				want := chainPreprocess(t, c.d, f)
				if len(want) != len(in.Data) {
					t.Fatalf("%d values, the chain %d", len(in.Data), len(want))
				}
				for i := range want {
					if math.Abs(float64(in.Data[i]-want[i])) > 1e-5*max(1, math.Abs(float64(want[i]))) {
						t.Fatalf("value %d = %g, the chain gives %g", i, in.Data[i], want[i])
					}
				}
			}
		})
	}
}

// A model with a uint8 image input gets the pixels as they are: the same
// values as the float path, as bytes, and Detect runs on them.
func TestPreprocessUint8Input(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	frames := videoFrames(t, vtestPath, 1)
	defer closeAll(frames)
	outs := []plantedOut{{planted: planted{"scores", []int64{2, 90}, make([]float32, 180)}}, {planted: planted{"boxes", []int64{2, 1, 4}, make([]float32, 8)}}}
	fp := openTest(t, Config{Path: plant(t, plantSpec{input: []int64{-1, 300, 300, 3}, outs: outs}), Format: "ssd"})
	u8 := openTest(t, Config{Path: plant(t, plantSpec{input: []int64{-1, 300, 300, 3}, u8: true, outs: outs}), Format: "ssd"})
	a, b := fp.NewInputPool().Get(), u8.NewInputPool().Get()
	defer a.Release()
	defer b.Release()
	if b.U8 == nil || b.Data != nil {
		t.Fatalf("uint8 model's input pool gives Data %d, U8 %d values", len(b.Data), len(b.U8))
	}
	if err := fp.Preprocess(frames[0], a); err != nil {
		t.Fatal(err)
	}
	if err := u8.Preprocess(frames[0], b); err != nil {
		t.Fatal(err)
	}
	for i := range a.Data {
		if float32(b.U8[i]) != a.Data[i] {
			t.Fatalf("value %d: uint8 %d, float %g", i, b.U8[i], a.Data[i])
		}
	}
	if _, err := u8.Detect(t.Context(), []*Input{b, b}); err != nil {
		t.Fatal(err)
	}
	if _, err := u8.Detect(t.Context(), []*Input{a}); err == nil {
		t.Fatal("a float input to a uint8 model should be refused")
	}
	// A format that scales its input cannot take a uint8 model.
	yolo := plant(t, plantSpec{input: []int64{1, 3, 320, 320}, u8: true, outs: []plantedOut{{planted: planted{"out", []int64{84, yoloAnchorCount}, yolov8Output(80, yoloAnchors)}}}})
	_, err := Open(Config{Path: yolo, Format: "yolov8"}, quietLog)
	if err == nil || !strings.Contains(err.Error(), "takes uint8 pixels, but format yolov8 feeds the model scaled floats") {
		t.Fatalf("a uint8 yolov8 model (input 0..1): %v", err)
	}
}

// go test ./infer -run '^$' -bench Preprocess: the fused pass against the
// chain and TF's resize, interleaved in one process, on one vtest frame into
// the SSD's input.
func BenchmarkPreprocess(b *testing.B) {
	requireRuntime(b)
	frames := videoFrames(b, vtestPath, 1)
	defer closeAll(frames)
	c := fusedCases(b)[0]
	in := c.d.NewInputPool().Get()
	defer in.Release()
	b.Run("fused", func(b *testing.B) {
		for b.Loop() {
			if err := c.d.Preprocess(frames[0], in); err != nil {
				b.Fatal(err)
			}
		}
	})
	outs := []plantedOut{{planted: planted{"scores", []int64{2, 90}, make([]float32, 180)}}, {planted: planted{"boxes", []int64{2, 1, 4}, make([]float32, 8)}}}
	u8 := openTest(b, Config{Path: plant(b, plantSpec{input: []int64{-1, 300, 300, 3}, u8: true, outs: outs}), Format: "ssd"})
	bin := u8.NewInputPool().Get()
	defer bin.Release()
	b.Run("fused-uint8", func(b *testing.B) {
		for b.Loop() {
			if err := u8.Preprocess(frames[0], bin); err != nil {
				b.Fatal(err)
			}
		}
	})
	// TF's resize (models with osprey.resize, like the COCO-SSD import).
	for _, u := range []bool{false, true} {
		d := tfSSD(b, u)
		in := d.NewInputPool().Get()
		defer in.Release()
		name := "tf-resize"
		if u {
			name += "-uint8"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := d.Preprocess(frames[0], in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("opencv-chain", func(b *testing.B) {
		for b.Loop() {
			copy(in.Data, chainPreprocess(b, c.d, frames[0]))
		}
	})
}
