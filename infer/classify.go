package infer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// FormatClassify is the format name of image classifiers (secondary models
// of a cascade): one image input, one [N,C] score output.
const FormatClassify = "classify"

// Classifier output activations (ClassifierConfig.Activation).
const (
	// ActivationSoftmax turns logits into one distribution over the classes.
	ActivationSoftmax = "softmax"
	// ActivationSigmoid scores each class on its own (multi-label heads).
	ActivationSigmoid = "sigmoid"
	// ActivationNone takes the outputs as probabilities already.
	ActivationNone = "none"
)

// Classifier input normalisations (ClassifierConfig.Normalize).
const (
	// NormalizeUnit feeds pixel/255 (0..1).
	NormalizeUnit = "unit"
	// NormalizeImageNet feeds (pixel/255 - mean) / std with ImageNet's statistics.
	NormalizeImageNet = "imagenet"
	// NormalizeSigned feeds pixel/127.5 - 1 (-1..1).
	NormalizeSigned = "signed"
	// NormalizeRaw feeds pixels as they are (0..255).
	NormalizeRaw = "raw"
)

// Activations and Normalizations list the accepted values, for validation.
var (
	Activations    = []string{ActivationSoftmax, ActivationSigmoid, ActivationNone}
	Normalizations = []string{NormalizeUnit, NormalizeImageNet, NormalizeSigned, NormalizeRaw}
)

// ClassifierConfig selects and tunes an image classifier.
type ClassifierConfig struct {
	// Path is the ONNX model file.
	Path string
	// Labels is a file with one label per line, line i naming output i.
	// Its length must equal the model's class count.
	Labels string
	// Activation is softmax (default), sigmoid or none.
	Activation string
	// Normalize is unit (default), imagenet, signed or raw.
	Normalize string
	// BGR feeds OpenCV's channel order instead of RGB.
	BGR bool
	// Resize is stretch (default) or letterbox.
	Resize string
	// Size is the input side used when the model's H/W are dynamic (0: 224).
	Size int
	// Library, Providers and Threads are as in Config.
	Library   string
	Providers []string
	Threads   int
}

// Class is a classifier's best class for one image.
type Class struct {
	Index      int
	Label      string
	Confidence float32
}

// Classifier runs one image classifier. Preprocess and Classify may run
// concurrently with each other; concurrent calls of the same method are
// serialised.
type Classifier struct {
	cfg      ClassifierConfig
	spec     formatSpec
	labels   []string
	layout   layout
	inW, inH int
	// batch is the model's fixed batch size, or 0 when dynamic.
	batch    int
	classes  int // -1 until known when the output is dynamic
	inName   string
	outName  string
	provider string
	pre      preprocessor
	pool     *InputPool

	mu     sync.Mutex
	sess   *ort.DynamicAdvancedSession
	runs   map[int]*clsBuffers
	closed bool
}

type clsBuffers struct {
	input  *ort.Tensor[float32]
	output ort.Value
}

// OpenClassifier loads cfg.Path and checks that it is a classifier whose
// class count matches the labels file.
func OpenClassifier(cfg ClassifierConfig, log *slog.Logger) (*Classifier, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Activation == "" {
		cfg.Activation = ActivationSoftmax
	}
	if cfg.Normalize == "" {
		cfg.Normalize = NormalizeUnit
	}
	if cfg.Resize == "" {
		cfg.Resize = ResizeStretch
	}
	if cfg.Size <= 0 {
		cfg.Size = 224
	}
	if !slices.Contains(Activations, cfg.Activation) {
		return nil, fmt.Errorf("infer: classifier output %q is unknown: use %s", cfg.Activation, strings.Join(Activations, ", "))
	}
	if !slices.Contains(Normalizations, cfg.Normalize) {
		return nil, fmt.Errorf("infer: classifier normalize %q is unknown: use %s", cfg.Normalize, strings.Join(Normalizations, ", "))
	}
	if cfg.Labels == "" {
		return nil, fmt.Errorf("infer: classifier %s needs a labels file (one label per line, in output order)", cfg.Path)
	}
	if _, err := os.Stat(cfg.Path); err != nil {
		return nil, fmt.Errorf("infer: model %s: %w (check the model path)", cfg.Path, err)
	}
	if _, err := initRuntime(cfg.Library, log); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfo(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("infer: model %s is not a readable ONNX model (%v): re-export it", cfg.Path, err)
	}
	c := &Classifier{cfg: cfg, runs: map[int]*clsBuffers{}}
	if err := c.bind(ins, outs); err != nil {
		return nil, err
	}
	spec := &formatSpec{name: FormatClassify, labels: nil}
	if c.labels, err = loadLabels(spec, cfg.Labels); err != nil {
		return nil, err
	}
	if c.classes > 0 && c.classes != len(c.labels) {
		return nil, c.countError(c.classes)
	}
	c.spec = formatSpec{name: FormatClassify, layout: c.layout, bgr: cfg.BGR, resize: cfg.Resize}
	switch cfg.Normalize {
	case NormalizeUnit:
		c.spec.scale = 1.0 / 255
	case NormalizeImageNet:
		c.spec.scale, c.spec.mean, c.spec.std = 1.0/255, imagenetMean, imagenetStd
	case NormalizeSigned:
		c.spec.scale, c.spec.shift = 2.0/255, -1
	case NormalizeRaw:
		c.spec.scale = 1
	}
	dcfg := Config{Path: cfg.Path, Providers: cfg.Providers, Threads: cfg.Threads}
	c.sess, c.provider, err = newSession(&dcfg, []string{c.inName}, []string{c.outName}, log)
	if err != nil {
		return nil, err
	}
	c.pre.init(&c.spec)
	c.pool = NewInputPool(c.inW * c.inH * 3)
	log.Info("classifier ready", "model", cfg.Path, "classes", len(c.labels), "provider", c.provider,
		"input", fmt.Sprintf("%dx%d %s", c.inW, c.inH, c.layout), "output", cfg.Activation)
	return c, nil
}

func (c *Classifier) countError(outputs int) error {
	return fmt.Errorf("infer: classifier %s: labels file %s has %d labels but the model outputs %d classes: write one label per output class, in output order",
		c.cfg.Path, c.cfg.Labels, len(c.labels), outputs)
}

// bind checks the model's input (one float image, NCHW or NHWC) and output
// (one float [N,C] or [N,C,1,1]).
func (c *Classifier) bind(ins, outs []ort.InputOutputInfo) error {
	if len(ins) != 1 || len(ins[0].Dimensions) != 4 || ins[0].DataType != ort.TensorElementDataTypeFloat {
		return fmt.Errorf("infer: classifier %s: expected one float32 image input [N,3,H,W] or [N,H,W,3], found %s", c.cfg.Path, ioList(ins))
	}
	if len(outs) != 1 || outs[0].DataType != ort.TensorElementDataTypeFloat || len(outs[0].Dimensions) < 2 {
		return fmt.Errorf("infer: classifier %s: expected one float32 score output [N,C], found %s", c.cfg.Path, ioList(outs))
	}
	in := ins[0]
	s := in.Dimensions
	c.layout = layoutNCHW
	dh, dw := s[2], s[3]
	if s[3] == 3 && s[1] != 3 {
		c.layout, dh, dw = layoutNHWC, s[1], s[2]
	}
	c.inW, c.inH = c.cfg.Size, c.cfg.Size
	if dw > 0 {
		c.inW = int(dw)
	}
	if dh > 0 {
		c.inH = int(dh)
	}
	if s[0] > 0 {
		c.batch = int(s[0])
	}
	c.classes = 1
	for _, d := range outs[0].Dimensions[1:] {
		if d <= 0 {
			c.classes = -1
			break
		}
		c.classes *= int(d)
	}
	c.inName, c.outName = in.Name, outs[0].Name
	return nil
}

func ioList(ios []ort.InputOutputInfo) string {
	if len(ios) == 0 {
		return "none"
	}
	parts := make([]string, len(ios))
	for i, x := range ios {
		parts[i] = fmt.Sprintf("%s %s %v", x.Name, shapeString(x.Dimensions), x.DataType)
	}
	return strings.Join(parts, ", ")
}

// Labels returns the label list; Class.Index indexes it.
func (c *Classifier) Labels() []string { return c.labels }

// InputSize returns the model input size in pixels.
func (c *Classifier) InputSize() (w, h int) { return c.inW, c.inH }

// Provider returns the execution provider in use.
func (c *Classifier) Provider() string { return c.provider }

// NewInput returns an input from the classifier's pool; Release returns it.
func (c *Classifier) NewInput() *Input { return c.pool.Get() }

// Preprocess resizes a BGR 8-bit image into dst (from NewInput) in the
// model's layout and value range.
func (c *Classifier) Preprocess(img gocv.Mat, dst *Input) error {
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 {
		return fmt.Errorf("infer: classifier preprocess: want a non-empty 8-bit BGR image")
	}
	if dst == nil || len(dst.Data) != c.inW*c.inH*3 {
		return fmt.Errorf("infer: classifier preprocess: input buffer has the wrong size for model %s: get it from NewInput", c.cfg.Path)
	}
	p := &c.pre
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	t, w, h := fitTransform(img.Cols(), img.Rows(), c.inW, c.inH, c.cfg.Resize, false)
	gocv.Resize(img, &p.resized, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	px, err := p.resized.DataPtrUint8()
	if err != nil {
		return fmt.Errorf("infer: classifier preprocess: %w", err)
	}
	r := region{w: w, h: h, left: int(t.PadX), top: int(t.PadY), inW: c.inW, inH: c.inH}
	if c.layout == layoutNHWC {
		p.fillNHWC(dst.Data, px, r, 0)
	} else {
		p.fillNCHW(dst.Data, px, r, 0)
	}
	dst.Transform = t
	return nil
}

// Classify runs the model on inputs (from Preprocess) and returns each
// one's best class after the configured activation.
func (c *Classifier) Classify(ctx context.Context, inputs []*Input) ([]Class, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	out := make([]Class, 0, len(inputs))
	chunk := len(inputs)
	if c.batch > 0 {
		chunk = c.batch
	}
	for start := 0; start < len(inputs); start += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		part := inputs[start:min(start+chunk, len(inputs))]
		res, err := c.run(part)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

func (c *Classifier) run(part []*Input) ([]Class, error) {
	n := len(part)
	if c.batch > 0 {
		n = c.batch
	}
	rb := c.runs[n]
	if rb == nil {
		shape := ort.NewShape(int64(n), 3, int64(c.inH), int64(c.inW))
		if c.layout == layoutNHWC {
			shape = ort.NewShape(int64(n), int64(c.inH), int64(c.inW), 3)
		}
		t, err := ort.NewEmptyTensor[float32](shape)
		if err != nil {
			return nil, fmt.Errorf("infer: classifier %s: input tensor %v: %w", c.cfg.Path, shape, err)
		}
		rb = &clsBuffers{input: t}
		c.runs[n] = rb
	}
	size := c.inW * c.inH * 3
	data := rb.input.GetData()
	for i, in := range part {
		if in == nil || len(in.Data) != size {
			return nil, fmt.Errorf("infer: classifier %s: input %d has the wrong size (want %d values)", c.cfg.Path, i, size)
		}
		copy(data[i*size:(i+1)*size], in.Data)
	}
	clear(data[len(part)*size:])
	outs := []ort.Value{rb.output}
	if err := c.sess.Run([]ort.Value{rb.input}, outs); err != nil {
		return nil, fmt.Errorf("infer: classifier %s: run batch of %d: %w", c.cfg.Path, n, err)
	}
	rb.output = outs[0]
	t, ok := rb.output.(*ort.Tensor[float32])
	if !ok {
		return nil, fmt.Errorf("infer: classifier %s: output is %T, want float32", c.cfg.Path, rb.output)
	}
	scores := t.GetData()
	if len(scores)%n != 0 {
		return nil, fmt.Errorf("infer: classifier %s: output shape %v for a batch of %d", c.cfg.Path, t.GetShape(), n)
	}
	k := len(scores) / n
	if k != len(c.labels) {
		return nil, c.countError(k)
	}
	res := make([]Class, len(part))
	for i := range part {
		res[i] = best(scores[i*k:(i+1)*k], c.cfg.Activation, c.labels)
	}
	return res, nil
}

// best returns the highest-scoring class after the activation.
func best(s []float32, activation string, labels []string) Class {
	top := 0
	for i, v := range s {
		if v > s[top] {
			top = i
		}
	}
	conf := float64(s[top])
	switch activation {
	case ActivationSoftmax:
		var sum float64
		for _, v := range s {
			sum += math.Exp(float64(v - s[top]))
		}
		conf = 1 / sum
	case ActivationSigmoid:
		conf = 1 / (1 + math.Exp(-conf))
	}
	return Class{Index: top, Label: labelOf(labels, top), Confidence: float32(conf)}
}

// Close releases the session and its tensors; safe to call twice.
func (c *Classifier) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	for _, rb := range c.runs {
		errs = append(errs, rb.input.Destroy())
		if rb.output != nil {
			errs = append(errs, rb.output.Destroy())
		}
	}
	c.runs = nil
	errs = append(errs, c.sess.Destroy())
	c.pre.close()
	return errors.Join(errs...)
}
