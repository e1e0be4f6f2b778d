package builtin

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/governor"
	"github.com/osprey-vision/osprey/motion/region"
	"github.com/osprey-vision/osprey/stages"
)

// Detector is what the detect stage needs from a model.
type Detector interface {
	Detect(ctx context.Context, inputs []*infer.Input) ([][]infer.Detection, error)
	Close() error
}

// Detect runs the detector on batches of frames (across streams). Frames
// without Input (skipped by sampling) pass through untouched.
type Detect struct {
	det    Detector
	batch  int
	inputs *Inputs
	log    *slog.Logger

	// Governor, when set, watches inference latency and switches levels.
	gov      *governor.Governor
	variants map[variant]Detector // opened lazily; nil: could not be opened
	open     func(path string, threads int) (Detector, error)
	sampling *Sampling
	onLevel  func(level int, l governor.Level)

	in     []*infer.Input
	frames []*stages.Frame
	fis    []*frameInputs
	// runs counts inputs run through the model per stream
	// (osprey_inferences_total); nil when not exported.
	runs *prometheus.CounterVec
}

// NewDetect returns the detect stage running det on up to batch frames at
// once, on the inputs the preprocess stage left in inputs.
func NewDetect(det Detector, batch int, inputs *Inputs, log *slog.Logger) *Detect {
	return &Detect{det: det, batch: max(batch, 1), inputs: inputs, log: log, variants: map[variant]Detector{}}
}

// variant is a governor level's session: a model path ("" for the
// configured model) and an intra-op thread count (0 for the configured one).
type variant struct {
	path    string
	threads int
}

// Govern makes the stage step through g's levels as latency demands: a level
// may name a model variant and a thread count (opened with open on first
// use; "" and 0 keep the configured ones) and a detect.every (applied to
// sampling). onLevel, if set, is told of every change.
func (d *Detect) Govern(g *governor.Governor, sampling *Sampling, open func(path string, threads int) (Detector, error), onLevel func(int, governor.Level)) {
	d.gov, d.sampling, d.open, d.onLevel = g, sampling, open, onLevel
}

// BatchSize implements stages.BatchStage.
func (d *Detect) BatchSize() int { return d.batch }

// Process implements stages.Stage.
func (d *Detect) Process(ctx context.Context, f *stages.Frame) ([]*stages.Frame, error) {
	return d.ProcessBatch(ctx, []*stages.Frame{f})
}

// ProcessBatch implements stages.BatchStage: one inference run for every
// input of every frame in fs (a whole frame, or each of its regions).
// Detections in regions are mapped back to the frame and de-duplicated
// across regions.
func (d *Detect) ProcessBatch(ctx context.Context, fs []*stages.Frame) ([]*stages.Frame, error) {
	d.in, d.frames, d.fis = d.in[:0], d.frames[:0], d.fis[:0]
	for _, f := range fs {
		if fi := d.inputs.take(f); fi != nil {
			d.in = append(d.in, fi.ins...)
			d.frames = append(d.frames, f)
			d.fis = append(d.fis, fi)
		}
	}
	defer func() {
		for _, fi := range d.fis {
			fi.release()
		}
	}()
	if len(d.in) == 0 {
		return fs, nil
	}
	det := d.current()
	t0 := time.Now()
	dets, err := det.Detect(ctx, d.in)
	if err != nil {
		// The runner drops (and releases) the batch on error.
		return nil, fmt.Errorf("detect: %w", err)
	}
	d.observe(time.Since(t0), len(d.in))
	k := 0
	for i, f := range d.frames {
		fi := d.fis[i]
		n := len(fi.ins)
		if d.runs != nil {
			d.runs.WithLabelValues(f.Stream).Add(float64(n))
		}
		if len(fi.regions) == 0 {
			f.Detections = dets[k]
		} else {
			f.Detections = mergeRegions(fi.regions, dets[k:k+n], f.Width, f.Height)
		}
		f.Inferred = true
		k += n
	}
	return fs, nil
}

// mergeRegions maps each region's detections (in region pixels) to frame
// pixels and keeps one detection per object: a box a region edge cut is
// joined with, or dropped for, the same object seen whole in another region.
func mergeRegions(regions []geom.Rect, perRegion [][]infer.Detection, w, h int) []infer.Detection {
	var found []region.Found
	var src []infer.Detection
	for ri, ds := range perRegion {
		for _, dt := range ds {
			found = append(found, region.Found{Region: ri, Box: dt.Box, Class: dt.ClassID, Score: float64(dt.Confidence)})
			dt.Keypoints = slices.Clone(dt.Keypoints)
			for j := range dt.Keypoints {
				dt.Keypoints[j].X += regions[ri].X
				dt.Keypoints[j].Y += regions[ri].Y
			}
			src = append(src, dt)
		}
	}
	kept := region.Merge(regions, float64(w), float64(h), found, region.DefaultMergeOptions())
	out := make([]infer.Detection, 0, len(kept))
	for _, k := range kept {
		dt := src[k.Index]
		dt.Box = k.Box
		out = append(out, dt)
	}
	return out
}

// current returns the detector for the governor's level (the base one when
// ungoverned or when the variant cannot be opened).
func (d *Detect) current() Detector {
	if d.gov == nil {
		return d.det
	}
	l := d.gov.Current()
	key := variant{l.Variant, l.Threads}
	if key == (variant{}) {
		return d.det
	}
	if v, ok := d.variants[key]; ok {
		if v == nil {
			return d.det
		}
		return v
	}
	v, err := d.open(key.path, key.threads)
	if err != nil {
		d.log.Warn("governor: cannot open model variant, keeping the base model", "variant", key.path, "threads", key.threads, "err", err)
		d.variants[key] = nil
		return d.det
	}
	d.variants[key] = v
	return v
}

// observe feeds the governor the per-frame inference latency.
func (d *Detect) observe(took time.Duration, n int) {
	if d.gov == nil {
		return
	}
	// The governor's target is per frame: a batch's run time is shared.
	level, changed := d.gov.Observe(took/time.Duration(n), time.Now())
	if !changed {
		return
	}
	l := d.gov.Current()
	every := max(l.Every, 1)
	d.sampling.Every.Store(int32(every))
	d.log.Info("governor changed level", "level", level, "name", l.Name, "variant", l.Variant, "threads", l.Threads, "every", every, "p99", d.gov.LastP99())
	if d.onLevel != nil {
		d.onLevel(level, l)
	}
}

// Close implements stages.Stage and closes every detector it opened.
func (d *Detect) Close(context.Context) error {
	for _, v := range d.variants {
		if v != nil {
			_ = v.Close()
		}
	}
	return d.det.Close()
}

// Provider names the execution provider the base detector runs on, when
// the detector reports one.
func (d *Detect) Provider() string {
	if p, ok := d.det.(interface{ Provider() string }); ok {
		return p.Provider()
	}
	return ""
}

// GovernorState reports the governor's level, its name and the last p99 it
// measured; ok is false when the stage is not governed.
func (d *Detect) GovernorState() (level int, name string, p99 time.Duration, ok bool) {
	if d.gov == nil {
		return 0, "", 0, false
	}
	return d.gov.Level(), d.gov.Current().Name, d.gov.LastP99(), true
}
