// Package infer runs object detectors with ONNX Runtime: it opens a model
// with the first execution provider that works, preprocesses frames
// (resize or letterbox, colour order, value range, layout), runs batches in
// one call and decodes each model format's outputs (SSD, YOLOv8/v11,
// YOLOv5, YOLOX, BlazeFace, and the NMS-free YOLOv10/YOLO26 end-to-end and
// DETR family) into Detections in source pixels, with class-aware
// non-maximum suppression where the format needs it. The format can be
// detected from the model's metadata and outputs (model.format auto).
package infer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/internal/goprocs"
)

// ErrClosed is returned by a Detector used after Close.
var ErrClosed = errors.New("infer: detector is closed")

// Detector runs one model. Preprocess and Detect may run concurrently with
// each other (each has its own scratch and lock); concurrent calls of the
// same method are serialised.
type Detector struct {
	cfg      Config
	spec     *formatSpec
	dec      decoder
	reason   string // why this format (auto-detection or model.format)
	log      *slog.Logger
	provider string
	labels   []string
	params   decodeParams
	layout   layout
	// u8 is true when the model's image input is uint8 (Input.U8).
	u8     bool
	resize string
	// tfResize is the model's declared TensorFlow resize (MetaResize); nil
	// means OpenCV's.
	tfResize *TFBilinear
	inNames  []string
	// sizes is the orig_target_sizes input of DETR exports ("" Name: none).
	sizes    ort.InputOutputInfo
	outNames []string
	// modelBatch is the model's fixed batch size, or 0 when dynamic.
	modelBatch int

	pre preprocessor
	// imgPool serves DetectImage.
	imgPool *InputPool

	mu      sync.Mutex // guards the fields below: one Run at a time
	sess    *ort.DynamicAdvancedSession
	runOpts *ort.RunOptions // lets a cancelled ctx stop a Run in flight
	runs    map[int]*runBuffers
	cands   []candidate
	closed  bool
}

// runBuffers are the tensors of one batch size, reused across Runs.
type runBuffers struct {
	// input is inputF or inputU8, whichever the model takes.
	input   ort.Value
	inputF  *ort.Tensor[float32]
	inputU8 *ort.Tensor[uint8]
	// sizes feeds Detector.sizes; nil when the model has no such input.
	sizes ort.Value
	// scratch holds int64 outputs converted to float32, per output.
	scratch [][]float32
	// outputs start nil; ONNX Runtime allocates them on the first Run
	// (their shapes may depend on the input) and later Runs write into them.
	outputs []ort.Value
	views   []tensorView
}

// Open loads cfg.Path with ONNX Runtime and checks that the model's inputs
// and outputs fit cfg.Format, detecting the format first when it is auto
// or empty. log receives the provider choice and fallbacks; nil means
// slog.Default().
func Open(cfg Config, log *slog.Logger) (*Detector, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.Path); err != nil {
		return nil, fmt.Errorf("infer: model %s: %w (check model.path; the COCO SSD comes from `pipeline model import`)", cfg.Path, err)
	}
	if _, err := initRuntime(cfg.Library, log); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfo(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("infer: model %s is not a readable ONNX model (%v): re-export or re-import it", cfg.Path, err)
	}
	d := &Detector{cfg: cfg, log: log, runs: map[int]*runBuffers{}}
	if err := d.bindModel(ins, outs); err != nil { // autoformat.go
		return nil, err
	}
	cfg = d.cfg // with the detected format
	if n := d.dec.classes(); n > 0 && n != len(d.labels) {
		log.Warn("model class count differs from its label list; extra classes are named \"class N\"", "model", cfg.Path, "classes", n, "labels", len(d.labels))
	}
	if err := d.bindClasses(cfg.Classes); err != nil {
		return nil, err
	}
	d.params.conf = cfg.confidence()
	d.resize = cfg.Resize
	if d.resize == "" {
		d.resize = d.spec.resize
	}
	d.sess, d.provider, err = newSession(&d.cfg, d.inNames, d.outNames, log)
	if err != nil {
		return nil, err
	}
	if d.runOpts, err = ort.NewRunOptions(); err != nil {
		d.sess.Destroy()
		return nil, fmt.Errorf("infer: model %s: run options: %w", cfg.Path, err)
	}
	d.pre.init(d.spec)
	if d.tfResize != nil {
		d.pre.tf = &tfResizer{k: *d.tfResize}
	}
	d.imgPool = d.NewInputPool()
	log.Info("detector ready", "model", cfg.Path, "format", cfg.Format, "reason", d.reason, "provider", d.provider,
		"input", fmt.Sprintf("%dx%d %s", d.params.inW, d.params.inH, d.layout), "batch", d.modelBatch, "threads", cfg.Threads, "resize", d.ResizeKernel())
	return d, nil
}

// bindClasses turns Config.Classes into a class mask.
func (d *Detector) bindClasses(names []string) error {
	if len(names) == 0 {
		return nil
	}
	d.params.keep = make([]bool, len(d.labels))
	var unknown []string
	for _, n := range names {
		i := slices.Index(d.labels, n)
		if i < 0 || n == "N/A" {
			unknown = append(unknown, fmt.Sprintf("%q", n))
			continue
		}
		d.params.keep[i] = true
	}
	for i, k := range d.params.keep {
		if k {
			d.params.kept = append(d.params.kept, i)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("infer: detect.classes: %s not in the %s labels (e.g. %s)", strings.Join(unknown, ", "), d.cfg.Format, strings.Join(d.labels[:min(5, len(d.labels))], ", "))
	}
	return nil
}

// InputSize returns the model input size in pixels.
func (d *Detector) InputSize() (w, h int) { return d.params.inW, d.params.inH }

// ResizeKernel names how Preprocess resizes: "opencv" (INTER_LINEAR) or
// the TensorFlow resize the model declares (MetaResize).
func (d *Detector) ResizeKernel() string {
	if d.tfResize != nil {
		return d.tfResize.String()
	}
	return "opencv"
}

// Provider returns the execution provider in use (e.g. "cpu").
func (d *Detector) Provider() string { return d.provider }

// Format returns the model format name (the detected one under auto).
func (d *Detector) Format() string { return d.cfg.Format }

// FormatReason says why the format applies: what auto-detection
// recognised, or that model.format chose it.
func (d *Detector) FormatReason() string { return d.reason }

// Labels returns the label list; Detection.ClassID indexes it.
func (d *Detector) Labels() []string { return d.labels }

// NewInputPool returns a pool of Inputs sized for this model.
func (d *Detector) NewInputPool() *InputPool {
	if d.u8 {
		return NewInputPoolU8(d.params.inW * d.params.inH * 3)
	}
	return NewInputPool(d.params.inW * d.params.inH * 3)
}

// fits reports whether in is an input of this model's type and size.
func (d *Detector) fits(in *Input) bool {
	want := d.params.inW * d.params.inH * 3
	if d.u8 {
		return len(in.U8) == want && in.Data == nil
	}
	return len(in.Data) == want && in.U8 == nil
}

// Detect runs the model on inputs (each from Preprocess) and returns each
// input's detections in its source pixels. A dynamic-batch model gets all
// inputs in one Run; a fixed-batch model runs them in chunks of its batch
// size. The inputs are not released.
func (d *Detector) Detect(ctx context.Context, inputs []*Input) ([][]Detection, error) {
	if len(inputs) == 0 {
		return nil, nil
	}
	for i, in := range inputs {
		if in == nil || !d.fits(in) {
			return nil, fmt.Errorf("infer: input %d has the wrong size or type for model %s (want %d values): get inputs from this detector's NewInputPool", i, d.cfg.Path, d.params.inW*d.params.inH*3)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	out := make([][]Detection, len(inputs))
	chunk := len(inputs)
	if d.modelBatch > 0 {
		chunk = d.modelBatch
	}
	for start := 0; start < len(inputs); start += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		part := inputs[start:min(start+chunk, len(inputs))]
		if err := d.run(ctx, part, out[start:start+len(part)]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// run runs one batch (len(part) <= the model batch) and decodes it into out.
// Cancelling ctx terminates the Run in flight, so a shutdown never waits for
// a slow or stuck inference.
func (d *Detector) run(ctx context.Context, part []*Input, out [][]Detection) error {
	n := len(part)
	if d.modelBatch > 0 {
		n = d.modelBatch
	}
	rb, err := d.buffers(n)
	if err != nil {
		return err
	}
	size := d.params.inW * d.params.inH * 3
	if d.u8 {
		data := rb.inputU8.GetData()
		for i, in := range part {
			copy(data[i*size:(i+1)*size], in.U8)
		}
		clear(data[len(part)*size:]) // padding of a short chunk
	} else {
		data := rb.inputF.GetData()
		for i, in := range part {
			copy(data[i*size:(i+1)*size], in.Data)
		}
		clear(data[len(part)*size:])
	}
	ins := []ort.Value{rb.input}
	if rb.sizes != nil {
		ins = append(ins, rb.sizes)
	}
	stop := context.AfterFunc(ctx, func() { _ = d.runOpts.Terminate() })
	// Let the goroutines this one readied (the stage before, handing over
	// the frame) run on a spare P first: a P with an empty queue is left
	// alone by the runtime for the whole of the long cgo call
	// (internal/goprocs). Without spare Ps the yield only delays the run.
	if goprocs.Spare() {
		runtime.Gosched()
	}
	err = d.sess.RunWithOptions(ins, rb.outputs, d.runOpts)
	if !stop() {
		// The terminate flag stays set until cleared; clear it for the next Run.
		_ = d.runOpts.UnsetTerminate()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
	}
	if err != nil {
		return fmt.Errorf("infer: model %s: run batch of %d: %w", d.cfg.Path, n, err)
	}
	for i, o := range rb.outputs {
		if rb.views[i], rb.scratch[i], err = viewOf(o, rb.scratch[i]); err != nil {
			return fmt.Errorf("infer: model %s output %s %v", d.cfg.Path, d.outNames[i], err)
		}
		if len(rb.views[i].shape) == 0 || rb.views[i].shape[0] != int64(n) {
			return fmt.Errorf("infer: model %s output %s has shape %v for a batch of %d", d.cfg.Path, d.outNames[i], rb.views[i].shape, n)
		}
	}
	for i, in := range part {
		d.cands = d.dec.decode(rb.views, i, &d.params, d.cands[:0])
		kept := d.suppress(d.cands) // end2end.go
		dets := make([]Detection, 0, len(kept))
		for _, c := range kept {
			det := Detection{
				ClassID:    c.class,
				Label:      labelOf(d.labels, c.class),
				Confidence: c.score,
				Box:        in.Transform.ToSource(c.box),
			}
			if det.Box.Area() == 0 {
				continue // entirely in the letterbox padding
			}
			for k := range c.kps {
				c.kps[k] = in.Transform.PointToSource(c.kps[k])
			}
			det.Keypoints = c.kps
			dets = append(dets, det)
		}
		out[i] = dets
	}
	return nil
}

// buffers returns (creating once) the tensors for a batch of n.
func (d *Detector) buffers(n int) (*runBuffers, error) {
	if rb, ok := d.runs[n]; ok {
		return rb, nil
	}
	var shape ort.Shape
	if d.layout == layoutNCHW {
		shape = ort.NewShape(int64(n), 3, int64(d.params.inH), int64(d.params.inW))
	} else {
		shape = ort.NewShape(int64(n), int64(d.params.inH), int64(d.params.inW), 3)
	}
	rb := &runBuffers{}
	var err error
	if d.u8 {
		rb.inputU8, err = ort.NewEmptyTensor[uint8](shape)
		rb.input = rb.inputU8
	} else {
		rb.inputF, err = ort.NewEmptyTensor[float32](shape)
		rb.input = rb.inputF
	}
	if err != nil {
		return nil, fmt.Errorf("infer: model %s: input tensor %v: %w", d.cfg.Path, shape, err)
	}
	t := rb.input
	*rb = runBuffers{input: rb.input, inputF: rb.inputF, inputU8: rb.inputU8, outputs: make([]ort.Value, len(d.outNames)), views: make([]tensorView, len(d.outNames)), scratch: make([][]float32, len(d.outNames))}
	if d.sizes.Name != "" {
		if rb.sizes, err = sizesTensor(d.sizes, n, d.params.inW, d.params.inH); err != nil {
			_ = t.Destroy()
			return nil, fmt.Errorf("infer: model %s: input %s: %w", d.cfg.Path, d.sizes.Name, err)
		}
	}
	d.runs[n] = rb
	return rb, nil
}

// DetectImage preprocesses one BGR image and detects objects in it. It is
// a convenience for tools and tests; pipelines batch with Preprocess and
// Detect.
func (d *Detector) DetectImage(img gocv.Mat) ([]Detection, error) {
	in := d.imgPool.Get()
	defer in.Release()
	if err := d.Preprocess(img, in); err != nil {
		return nil, err
	}
	out, err := d.Detect(context.Background(), []*Input{in})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// Close releases the session, its tensors and the scratch Mats. It is safe
// to call twice; later calls of other methods return ErrClosed.
func (d *Detector) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, rb := range d.runs {
		errs = append(errs, rb.input.Destroy())
		if rb.sizes != nil {
			errs = append(errs, rb.sizes.Destroy())
		}
		for _, o := range rb.outputs {
			if o != nil {
				errs = append(errs, o.Destroy())
			}
		}
	}
	d.runs = nil
	errs = append(errs, d.sess.Destroy(), d.runOpts.Destroy())
	d.pre.close()
	return errors.Join(errs...)
}
