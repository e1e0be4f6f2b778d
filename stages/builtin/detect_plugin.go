package builtin

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/governor"
	"github.com/osprey-vision/osprey/internal/sched"
	"github.com/osprey-vision/osprey/stages"
)

// DetectConfig is the detect stage's configuration: the `model:` and
// `detect:` sections of a pipeline file.
type DetectConfig struct {
	Model  ModelConfig   `yaml:"model"`
	Detect DetectOptions `yaml:"detect"`
}

// ModelConfig selects and configures the detector model (`model:`).
type ModelConfig struct {
	// Path is the ONNX model file (relative paths: see stages.Env.Resolve).
	Path string `yaml:"path"`
	// Format is the model's output convention (infer.Formats); auto, the
	// default, reads it from the model's metadata and outputs.
	Format string `yaml:"format"`
	// Labels is "coco", "" (the format's default) or a labels file.
	Labels string `yaml:"labels"`
	// Library is the ONNX Runtime shared library ("" finds it).
	Library string `yaml:"library"`
	// Providers are execution providers tried in order.
	Providers []string `yaml:"providers"`
	// Threads and InterOpThreads size ONNX Runtime's pools per session.
	Threads        int `yaml:"threads"`
	InterOpThreads int `yaml:"inter_op_threads"`
	// Spin keeps ONNX Runtime's idle threads busy-waiting (off by default).
	Spin bool `yaml:"spin"`
	// Resize is letterbox or stretch ("" is the format's default).
	Resize string `yaml:"resize"`
	// DETR settles what a detr model's outputs leave open (docs/detect.md).
	DETR infer.DETROptions `yaml:"detr"`
}

// DetectOptions configures when and how the detector runs (`detect:`).
type DetectOptions struct {
	Confidence float32  `yaml:"confidence"`
	IoU        float32  `yaml:"iou"`
	Classes    []string `yaml:"classes"`
	// NMS runs non-maximum suppression on NMS-free formats too
	// (yolo-end2end, detr), which skip it by default.
	NMS bool `yaml:"nms"`
	// AgnosticNMS suppresses overlapping boxes across classes (TF.js
	// COCO-SSD's detect() does, with iou 0.5).
	AgnosticNMS bool `yaml:"agnostic_nms"`
	// Every runs inference on one frame in N per stream; the others only go
	// through the tracker's prediction, so tracks stay smooth at camera rate.
	Every int `yaml:"every"`
	// MaxFPS caps inference per stream (0: no cap); skipped frames are predicted.
	MaxFPS float64 `yaml:"max_fps"`
	// Batch is the most frames (across streams) in one inference run.
	Batch int `yaml:"batch"`
	// BatchTimeout is how long to wait to fill a batch.
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	// Workers is how many detector sessions run batches in parallel (each
	// with model.threads threads); output keeps input order.
	Workers int `yaml:"workers"`
	// CPUs, when set, confines the detector's threads (the stage's own and
	// ONNX Runtime's pool) to these CPUs ("0-1"); Nice, when set, is their
	// nice value (below the pipeline's own needs CAP_SYS_NICE). Either one
	// runs each detector session on a thread of its own.
	CPUs string `yaml:"cpus"`
	Nice *int   `yaml:"nice"`
	// Governor, when set, steps quality down (model variant, detect.every)
	// when inference latency exceeds its target, and back up with headroom.
	Governor *governor.Config `yaml:"governor"`
}

// MaxBatch and MaxWorkers bound detect.batch and detect.workers.
const (
	MaxBatch   = 64
	MaxWorkers = 16
)

// DetectDefaults returns the detect stage's configuration with every default set.
func DetectDefaults() DetectConfig {
	return DetectConfig{
		Model:  ModelConfig{Format: infer.FormatAuto, Providers: []string{"cpu"}},
		Detect: DetectOptions{Confidence: infer.DefaultConfidence, IoU: infer.DefaultIoU, Every: 1, Batch: 1, BatchTimeout: 5 * time.Millisecond, Workers: 1},
	}
}

// InferConfig returns the detector configuration, with the model path
// resolved by resolve (nil: as written).
func (c *DetectConfig) InferConfig(resolve func(string) string) infer.Config {
	m, d := c.Model, c.Detect
	path := m.Path
	if resolve != nil {
		path = resolve(path)
	}
	return infer.Config{
		Path: path, Format: m.Format, Labels: m.Labels, Library: m.Library,
		Providers: m.Providers, Threads: m.Threads, InterOpThreads: m.InterOpThreads, Spin: m.Spin,
		Confidence: d.Confidence, IoU: d.IoU, Classes: d.Classes, Batch: d.Batch, Resize: m.Resize,
		NMS: d.NMS, AgnosticNMS: d.AgnosticNMS, DETR: m.DETR,
	}
}

// ThreadPolicy returns the scheduling of the detector's threads (the zero
// Policy when detect.cpus and detect.nice are unset; the config was
// validated, so the CPU list parses).
func (d DetectOptions) ThreadPolicy() sched.Policy {
	cpus, _ := sched.ParseCPUs(d.CPUs)
	return sched.Policy{Nice: d.Nice, CPUs: cpus}
}

// Validate reports every problem at once, each at its field's path.
func (c *DetectConfig) Validate(env stages.Env) error {
	var errs []error
	bad := func(path, format string, a ...any) { errs = append(errs, stages.Errorf(path, format, a...)) }
	m, d := c.Model, c.Detect
	if m.Path == "" {
		bad("model.path", "required: the ONNX model file (scripts/setup.sh makes models/ssd_mobilenet_v2_coco.onnx)")
	} else {
		path := m.Path
		if env.Resolve != nil {
			path = env.Resolve(path)
		}
		if st, err := os.Stat(path); err != nil {
			bad("model.path", "model file %s not found: run scripts/setup.sh to import the demo model, or fix the path (relative paths are from the pipeline file's directory's parent or the working directory)", path)
		} else if st.IsDir() {
			bad("model.path", "%s is a directory, not an ONNX model file", path)
		}
	}
	if m.Format != "" && !slices.Contains(infer.Formats(), m.Format) {
		bad("model.format", "%q is unknown: use one of %s", m.Format, strings.Join(infer.Formats(), ", "))
	}
	for i, p := range m.Providers {
		if !slices.Contains(infer.Providers(), p) {
			bad(fmt.Sprintf("model.providers[%d]", i), "%q is unknown: use any of %s", p, strings.Join(infer.Providers(), ", "))
		}
	}
	if m.Threads < 0 {
		bad("model.threads", "must be >= 0 (0: ONNX Runtime chooses), got %d", m.Threads)
	}
	if m.InterOpThreads < 0 {
		bad("model.inter_op_threads", "must be >= 0, got %d", m.InterOpThreads)
	}
	switch m.Resize {
	case "", infer.ResizeLetterbox, infer.ResizeStretch:
	default:
		bad("model.resize", "%q is unknown: use letterbox or stretch", m.Resize)
	}
	choices, values := infer.DETRChoices(), m.DETR.Values()
	for _, key := range slices.Sorted(maps.Keys(choices)) {
		if v := values[key]; v != "" && !slices.Contains(choices[key], v) {
			bad("model.detr."+key, "%q is unknown: use %s (or leave it empty to infer it from the outputs)", v, strings.Join(choices[key], ", "))
		}
	}
	if d.Confidence < 0 || d.Confidence > 1 {
		bad("detect.confidence", "must be in [0,1], got %g", d.Confidence)
	}
	if d.IoU < 0 || d.IoU > 1 {
		bad("detect.iou", "must be in [0,1], got %g", d.IoU)
	}
	if d.Every < 1 {
		bad("detect.every", "must be >= 1 (1 = every frame), got %d", d.Every)
	}
	if d.MaxFPS < 0 {
		bad("detect.max_fps", "must not be negative, got %g", d.MaxFPS)
	}
	if d.Batch < 1 || d.Batch > MaxBatch {
		bad("detect.batch", "must be in 1..%d, got %d", MaxBatch, d.Batch)
	}
	if d.BatchTimeout < 0 {
		bad("detect.batch_timeout", "must not be negative, got %s", d.BatchTimeout)
	}
	if d.Workers < 1 || d.Workers > MaxWorkers {
		bad("detect.workers", "must be in 1..%d, got %d", MaxWorkers, d.Workers)
	}
	if _, err := sched.ParseAllowed(d.CPUs); err != nil {
		bad("detect.cpus", "%v", err)
	}
	if n := d.Nice; n != nil && (*n < -20 || *n > 19) {
		bad("detect.nice", "must be in -20..19 (below 0 needs CAP_SYS_NICE), got %d", *n)
	}
	if g := d.Governor; g != nil {
		errs = append(errs, stages.Under("detect.governor", g.Validate()))
		if d.Workers > 1 {
			bad("detect.governor", "needs detect.workers: 1 (the governor drives one detector session)")
		}
	}
	return errors.Join(errs...)
}

// DetectPlugin registers the preprocess and detect stages under the `model`
// and `detect` keys.
func DetectPlugin() stages.StagePlugin {
	return stages.NewStagePlugin("detect", []string{"model", "detect"}, DetectDefaults,
		func(c *DetectConfig, env stages.Env) error { return c.Validate(env) },
		buildDetect)
}

// buildDetect opens one detector session per worker and returns the
// preprocess and detect stages. The detect stage (and each replica) closes
// its session.
func buildDetect(c *DetectConfig, res *stages.Resources) (_ []stages.StageSpec, err error) {
	icfg := c.InferConfig(res.Resolve)
	var opened []Detector
	defer func() {
		if err != nil {
			for _, d := range opened {
				_ = d.Close()
			}
		}
	}()
	policy := c.Detect.ThreadPolicy()
	// open opens one session, on a thread of its own when detect.cpus or
	// detect.nice ask for one; the governor's variants share its thread.
	open := func() (*infer.Detector, Detector, *sched.Worker, error) {
		w, err := newDetectThread(policy)
		if err != nil {
			return nil, nil, nil, err
		}
		d, run, err := openOn(w, true, icfg, res.Log)
		if err == nil {
			opened = append(opened, run)
		}
		return d, run, w, err
	}
	det, run, thread, err := open()
	if err != nil {
		return nil, err
	}
	sampling := NewSampling(c.Detect.Every, c.Detect.MaxFPS)
	inputs := NewInputs()
	detect := NewDetect(run, c.Detect.Batch, inputs, res.Log)
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "osprey_inferences_total", Help: "Inputs run through the detector, by stream: whole frames, or motion regions (one per region).",
	}, []string{"stream"})
	if res.Metrics != nil {
		if err := res.Metrics.Register(runs); err != nil {
			return nil, fmt.Errorf("detect: inference metric: %w", err)
		}
	}
	detect.runs = runs
	res.Shared.ProvideModelInput(det.InputSize)
	if gc := c.Detect.Governor; gc != nil {
		level := prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "osprey_governor_level", Help: "Current latency-governor level (0 = best quality).",
			ConstLabels: prometheus.Labels{"stage": "detect"},
		})
		if res.Metrics != nil {
			if err := res.Metrics.Register(level); err != nil {
				return nil, fmt.Errorf("detect: governor metric: %w", err)
			}
		}
		detect.Govern(governor.New(*gc), sampling, func(path string, threads int) (Detector, error) {
			vc := icfg
			if path != "" {
				vc.Path = res.Resolve(path)
			}
			if threads > 0 {
				vc.Threads = threads
			}
			_, v, err := openOn(thread, false, vc, res.Log)
			return v, err
		}, func(l int, _ governor.Level) { level.Set(float64(l)) })
	}
	var replicas []stages.Stage
	for i := 1; i < c.Detect.Workers; i++ {
		_, d, _, err := open()
		if err != nil {
			return nil, err
		}
		r := NewDetect(d, c.Detect.Batch, inputs, res.Log)
		r.runs = runs
		replicas = append(replicas, r)
	}
	return []stages.StageSpec{
		{Name: "preprocess", Stage: NewPreprocess(det, sampling, inputs)},
		{Name: "detect", Stage: detect, Replicas: replicas, BatchTimeout: c.Detect.BatchTimeout},
	}, nil
}
