package infer

import (
	"fmt"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// modelInputs are a model's declared inputs sorted by role: the image, and
// the optional [N,2] orig_target_sizes input of RT-DETR-style exports.
type modelInputs struct {
	image ort.InputOutputInfo
	// sizes is the sizes input; its Name is "" when the model has none.
	sizes ort.InputOutputInfo
}

// splitInputs finds the image input (one float or uint8 [N,H,W,3] or
// [N,3,H,W]; uint8 for INT8 models that take pixels as they are) and
// at most one sizes input ([N,2] int64 or float). Anything else is an error
// naming every input.
func splitInputs(path string, ins []ort.InputOutputInfo) (modelInputs, error) {
	var mi modelInputs
	images, other := 0, 0
	for _, in := range ins {
		s := in.Dimensions
		switch {
		case len(s) == 4 && (in.DataType == ort.TensorElementDataTypeFloat || in.DataType == ort.TensorElementDataTypeUint8):
			mi.image = in
			images++
		case len(s) == 2 && (s[1] == 2) && (in.DataType == ort.TensorElementDataTypeInt64 || in.DataType == ort.TensorElementDataTypeFloat):
			mi.sizes = in
		default:
			other++
		}
	}
	if images != 1 || other > 0 || len(ins) > 2 {
		parts := make([]string, len(ins))
		for i, in := range ins {
			parts[i] = fmt.Sprintf("%s %s %v", in.Name, shapeString(in.Dimensions), in.DataType)
		}
		return mi, fmt.Errorf("infer: model %s: expected one float32 or uint8 image input [N,H,W,3] or [N,3,H,W] (and at most an [N,2] orig_target_sizes input), found %s", path, strings.Join(parts, ", "))
	}
	return mi, nil
}

// sizesTensor returns an [n,2] tensor holding (w, h) per image, of the
// sizes input's type. Feeding the model-input size makes an exported
// postprocessor scale boxes to model-input pixels, which the letterbox or
// stretch transform then maps to the source image.
func sizesTensor(info ort.InputOutputInfo, n, w, h int) (ort.Value, error) {
	shape := ort.NewShape(int64(n), 2)
	if info.DataType == ort.TensorElementDataTypeInt64 {
		data := make([]int64, 2*n)
		for i := range n {
			data[2*i], data[2*i+1] = int64(w), int64(h)
		}
		return ort.NewTensor(shape, data)
	}
	data := make([]float32, 2*n)
	for i := range n {
		data[2*i], data[2*i+1] = float32(w), float32(h)
	}
	return ort.NewTensor(shape, data)
}

// checkOutputs rejects outputs that are not float32 or int64 tensors
// (int64 is how exported postprocessors emit class labels).
func checkOutputs(path string, outs []ort.InputOutputInfo) error {
	for _, o := range outs {
		if o.OrtValueType != ort.ONNXTypeTensor || (o.DataType != ort.TensorElementDataTypeFloat && o.DataType != ort.TensorElementDataTypeInt64) {
			return fmt.Errorf("infer: model %s output %s is %v %v: float32 (or int64 label) tensors expected", path, o.Name, o.OrtValueType, o.DataType)
		}
	}
	return nil
}

// viewOf returns an output's data as float32. An int64 output is
// converted into scratch, which is grown as needed and returned.
func viewOf(v ort.Value, scratch []float32) (tensorView, []float32, error) {
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		return tensorView{data: t.GetData(), shape: t.GetShape()}, scratch, nil
	case *ort.Tensor[int64]:
		src := t.GetData()
		if cap(scratch) < len(src) {
			scratch = make([]float32, len(src))
		}
		scratch = scratch[:len(src)]
		for i, x := range src {
			scratch[i] = float32(x)
		}
		return tensorView{data: scratch, shape: t.GetShape()}, scratch, nil
	}
	return tensorView{}, scratch, fmt.Errorf("is %T, not a float32 or int64 tensor", v)
}

// imageGeometry reads the image input's layout, size and batch: the
// declared shape wins; a dynamic side takes the export's metadata imgsz,
// else the format's default size; batch 0 means dynamic.
func imageGeometry(in ort.InputOutputInfo, spec *formatSpec, meta modelMeta) (l layout, w, h, batch int) {
	s := in.Dimensions
	l = spec.layout
	switch {
	case s[3] == 3 && s[1] != 3:
		l = layoutNHWC
	case s[1] == 3 && s[3] != 3:
		l = layoutNCHW
	}
	dh, dw := s[1], s[2]
	if l == layoutNCHW {
		dh, dw = s[2], s[3]
	}
	w, h = spec.size, spec.size
	if meta.imgW > 0 {
		w, h = meta.imgW, meta.imgH
	}
	if dw > 0 {
		w = int(dw)
	}
	if dh > 0 {
		h = int(dh)
	}
	if s[0] > 0 {
		batch = int(s[0])
	}
	return l, w, h, batch
}
