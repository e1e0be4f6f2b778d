package infer

import (
	"context"
	"math"
	"testing"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
)

// want is one expected detection.
type want struct {
	label string
	score float32
	box   geom.Rect
}

func checkDets(t *testing.T, got []Detection, exp []want) {
	t.Helper()
	if len(got) != len(exp) {
		t.Fatalf("got %d detections %+v, want %d %+v", len(got), got, len(exp), exp)
	}
	for i, e := range exp {
		g := got[i]
		if g.Label != e.label || math.Abs(float64(g.Confidence-e.score)) > 1e-6 || !near(g.Box, e.box, 1e-4) {
			t.Errorf("detection %d = %s %.4f %v, want %s %.4f %v", i, g.Label, g.Confidence, g.Box, e.label, e.score, e.box)
		}
	}
}

// detectAll preprocesses each image and runs them as one batch.
func detectAll(t *testing.T, d *Detector, imgs ...[2]int) [][]Detection {
	t.Helper()
	pool := d.NewInputPool()
	var ins []*Input
	for _, sz := range imgs {
		in := pool.Get()
		if err := d.Preprocess(grey(t, sz[0], sz[1]), in); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	out, err := d.Detect(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		in.Release()
	}
	return out
}

// yolov8Output lays boxes out as Ultralytics does: [4+C, A], one column
// per anchor.
func yolov8Output(classes int, anchors [][6]float32) []float32 {
	a := yoloAnchorCount
	out := make([]float32, (4+classes)*a)
	for i, an := range anchors { // cx, cy, w, h, class, score
		for r := range 4 {
			out[r*a+i] = an[r]
		}
		out[(4+int(an[4]))*a+i] = an[5]
	}
	return out
}

// yoloAnchorCount pads planted outputs with empty anchors: real exports
// have far more anchors than classes, and the decoders rely on that to tell
// [N,4+C,A] from [N,A,5+C].
const yoloAnchorCount = 100

// The planted anchors for the YOLO tests, in 320x320 input pixels.
var yoloAnchors = [][6]float32{
	{160, 160, 100, 50, 0, 0.9}, // person
	{165, 160, 100, 50, 0, 0.8}, // same person, lower score: NMS drops it
	{160, 160, 100, 50, 2, 0.7}, // car on the same spot: other class, kept
	{100, 100, 20, 20, 0, 0.3},  // below confidence
	{160, 10, 40, 10, 0, 0.95},  // inside the letterbox padding of a 640x480 frame
	{60, 200, 40, 40, 5, 0.6},   // bus
}

func TestYOLOv8Planted(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	model := plantModel(t, []int64{-1, 3, 320, 320}, planted{"output0", []int64{84, yoloAnchorCount}, yolov8Output(80, yoloAnchors)})
	d := openTest(t, Config{Path: model, Format: "yolov8"})
	if w, h := d.InputSize(); w != 320 || h != 320 {
		t.Fatalf("input size %dx%d", w, h)
	}
	// Two frames in one Run: landscape 640x480 (scale 0.5, 40 px bars top
	// and bottom) and portrait 480x640 (40 px bars left and right).
	out := detectAll(t, d, [2]int{640, 480}, [2]int{480, 640})
	checkDets(t, out[0], []want{
		{"person", 0.9, geom.Rect{X: 220, Y: 190, W: 200, H: 100}},
		{"car", 0.7, geom.Rect{X: 220, Y: 190, W: 200, H: 100}},
		{"bus", 0.6, geom.Rect{X: 80, Y: 280, W: 80, H: 80}},
	})
	// In the portrait frame the padding box (y 5..15) lies in the image
	// (no vertical bars): it maps to y 10..30.
	checkDets(t, out[1], []want{
		{"person", 0.95, geom.Rect{X: 200, Y: 10, W: 80, H: 20}},
		{"person", 0.9, geom.Rect{X: 140, Y: 270, W: 200, H: 100}},
		{"car", 0.7, geom.Rect{X: 140, Y: 270, W: 200, H: 100}},
		{"bus", 0.6, geom.Rect{X: 0, Y: 360, W: 80, H: 80}},
	})
}

func TestClassFilter(t *testing.T) {
	requireRuntime(t)
	model := plantModel(t, []int64{1, 3, 320, 320}, planted{"output0", []int64{84, yoloAnchorCount}, yolov8Output(80, yoloAnchors)})
	d := openTest(t, Config{Path: model, Format: "yolov8", Classes: []string{"car", "bus"}, Confidence: 0.65})
	out := detectAll(t, d, [2]int{640, 480})
	checkDets(t, out[0], []want{{"car", 0.7, geom.Rect{X: 220, Y: 190, W: 200, H: 100}}})
}

// A fixed batch-1 model runs a batch of 3 as three Runs.
func TestFixedBatchChunks(t *testing.T) {
	requireRuntime(t)
	model := plantModel(t, []int64{1, 3, 320, 320}, planted{"output0", []int64{84, yoloAnchorCount}, yolov8Output(80, yoloAnchors)})
	d := openTest(t, Config{Path: model, Format: "yolov8"})
	out := detectAll(t, d, [2]int{640, 480}, [2]int{320, 320}, [2]int{640, 480})
	if len(out) != 3 || len(out[0]) != 3 || len(out[2]) != 3 {
		t.Fatalf("got %+v", out)
	}
	// 320x320 needs no resize: input pixels are source pixels.
	checkDets(t, out[1][:1], []want{{"person", 0.95, geom.Rect{X: 140, Y: 5, W: 40, H: 10}}})
}

// yolov5Output lays anchors out as rows cx,cy,w,h,obj,classes...
func yolov5Output(classes int, rows [][7]float32) []float32 {
	n := 5 + classes
	out := make([]float32, n*len(rows))
	for i, r := range rows { // cx, cy, w, h, obj, class, score
		copy(out[i*n:], r[:5])
		out[i*n+5+int(r[5])] = r[6]
	}
	return out
}

func TestYOLOv5Planted(t *testing.T) {
	requireRuntime(t)
	rows := [][7]float32{
		{160, 160, 100, 50, 0.9, 0, 0.9},  // person 0.81
		{160, 160, 100, 50, 0.5, 0, 0.99}, // 0.495 < 0.5
		{160, 160, 100, 50, 0.4, 0, 1},    // objectness alone below
		{60, 200, 40, 40, 1, 7, 0.75},     // truck 0.75
	}
	rows = append(rows, make([][7]float32, yoloAnchorCount-len(rows))...)
	model := plantModel(t, []int64{-1, 3, 320, 320}, planted{"output0", []int64{int64(len(rows)), 85}, yolov5Output(80, rows)})
	d := openTest(t, Config{Path: model, Format: "yolov5"})
	out := detectAll(t, d, [2]int{640, 480})
	checkDets(t, out[0], []want{
		{"person", 0.81, geom.Rect{X: 220, Y: 190, W: 200, H: 100}},
		{"truck", 0.75, geom.Rect{X: 80, Y: 280, W: 80, H: 80}},
	})
}

// YOLOX at 128x128 has 16x16 + 8x8 + 4x4 = 336 anchors. Its own export leaves
// boxes raw; the same boxes decoded in the graph must give the same result.
func TestYOLOXPlanted(t *testing.T) {
	requireRuntime(t)
	const anchors = 336
	raw := make([][7]float32, anchors)
	// Stride-16 grid, cell (1,0): anchor 256 + 0*8 + 1. Centre offset
	// (0.5,0.5) cells, size exp(ln 2)=2 by exp(0)=1 cells.
	raw[257] = [7]float32{0.5, 0.5, float32(math.Log(2)), 0, 0.9, 1, 0.8}
	decoded := make([][7]float32, anchors)
	decoded[257] = [7]float32{24, 8, 32, 16, 0.9, 1, 0.8}
	decoded[0] = [7]float32{0, 0, 64, 64, 0, 0, 0} // a big, unscored box marks the output as decoded
	// 256x128 source -> scale 0.5 into the top-left 128x64; no padding before
	// the image, so input (8,0,32,16) -> source (16,0,64,32).
	exp := []want{{"bicycle", 0.72, geom.Rect{X: 16, Y: 0, W: 64, H: 32}}}
	for name, rows := range map[string][][7]float32{"raw": raw, "decoded": decoded} {
		t.Run(name, func(t *testing.T) {
			model := plantModel(t, []int64{1, 3, 128, 128}, planted{"output", []int64{anchors, 85}, yolov5Output(80, rows)})
			d := openTest(t, Config{Path: model, Format: "yolox"})
			checkDets(t, detectAll(t, d, [2]int{256, 128})[0], exp)
		})
	}
}

// SSD: scores [A,90] after sigmoid, boxes [A,1,4] normalised
// ymin,xmin,ymax,xmax; stretch resize, so boxes scale straight to source.
func TestSSDPlanted(t *testing.T) {
	requireRuntime(t)
	const a = 3
	scores := make([]float32, a*90)
	scores[0*90+0] = 0.9  // person
	scores[0*90+2] = 0.6  // car, same box: SSD scores every class
	scores[1*90+0] = 0.85 // person overlapping anchor 0: suppressed
	scores[2*90+17] = 0.7 // dog (id 18, index 17)
	boxes := []float32{
		0.1, 0.2, 0.5, 0.4,
		0.11, 0.2, 0.5, 0.4,
		0.5, 0.5, 1.0, 1.0,
	}
	model := plantModel(t, []int64{-1, 300, 300, 3},
		planted{"scores", []int64{a, 90}, scores},
		planted{"boxes", []int64{a, 1, 4}, boxes})
	d := openTest(t, Config{Path: model, Format: "ssd"})
	out := detectAll(t, d, [2]int{1000, 500})
	checkDets(t, out[0], []want{
		{"person", 0.9, geom.Rect{X: 200, Y: 50, W: 200, H: 200}},
		{"dog", 0.7, geom.Rect{X: 500, Y: 250, W: 500, H: 250}},
		{"car", 0.6, geom.Rect{X: 200, Y: 50, W: 200, H: 200}},
	})
	if out[0][1].ClassID != 17 || COCO90[17] != "dog" || COCO90[11] != "N/A" {
		t.Errorf("dog class id %d; COCO90[11]=%q", out[0][1].ClassID, COCO90[11])
	}
}

// go test ./infer -run '^$' -bench SSDDecode: the SSD's 1917 anchors x 91
// classes of scores, a few hundred confident, every class against the
// demo's three.
func BenchmarkSSDDecode(b *testing.B) {
	const anchors, classes = 1917, 91
	scores, boxes := make([]float32, anchors*classes), make([]float32, anchors*4)
	for i := range scores {
		scores[i] = 0.01 // most anchors score next to nothing
		if i%499 == 0 {
			scores[i] = 0.9
		}
	}
	for i := range anchors {
		copy(boxes[4*i:], []float32{0.1, 0.1, 0.3, 0.2})
	}
	outs := []tensorView{{data: scores, shape: []int64{1, anchors, classes}}, {data: boxes, shape: []int64{1, anchors, 4}}}
	d := &ssdDecoder{scores: 0, boxes: 1}
	keep := make([]bool, classes)
	keep[1], keep[2], keep[3] = true, true, true
	for _, tc := range []struct {
		name string
		p    decodeParams
	}{
		{"all-classes", decodeParams{conf: 0.45, inW: 300, inH: 300}},
		{"three-classes", decodeParams{conf: 0.45, inW: 300, inH: 300, keep: keep, kept: []int{1, 2, 3}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var dst []candidate
			for b.Loop() {
				dst = d.decode(outs, 0, &tc.p, dst[:0])
			}
		})
	}
}
