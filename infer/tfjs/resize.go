package tfjs

import (
	"fmt"
	"slices"
	"strings"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// MetaResize is the ONNX metadata key that records the resize cut off
// before the graph's input; infer.MetaResize reads the same key and
// infer.ParseTFBilinear the value, so Preprocess resizes exactly like the
// source graph did (docs/model-import.md).
const MetaResize = "osprey.resize"

// cutResize finds the resize the cut leaves out: the one ResizeBilinear
// upstream of the cut input (COCO-SSD's preprocessing while-loop) whose
// output size is the cut's H x W. It returns the MetaResize value, or ""
// when the cut input is fed directly (a Placeholder cut, or a graph with no
// or several resizes, whose input Osprey's own resize then feeds).
func cutResize(m *Model, input string, shape []int64) string {
	start, _ := splitRef(input)
	seen := map[string]bool{}
	var resizes []*Node
	stack := []string{start}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n, ok := m.Nodes[name]
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		if strings.HasPrefix(n.Op, "Resize") || n.Op == "CropAndResize" {
			resizes = append(resizes, n)
		}
		for _, in := range n.Input {
			if !strings.HasPrefix(in, "^") { // control inputs carry no data
				nm, _ := splitRef(in)
				stack = append(stack, nm)
			}
		}
	}
	if len(resizes) != 1 || resizes[0].Op != "ResizeBilinear" || len(resizes[0].Input) != 2 || len(shape) != 4 {
		return ""
	}
	r := resizes[0]
	size, _ := splitRef(r.Input[1])
	t, ok := m.Weights[size]
	if !ok || !slices.Equal(t.ints(), shape[1:3]) {
		return ""
	}
	b := func(name string) bool { a := r.Attr[name]; return a.B != nil && *a.B }
	// The value's format is infer.TFBilinear.String's.
	return fmt.Sprintf("tf-bilinear align_corners=%t half_pixel_centers=%t", b("align_corners"), b("half_pixel_centers"))
}

// setMeta sets one metadata_props entry of m.
func setMeta(m *onnx.ModelProto, key, value string) {
	for _, p := range m.MetadataProps {
		if p.Key == key {
			p.Value = value
			return
		}
	}
	m.MetadataProps = append(m.MetadataProps, &onnx.StringStringEntryProto{Key: key, Value: value})
}
