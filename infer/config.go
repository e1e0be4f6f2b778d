package infer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Config selects and tunes a detector. It is the Go API; pipeline files
// reach it through the detect stage's `model:` and `detect:` sections
// (stages/builtin.DetectConfig). The zero value of an optional field
// means "the format's or the package's default" (see the field comments).
type Config struct {
	// Path is the ONNX model file.
	Path string
	// Format names the model's output convention: auto (or "": detect it
	// from the model's metadata and outputs), ssd, yolov8 (also v11),
	// yolov5, yolox, yolo-end2end (YOLOv10, YOLO26), detr (RT-DETR,
	// RF-DETR, D-FINE, DEIM) or blazeface.
	Format string
	// Labels is "coco" (the format's COCO list: 80 classes for YOLO, the
	// 90-id map for SSD), "" (the model's metadata names, else the format's
	// default) or a file with one label per line, line i naming class
	// index i.
	Labels string
	// Library is the ONNX Runtime shared library. "" tries $ORT_LIB, then
	// third_party/lib/libonnxruntime.so under the module root or next to the
	// executable, then the system library paths.
	Library string
	// Providers are execution providers tried in order (tensorrt, cuda,
	// openvino, coreml, cpu); the first that works is used. Empty means cpu.
	Providers []string
	// Threads and InterOpThreads size ONNX Runtime's thread pools; 0 lets
	// ONNX Runtime choose.
	Threads        int
	InterOpThreads int
	// Spin lets ONNX Runtime's idle pool threads busy-wait for the next run
	// (its default). Off here: in a pipeline the spinning takes CPU from the
	// stages running beside inference.
	Spin bool
	// Confidence is the minimum score kept (0 means 0.5); IoU is the
	// non-maximum-suppression overlap threshold (0 means 0.45).
	Confidence float32
	IoU        float32
	// Classes keeps only these labels; empty keeps every class.
	Classes []string
	// Batch is the largest batch the caller will pass to Detect (0 means 1).
	// Models with a fixed batch dimension run in chunks of that size.
	Batch int
	// Resize is "letterbox" (keep aspect ratio, pad) or "stretch"; "" uses
	// the format's default.
	Resize string
	// NMS runs non-maximum suppression on the NMS-free formats too
	// (yolo-end2end, detr); the others always run it.
	NMS bool
	// AgnosticNMS suppresses overlapping boxes whatever their classes
	// (default: only boxes of one class suppress each other). TF.js
	// COCO-SSD's detect() works this way, with IoU 0.5.
	AgnosticNMS bool
	// DETR settles what a detr model's outputs leave open.
	DETR DETROptions
}

// Defaults used when the corresponding Config field is zero.
const (
	DefaultConfidence = 0.5
	DefaultIoU        = 0.45
)

// DefaultConfig returns what a model section starts from before its YAML
// is decoded: format auto, the CPU provider and the default thresholds.
func DefaultConfig() Config {
	return Config{Format: FormatAuto, Providers: []string{"cpu"}, Confidence: DefaultConfidence, IoU: DefaultIoU}
}

// Known execution providers, in the order a typical edge box prefers them.
var knownProviders = []string{"tensorrt", "cuda", "openvino", "coreml", "cpu"}

// Validate reports every problem with c at once, naming the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("infer: "+format, args...)) }
	if c.Path == "" {
		bad("model.path is empty: give the ONNX model file")
	}
	if _, ok := formats[c.Format]; !ok && c.Format != "" && c.Format != FormatAuto {
		bad("model.format %q is unknown: use one of %s", c.Format, strings.Join(Formats(), ", "))
	}
	if err := c.DETR.validate(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range c.Providers {
		if !slices.Contains(knownProviders, p) {
			bad("model.providers: %q is unknown: use any of %s", p, strings.Join(knownProviders, ", "))
		}
	}
	if c.Threads < 0 {
		bad("model.threads must be >= 0, got %d", c.Threads)
	}
	if c.InterOpThreads < 0 {
		bad("model.inter_op_threads must be >= 0, got %d", c.InterOpThreads)
	}
	if c.Confidence < 0 || c.Confidence > 1 {
		bad("detect.confidence must be in [0,1], got %g", c.Confidence)
	}
	if c.IoU < 0 || c.IoU > 1 {
		bad("detect.iou must be in [0,1], got %g", c.IoU)
	}
	if c.Batch < 0 {
		bad("detect.batch must be >= 0, got %d", c.Batch)
	}
	switch c.Resize {
	case "", ResizeLetterbox, ResizeStretch:
	default:
		bad("model.resize %q is unknown: use letterbox or stretch", c.Resize)
	}
	return errors.Join(errs...)
}

func (c *Config) confidence() float32 {
	if c.Confidence == 0 {
		return DefaultConfidence
	}
	return c.Confidence
}

func (c *Config) iou() float32 {
	if c.IoU == 0 {
		return DefaultIoU
	}
	return c.IoU
}
