package infer

import (
	"slices"
	"strings"
	"testing"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
)

// poseMeta is an Ultralytics pose export's metadata with 2 keypoints of
// x, y, visibility (real COCO pose models have 17).
func poseMeta() map[string]string {
	m := ultralyticsMeta(`{0: 'person'}`, 320)
	m["task"], m["kpt_shape"] = "pose", "[2, 3]"
	return m
}

// Pose keypoints come out of both Ultralytics layouts mapped through the
// letterbox like the boxes (640x480 into 320x320: source = (input -
// (0,40)) * 2), and follow their box through NMS.
func TestPosePlanted(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	const a = 100
	// [4+1+2*3, A]: cx,cy,w,h, person score, kp0 x,y,v, kp1 x,y,v.
	v8 := make([]float32, 11*a)
	for i, col := range [][11]float32{
		{160, 160, 100, 50, 0.9, 150, 150, 0.9, 170, 155, 0.2},
		{165, 160, 100, 50, 0.8, 1, 1, 1, 2, 2, 1}, // suppressed with its keypoints
	} {
		for r, v := range col {
			v8[r*a+i] = v
		}
	}
	e2e := make([]float32, 300*12)
	copy(e2e, []float32{110, 90, 210, 140, 0.9, 0, 150, 100, 1, 170, 120, 0.5})
	for _, tc := range []struct {
		name, reason string
		out          planted
		box          geom.Rect
		kps          []geom.Point
	}{
		{"YOLOv8/11 pose", "then 2 keypoints of 3 values (Ultralytics YOLOv8/v11)", planted{"output0", []int64{11, a}, v8},
			geom.Rect{X: 220, Y: 190, W: 200, H: 100}, []geom.Point{{X: 300, Y: 220}, {X: 340, Y: 230}}},
		{"end-to-end pose", ", 2 keypoints of 3 values per query (YOLOv10/YOLO26 end-to-end)", planted{"output0", []int64{300, 12}, e2e},
			geom.Rect{X: 220, Y: 100, W: 200, H: 100}, []geom.Point{{X: 300, Y: 120}, {X: 340, Y: 160}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := plant(t, plantSpec{input: []int64{1, 3, 320, 320}, meta: poseMeta(), outs: []plantedOut{{planted: tc.out}}})
			d := openTest(t, Config{Path: model})
			if !strings.Contains(d.FormatReason(), tc.reason) {
				t.Errorf("reason %q lacks %q", d.FormatReason(), tc.reason)
			}
			got := detectAll(t, d, [2]int{640, 480})[0]
			checkDets(t, got, []want{{"person", 0.9, tc.box}})
			if !slices.EqualFunc(got[0].Keypoints, tc.kps, func(a, b geom.Point) bool {
				return near(geom.Rect{X: a.X, Y: a.Y}, geom.Rect{X: b.X, Y: b.Y}, 1e-4)
			}) {
				t.Errorf("keypoints %v, want %v", got[0].Keypoints, tc.kps)
			}
		})
	}
}

// A pose model whose rows do not hold the metadata's keypoints is refused.
func TestPoseShapeMismatch(t *testing.T) {
	requireRuntime(t)
	model := plant(t, plantSpec{input: []int64{1, 3, 320, 320}, meta: poseMeta(), outs: []plantedOut{{planted: planted{"output0", []int64{300, 6}, make([]float32, 1800)}}}})
	_, err := Open(Config{Path: model, Format: "yolo-end2end"}, quietLog)
	want := "does not fit format yolo-end2end: yolo-end2end pose expects one output [N,Q,12]: x1,y1,x2,y2,score,class and 2 keypoints of 3 values; the model has outputs output0 [1,300,6]"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
