package infer

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// COCO80 is the 80-class COCO list used by YOLO models: class index i is
// COCO80[i].
var COCO80 = []string{
	"person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
	"traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
	"dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
	"umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
	"kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
	"bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
	"sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
	"couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
	"remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
	"refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
	"toothbrush",
}

// COCO90 is the COCO category-id map used by TensorFlow detection models
// such as the COCO SSD: class index i is COCO category id i+1, and ids that
// COCO never used are "N/A".
var COCO90 = coco90()

// COCO91 is COCO90 indexed by category id itself: index 0 is the unused
// id 0, as in DETR-family heads with 91 (or 91 + no-object) columns.
var COCO91 = append([]string{"N/A"}, COCO90...)

// coco90 lays COCO80 out by category id; the 10 unused ids become "N/A".
func coco90() []string {
	unused := map[int]bool{12: true, 26: true, 29: true, 30: true, 45: true, 66: true, 68: true, 69: true, 71: true, 83: true}
	out := make([]string, 0, 90)
	next := 0
	for id := 1; id <= 90; id++ {
		if unused[id] {
			out = append(out, "N/A")
			continue
		}
		out = append(out, COCO80[next])
		next++
	}
	return out
}

// loadLabels resolves Config.Labels for a format.
func loadLabels(spec *formatSpec, labels string) ([]string, error) {
	switch labels {
	case "":
		return spec.labels, nil
	case "coco":
		if spec.coco == nil {
			return nil, fmt.Errorf("infer: labels \"coco\" do not apply to format %s: leave model.labels empty or give a labels file", spec.name)
		}
		return spec.coco, nil
	}
	f, err := os.Open(labels)
	if err != nil {
		return nil, fmt.Errorf("infer: labels file: %w (give \"coco\" or a file with one label per line)", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, strings.TrimSpace(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("infer: labels file %s: %w", labels, err)
	}
	// Drop trailing blank lines (a final newline or two), keep inner ones:
	// line numbers are class indices.
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("infer: labels file %s is empty: write one label per line", labels)
	}
	return out, nil
}

// labelOf names class c, falling back to "class N" beyond the label list.
func labelOf(labels []string, c int) string {
	if c >= 0 && c < len(labels) {
		return labels[c]
	}
	return fmt.Sprintf("class %d", c)
}
