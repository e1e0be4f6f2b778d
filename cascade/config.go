// Package cascade is the secondary stage: after the tracker, it runs
// secondary models on crops of tracked objects (a face detector inside each
// person, a colour classifier on each car) and attaches their answers to the
// tracks: attributes for classifiers, child detections for detectors. It
// owns the top-level `secondary:` key (docs/cascade.md).
package cascade

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/onnxgraph"
	"github.com/osprey-vision/osprey/stages"
)

// Config is the `secondary:` section: the models, run in the order listed.
type Config struct {
	Secondary []Model `yaml:"secondary"`
}

// Model is one secondary model. Zero values take the defaults documented
// on each field (list items are decoded without a defaults template).
type Model struct {
	// Name names the model in metrics and logs; for a classifier it is
	// the attribute's name (colour). Required, unique.
	Name string `yaml:"name"`
	// Path is the ONNX model file. Required.
	Path string `yaml:"path"`
	// Format is any detector format (auto by default: infer.Formats) or
	// classify.
	Format string `yaml:"format"`
	// Labels is the labels file (required for classify; for detectors as
	// in model.labels).
	Labels string `yaml:"labels"`
	// Output is a classifier's activation: softmax (default), sigmoid or none.
	Output string `yaml:"output"`
	// Normalize is a classifier's input range: unit (default), imagenet,
	// signed or raw.
	Normalize string `yaml:"normalize"`
	// Classes are the track labels the model applies to (person). Required.
	Classes []string `yaml:"classes"`
	// MinSize is the smallest track box side, in frame pixels, worth a crop
	// (default 32).
	MinSize int `yaml:"min_size"`
	// Padding grows the crop by this share of the box on each side
	// (default 0.1).
	Padding float64 `yaml:"padding"`
	// Reinfer is how long a track's answer stands before the model runs on
	// it again (default 1s; on the frame's media clock for files).
	Reinfer time.Duration `yaml:"reinfer"`
	// MaxCrops caps the crops per frame (default 8); the tracks waiting
	// longest go first.
	MaxCrops int `yaml:"max_crops"`
	// Confidence is the lowest score kept (default 0.5).
	Confidence float32 `yaml:"confidence"`
	// Providers and Threads are as in model:.
	Providers []string `yaml:"providers"`
	Threads   int      `yaml:"threads"`
}

// Defaults of Model's optional fields.
const (
	DefaultMinSize    = 32
	DefaultPadding    = 0.1
	DefaultReinfer    = time.Second
	DefaultMaxCrops   = 8
	DefaultConfidence = 0.5
	// MaxCropsLimit bounds max_crops.
	MaxCropsLimit = 256
)

// Defaults returns the empty section: no secondary models.
func Defaults() Config { return Config{} }

// withDefaults fills m's zero optional fields.
func (m *Model) withDefaults() {
	if m.Format == "" {
		m.Format = infer.FormatAuto
	}
	if m.MinSize == 0 {
		m.MinSize = DefaultMinSize
	}
	if m.Padding == 0 {
		m.Padding = DefaultPadding
	}
	if m.Reinfer == 0 {
		m.Reinfer = DefaultReinfer
	}
	if m.MaxCrops == 0 {
		m.MaxCrops = DefaultMaxCrops
	}
	if m.Confidence == 0 {
		m.Confidence = DefaultConfidence
	}
	if len(m.Providers) == 0 {
		m.Providers = []string{"cpu"}
	}
	if m.Format == infer.FormatClassify {
		if m.Output == "" {
			m.Output = infer.ActivationSoftmax
		}
		if m.Normalize == "" {
			m.Normalize = infer.NormalizeUnit
		}
	}
}

// formats lists what secondary.format accepts.
func formats() []string { return append(infer.Formats(), infer.FormatClassify) }

// Validate fills the defaults and reports every problem at once, each at
// its field's path (secondary[i].field).
func (c *Config) Validate(env stages.Env) error {
	var errs []error
	names := map[string]bool{}
	for i := range c.Secondary {
		m := &c.Secondary[i]
		m.withDefaults()
		at := func(field string) string { return fmt.Sprintf("secondary[%d].%s", i, field) }
		bad := func(field, format string, a ...any) { errs = append(errs, stages.Errorf(at(field), format, a...)) }
		switch {
		case m.Name == "":
			bad("name", "required: name the model (a classifier's name is its attribute, e.g. colour)")
		case names[m.Name]:
			bad("name", "%q is used by another secondary model: names must be unique", m.Name)
		}
		names[m.Name] = true
		if m.Path == "" {
			bad("path", "required: the ONNX model file")
		} else {
			path := resolve(env.Resolve, m.Path)
			if st, err := os.Stat(path); err != nil {
				bad("path", "model file %s not found: fix the path (relative paths are from the pipeline file's directory's parent or the working directory)", path)
			} else if st.IsDir() {
				bad("path", "%s is a directory, not an ONNX model file", path)
			}
		}
		if !slices.Contains(formats(), m.Format) {
			bad("format", "%q is unknown: use one of %s", m.Format, strings.Join(formats(), ", "))
		}
		if m.Format == infer.FormatClassify {
			if m.Labels == "" {
				bad("labels", "required for format classify: a file with one label per line, in the model's output order")
			} else if _, err := os.Stat(resolve(env.Resolve, m.Labels)); err != nil {
				bad("labels", "labels file %s not found: fix the path", resolve(env.Resolve, m.Labels))
			} else if err := checkLabelCount(resolve(env.Resolve, m.Path), resolve(env.Resolve, m.Labels)); err != nil {
				bad("labels", "%v", err)
			}
			if !slices.Contains(infer.Activations, m.Output) {
				bad("output", "%q is unknown: use %s", m.Output, strings.Join(infer.Activations, ", "))
			}
			if !slices.Contains(infer.Normalizations, m.Normalize) {
				bad("normalize", "%q is unknown: use %s", m.Normalize, strings.Join(infer.Normalizations, ", "))
			}
		} else {
			if m.Output != "" {
				bad("output", "applies to format classify only (this model is %s)", m.Format)
			}
			if m.Normalize != "" {
				bad("normalize", "applies to format classify only (this model is %s)", m.Format)
			}
		}
		if len(m.Classes) == 0 {
			bad("classes", "required: the track labels this model runs on, e.g. [person]")
		}
		if m.MinSize < 1 {
			bad("min_size", "must be >= 1 pixel, got %d", m.MinSize)
		}
		if m.Padding < 0 || m.Padding > 1 {
			bad("padding", "must be in [0,1] (a share of the box on each side), got %g", m.Padding)
		}
		if m.Reinfer < 0 {
			bad("reinfer", "must not be negative, got %s", m.Reinfer)
		}
		if m.MaxCrops < 1 || m.MaxCrops > MaxCropsLimit {
			bad("max_crops", "must be in 1..%d, got %d", MaxCropsLimit, m.MaxCrops)
		}
		if m.Confidence < 0 || m.Confidence > 1 {
			bad("confidence", "must be in [0,1], got %g", m.Confidence)
		}
		if m.Threads < 0 {
			bad("threads", "must be >= 0 (0: ONNX Runtime chooses), got %d", m.Threads)
		}
		for j, p := range m.Providers {
			if !slices.Contains(infer.Providers(), p) {
				bad(fmt.Sprintf("providers[%d]", j), "%q is unknown: use any of %s", p, strings.Join(infer.Providers(), ", "))
			}
		}
	}
	return errors.Join(errs...)
}

func resolve(fn func(string) string, path string) string {
	if fn == nil {
		return path
	}
	return fn(path)
}

// checkLabelCount compares a classifier's labels file with its one output's
// declared class count, reading the model without ONNX Runtime (so
// `pipeline validate` catches it). An unreadable model or a dynamic class
// count is left to OpenClassifier, which checks again when it opens.
func checkLabelCount(model, labels string) error {
	m, err := onnxgraph.Load(model)
	if err != nil || m.GetGraph() == nil || len(m.GetGraph().GetOutput()) != 1 {
		return nil
	}
	dims := m.GetGraph().GetOutput()[0].GetType().GetTensorType().GetShape().GetDim()
	if len(dims) < 2 {
		return nil
	}
	classes := 1
	for _, d := range dims[1:] {
		if d.GetDimValue() <= 0 {
			return nil
		}
		classes *= int(d.GetDimValue())
	}
	b, err := os.ReadFile(labels)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != classes {
		return fmt.Errorf("labels file %s has %d labels but the model %s outputs %d classes: write one label per output class, in output order", labels, len(lines), model, classes)
	}
	return nil
}
