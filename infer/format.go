package infer

import (
	"maps"
	"slices"
)

// Resize modes for Config.Resize.
const (
	// ResizeLetterbox keeps the aspect ratio and pads the rest of the input.
	ResizeLetterbox = "letterbox"
	// ResizeStretch scales each axis independently to fill the input.
	ResizeStretch = "stretch"
)

// layout is the order of a model input's dimensions.
type layout int

const (
	layoutNHWC layout = iota
	layoutNCHW
)

func (l layout) String() string {
	if l == layoutNCHW {
		return "NCHW"
	}
	return "NHWC"
}

// formatSpec is what a model format implies about its input and output.
type formatSpec struct {
	name string
	// layout is the default input layout; the model's input shape wins when
	// it is unambiguous (a 3 in the channel position).
	layout layout
	// Input value = pixel (0..255) * scale + shift.
	scale, shift float32
	// bgr keeps OpenCV's channel order (YOLOX's own preprocessing does).
	bgr bool
	// resize is the default Resize mode.
	resize string
	// padTopLeft puts the image in the top-left corner of the letterbox
	// instead of centring it (YOLOX pads only right and bottom).
	padTopLeft bool
	// padValue fills the letterbox border (0..255, all channels).
	padValue float64
	// size is the input side used when the model's input H/W is dynamic.
	size int
	// labels is the default label list; coco the list "coco" means.
	labels, coco []string
	// newDecoder builds the format's output decoder.
	newDecoder func() decoder
	// nmsFree formats emit one box per object; NMS runs only when
	// Config.NMS asks for it.
	nmsFree bool
	// mean and std, when std is set, normalise each channel (RGB order)
	// after scale and shift: (v - mean) / std.
	mean, std [3]float32
}

// imagenetMean and imagenetStd are the per-channel statistics ImageNet
// backbones are trained with (RF-DETR and the original DETR use them).
var (
	imagenetMean = [3]float32{0.485, 0.456, 0.406}
	imagenetStd  = [3]float32{0.229, 0.224, 0.225}
)

var formats = map[string]*formatSpec{
	"ssd": {
		name: "ssd", layout: layoutNHWC, scale: 1, shift: 0,
		resize: ResizeStretch, size: 300,
		labels: COCO90, coco: COCO90,
		newDecoder: func() decoder { return &ssdDecoder{} },
	},
	"yolov8": {
		name: "yolov8", layout: layoutNCHW, scale: 1.0 / 255, shift: 0,
		resize: ResizeLetterbox, padValue: 114, size: 640,
		labels: COCO80, coco: COCO80,
		newDecoder: func() decoder { return &yolov8Decoder{} },
	},
	"yolov5": {
		name: "yolov5", layout: layoutNCHW, scale: 1.0 / 255, shift: 0,
		resize: ResizeLetterbox, padValue: 114, size: 640,
		labels: COCO80, coco: COCO80,
		newDecoder: func() decoder { return &yolov5Decoder{} },
	},
	"yolox": {
		name: "yolox", layout: layoutNCHW, scale: 1, shift: 0, bgr: true,
		resize: ResizeLetterbox, padTopLeft: true, padValue: 114, size: 640,
		labels: COCO80, coco: COCO80,
		newDecoder: func() decoder { return &yoloxDecoder{} },
	},
	"yolo-end2end": {
		name: "yolo-end2end", layout: layoutNCHW, scale: 1.0 / 255, shift: 0,
		resize: ResizeLetterbox, padValue: 114, size: 640,
		labels: COCO80, coco: COCO80, nmsFree: true,
		newDecoder: func() decoder { return &end2endDecoder{} },
	},
	// detr: RT-DETR, D-FINE and DEIM train and export on a plain stretch
	// to a square input scaled to 0..1; RF-DETR adds ImageNet mean/std
	// (see DETROptions.Normalize).
	"detr": {
		name: "detr", layout: layoutNCHW, scale: 1.0 / 255, shift: 0,
		resize: ResizeStretch, padValue: 114, size: 640,
		labels: COCO80, coco: COCO80, nmsFree: true,
		newDecoder: func() decoder { return &detrDecoder{} },
	},
	"blazeface": {
		name: "blazeface", layout: layoutNHWC, scale: 2.0 / 255, shift: -1,
		resize: ResizeLetterbox, padValue: 0, size: 128,
		labels:     []string{"face"},
		newDecoder: func() decoder { return &blazefaceDecoder{} },
	},
}

// Formats lists the model formats Open understands, auto first.
func Formats() []string { return append([]string{FormatAuto}, formatNames()...) }

func formatNames() []string { return slices.Sorted(maps.Keys(formats)) }

// pixelRange reports whether the format feeds pixels as they are (0..255,
// no mean/std), so a uint8 model input can take them without conversion.
func (s *formatSpec) pixelRange() bool {
	return s.scale == 1 && s.shift == 0 && s.std[0] == 0
}
