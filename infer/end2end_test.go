package infer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
)

// end2endRows lays out [Q,6] rows x1,y1,x2,y2,score,class, padded with
// empty queries to 300 as YOLOv10/YOLO26 exports are.
func end2endRows(rows ...[6]float32) []float32 {
	out := make([]float32, 300*6)
	for i, r := range rows {
		copy(out[i*6:], r[:])
	}
	return out
}

// ultralyticsMeta is metadata as an Ultralytics export writes it.
func ultralyticsMeta(names string, imgsz int) map[string]string {
	return map[string]string{
		"author": "Ultralytics", "task": "detect", "stride": "32", "batch": "1",
		"imgsz": fmt.Sprintf("[%d, %d]", imgsz, imgsz), "names": names,
	}
}

// sixNames are custom class names, one with a quote, to prove labels come
// from the metadata rather than COCO.
const sixNames = `{0: 'walker', 1: 'bike', 2: "driver's car", 3: 'x', 4: 'y', 5: 'bus'}`

func TestEnd2EndPlanted(t *testing.T) {
	requireRuntime(t)
	matcheck.Leaks(t)
	// Input pixels of a 320x320 letterbox of a 640x480 frame: scale 0.5,
	// 40 px bars top and bottom, so source = (input - (0,40)) * 2.
	rows := end2endRows(
		[6]float32{110, 90, 210, 140, 0.9, 0},
		[6]float32{115, 90, 215, 140, 0.8, 0}, // overlaps the first: kept, the model already chose
		[6]float32{10, 50, 30, 70, 0.3, 2},    // below confidence
		[6]float32{60, 180, 100, 220, 0.6, 5},
		[6]float32{100, 10, 140, 30, 0.95, 0}, // in the top bar: nothing of it in the frame
	)
	model := plant(t, plantSpec{
		input: []int64{1, 3, 320, 320},
		meta:  ultralyticsMeta(sixNames, 320),
		outs:  []plantedOut{{planted: planted{"output0", []int64{300, 6}, rows}}},
	})
	walker := geom.Rect{X: 220, Y: 100, W: 200, H: 100}
	walker2 := geom.Rect{X: 230, Y: 100, W: 200, H: 100}
	bus := geom.Rect{X: 120, Y: 280, W: 80, H: 80}
	tests := []struct {
		name string
		cfg  Config
		want []want
	}{
		{"auto, no NMS", Config{}, []want{{"walker", 0.9, walker}, {"walker", 0.8, walker2}, {"bus", 0.6, bus}}},
		{"forced", Config{Format: "yolo-end2end"}, []want{{"walker", 0.9, walker}, {"walker", 0.8, walker2}, {"bus", 0.6, bus}}},
		{"NMS asked for", Config{NMS: true}, []want{{"walker", 0.9, walker}, {"bus", 0.6, bus}}},
		{"class filter", Config{Classes: []string{"bus"}}, []want{{"bus", 0.6, bus}}},
		{"confidence", Config{Confidence: 0.85}, []want{{"walker", 0.9, walker}}},
		{"low confidence", Config{Confidence: 0.25, Classes: []string{"driver's car"}}, []want{{"driver's car", 0.3, geom.Rect{X: 20, Y: 20, W: 40, H: 40}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Path = model
			d := openTest(t, tc.cfg)
			if d.Format() != "yolo-end2end" {
				t.Fatalf("format %q (%s)", d.Format(), d.FormatReason())
			}
			if w, h := d.InputSize(); w != 320 || h != 320 {
				t.Fatalf("input %dx%d", w, h)
			}
			checkDets(t, detectAll(t, d, [2]int{640, 480})[0], tc.want)
		})
	}
}

// Without metadata the end-to-end layout is still recognised, with COCO
// labels, and a stretch resize maps boxes per axis.
func TestEnd2EndNoMetadataStretch(t *testing.T) {
	requireRuntime(t)
	rows := end2endRows([6]float32{100, 100, 200, 300, 0.7, 2})
	model := plant(t, plantSpec{input: []int64{-1, 3, 640, 640}, outs: []plantedOut{{planted: planted{"output0", []int64{300, 6}, rows}}}})
	d := openTest(t, Config{Path: model, Resize: ResizeStretch})
	if d.Format() != "yolo-end2end" || !strings.Contains(d.FormatReason(), "YOLOv10/YOLO26 end-to-end") {
		t.Fatalf("format %q: %s", d.Format(), d.FormatReason())
	}
	// 1280x320 stretched to 640x640: x / 0.5, y / 2.
	checkDets(t, detectAll(t, d, [2]int{1280, 320})[0], []want{{"car", 0.7, geom.Rect{X: 200, Y: 50, W: 200, H: 100}}})
}
