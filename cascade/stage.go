package cascade

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/object"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// Reasons a crop was not run (osprey_secondary_skipped_total{reason}).
const (
	// SkipLate: the crop would have finished after its frame's deadline.
	SkipLate = "late"
	// SkipCap: the frame had more due crops than max_crops.
	SkipCap = "cap"
)

// batchFrames is how many queued frames (across streams) the stage takes at
// once, so their crops share one inference run per model.
const batchFrames = 8

// Plugin registers the secondary stage under the `secondary` key. It must
// come after the track stage: it works on tracks.
func Plugin() stages.StagePlugin {
	return stages.NewStagePlugin("secondary", []string{"secondary"}, Defaults,
		func(c *Config, env stages.Env) error { return c.Validate(env) },
		func(c *Config, res *stages.Resources) ([]stages.StageSpec, error) {
			if len(c.Secondary) == 0 {
				return nil, nil
			}
			st, err := New(*c, res)
			if err != nil {
				return nil, err
			}
			// KeepStale: the frames carry the tracker's events, which must not
			// be dropped; a late frame gets no new crops instead (SkipLate).
			return []stages.StageSpec{{Name: "secondary", Stage: st, KeepStale: true,
				In: stages.Link{Size: 8, Policy: stages.Block}}}, nil
		})
}

// runner is one secondary model: it prepares crops and runs them in one batch.
type runner interface {
	newInput() *infer.Input
	preprocess(crop gocv.Mat, in *infer.Input) error
	// run returns, per input, the detections in crop pixels (detectors) or
	// one detection whose Label is the class (classifiers).
	run(ctx context.Context, ins []*infer.Input) ([][]infer.Detection, error)
	close() error
}

type detectorRunner struct{ d *infer.Detector }

func (r detectorRunner) newInput() *infer.Input { return r.d.NewInputPool().Get() }
func (r detectorRunner) preprocess(m gocv.Mat, in *infer.Input) error {
	return r.d.Preprocess(m, in)
}
func (r detectorRunner) run(ctx context.Context, ins []*infer.Input) ([][]infer.Detection, error) {
	return r.d.Detect(ctx, ins)
}
func (r detectorRunner) close() error { return r.d.Close() }

type classifierRunner struct {
	c    *infer.Classifier
	conf float32
}

func (r classifierRunner) newInput() *infer.Input { return r.c.NewInput() }
func (r classifierRunner) preprocess(m gocv.Mat, in *infer.Input) error {
	return r.c.Preprocess(m, in)
}
func (r classifierRunner) run(ctx context.Context, ins []*infer.Input) ([][]infer.Detection, error) {
	cls, err := r.c.Classify(ctx, ins)
	if err != nil {
		return nil, err
	}
	out := make([][]infer.Detection, len(cls))
	for i, c := range cls {
		if c.Confidence >= r.conf {
			out[i] = []infer.Detection{{ClassID: c.Index, Label: c.Label, Confidence: c.Confidence}}
		}
	}
	return out, nil
}
func (r classifierRunner) close() error { return r.c.Close() }

// model is one configured secondary model and its run-time estimate.
type model struct {
	cfg      Model
	classify bool
	run      runner
	pool     []*infer.Input // inputs reused across batches
	// perCrop is a moving estimate of one crop's inference time, for the
	// deadline check.
	perCrop time.Duration
}

// result is one model's latest answer about one track.
type result struct {
	at time.Time
	// attr is a classifier's answer (nil: none above confidence).
	attr *object.Attribute
	// children are a detector's boxes relative to the track box they were
	// found in (x, y, w, h as shares of that box), so they follow the
	// track between reinfers.
	children []object.Detection
}

type trackState struct {
	results []*result // per model; nil: never ran
}

// Stage runs the secondary models on crops of tracks and attaches their
// answers to f.Tracks (Attributes, Children) and to the frame's events.
type Stage struct {
	log     *slog.Logger
	models  []*model
	streams map[string]map[uint64]*trackState
	crops   *prometheus.CounterVec
	skipped *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	now     func() time.Time
	mu      sync.Mutex
	closed  bool
}

// New opens every model of c. On error, the models already opened are closed.
func New(c Config, res *stages.Resources) (*Stage, error) {
	s := &Stage{log: res.Log, streams: map[string]map[uint64]*trackState{}, now: time.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if res.Now != nil {
		s.now = res.Now
	}
	for i := range c.Secondary {
		m := c.Secondary[i]
		m.withDefaults()
		r, err := open(m, res)
		if err != nil {
			_ = s.Close(context.Background())
			return nil, stages.Errorf(fmt.Sprintf("secondary[%d].path", i), "%v", err)
		}
		s.models = append(s.models, &model{cfg: m, classify: m.Format == infer.FormatClassify, run: r})
	}
	s.crops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "osprey_secondary_crops_total", Help: "Track crops run through a secondary model, by model and stream.",
	}, []string{"model", "stream"})
	s.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "osprey_secondary_skipped_total", Help: "Due track crops a secondary model did not run, by model and reason (late: past the latency budget; cap: over max_crops).",
	}, []string{"model", "reason"})
	s.seconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "osprey_secondary_seconds", Help: "Inference time of one secondary batch, by model.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"model"})
	if res.Metrics != nil {
		for _, c := range []prometheus.Collector{s.crops, s.skipped, s.seconds} {
			if err := res.Metrics.Register(c); err != nil {
				_ = s.Close(context.Background())
				return nil, fmt.Errorf("secondary: metric: %w", err)
			}
		}
	}
	return s, nil
}

func open(m Model, res *stages.Resources) (runner, error) {
	path := m.Path
	if res.Resolve != nil {
		path = res.Resolve(path)
	}
	labels := m.Labels
	if labels != "" && labels != "coco" && res.Resolve != nil {
		labels = res.Resolve(labels)
	}
	if m.Format == infer.FormatClassify {
		c, err := infer.OpenClassifier(infer.ClassifierConfig{
			Path: path, Labels: labels, Activation: m.Output, Normalize: m.Normalize,
			Providers: m.Providers, Threads: m.Threads,
		}, res.Log)
		if err != nil {
			return nil, err
		}
		return classifierRunner{c: c, conf: m.Confidence}, nil
	}
	d, err := infer.Open(infer.Config{
		Path: path, Format: m.Format, Labels: labels, Providers: m.Providers, Threads: m.Threads,
		Confidence: m.Confidence,
	}, res.Log)
	if err != nil {
		return nil, err
	}
	return detectorRunner{d: d}, nil
}

// BatchSize implements stages.BatchStage: frames already queued (across
// streams) are taken together so their crops share inference runs.
func (s *Stage) BatchSize() int { return batchFrames }

// Process implements stages.Stage.
func (s *Stage) Process(ctx context.Context, f *stages.Frame) ([]*stages.Frame, error) {
	return s.ProcessBatch(ctx, []*stages.Frame{f})
}

// job is one crop to run.
type job struct {
	f     *stages.Frame
	track int // index in f.Tracks
	box   geom.Rect
}

// ProcessBatch implements stages.BatchStage. It never drops a frame: a
// model error is logged and the frames pass on with their earlier answers.
func (s *Stage) ProcessBatch(ctx context.Context, fs []*stages.Frame) ([]*stages.Frame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := map[string]*stages.Frame{} // each stream's latest frame in fs
	for _, f := range fs {
		// The tracker keeps the slice it returned; write on our own copy.
		f.Tracks = slices.Clone(f.Tracks)
		last[f.Stream] = f
	}
	for _, f := range fs {
		s.prune(f, last[f.Stream] == f)
	}
	start := time.Now()
	var planned time.Duration // estimated inference time of the crops planned so far
	for mi, m := range s.models {
		var jobs []job
		for _, f := range fs {
			jobs = s.plan(mi, m, f, jobs, start, &planned)
		}
		if len(jobs) > 0 {
			s.runJobs(ctx, mi, m, jobs)
		}
	}
	for _, f := range fs {
		s.attach(f)
	}
	return fs, nil
}

// prune gives the answers of tracks gone from f.Tracks to f's events
// (track.ended) and, when f is its stream's latest frame in the batch,
// forgets those tracks.
func (s *Stage) prune(f *stages.Frame, forget bool) {
	st := s.streams[f.Stream]
	if st == nil {
		return
	}
	live := make(map[uint64]bool, len(f.Tracks))
	for _, t := range f.Tracks {
		live[t.ID] = true
	}
	for i := range f.Events {
		e := &f.Events[i]
		if ts := st[e.TrackID]; e.TrackID != 0 && !live[e.TrackID] && ts != nil {
			s.attachEvent(e, ts, nil, f.Width, f.Height)
		}
	}
	if !forget {
		return
	}
	for id := range st {
		if !live[id] {
			delete(st, id)
		}
	}
}

// frameTime is the frame's time on its stream's clock: the media position
// for files, so offline runs reinfer as often as live ones would.
func frameTime(f *stages.Frame) time.Time {
	if !f.Media.IsZero() {
		return f.Media
	}
	return f.Captured
}

// plan appends f's due crops for model mi to jobs: tracks of the model's
// classes, matched on this frame and big enough, whose answer is older than
// reinfer; never-run tracks first, then the longest waiting, up to
// max_crops, and none that would finish past f's deadline.
func (s *Stage) plan(mi int, m *model, f *stages.Frame, jobs []job, start time.Time, planned *time.Duration) []job {
	if f.Image == nil || len(f.Tracks) == 0 {
		return jobs
	}
	now := frameTime(f)
	type cand struct {
		i     int
		last  time.Time
		never bool
		area  float64
	}
	var cands []cand
	st := s.streams[f.Stream]
	for i, t := range f.Tracks {
		if !t.Matched || !slices.Contains(m.cfg.Classes, t.Label) {
			continue
		}
		if t.Box.W < float64(m.cfg.MinSize) || t.Box.H < float64(m.cfg.MinSize) {
			continue
		}
		c := cand{i: i, never: true, area: t.Box.Area()}
		if ts := st[t.ID]; ts != nil && ts.results[mi] != nil {
			r := ts.results[mi]
			if now.Sub(r.at) < m.cfg.Reinfer {
				continue
			}
			c.never, c.last = false, r.at
		}
		cands = append(cands, c)
	}
	sort.SliceStable(cands, func(a, b int) bool {
		ca, cb := cands[a], cands[b]
		if ca.never != cb.never {
			return ca.never
		}
		if !ca.last.Equal(cb.last) {
			return ca.last.Before(cb.last)
		}
		return ca.area > cb.area
	})
	if len(cands) > m.cfg.MaxCrops {
		s.skipped.WithLabelValues(m.cfg.Name, SkipCap).Add(float64(len(cands) - m.cfg.MaxCrops))
		cands = cands[:m.cfg.MaxCrops]
	}
	for k, c := range cands {
		if !f.Deadline.IsZero() && start.Add(*planned+m.perCrop).After(f.Deadline) {
			s.skipped.WithLabelValues(m.cfg.Name, SkipLate).Add(float64(len(cands) - k))
			break
		}
		*planned += m.perCrop
		box := pad(f.Tracks[c.i].Box, m.cfg.Padding, f.Width, f.Height)
		if box.W < 1 || box.H < 1 {
			continue
		}
		jobs = append(jobs, job{f: f, track: c.i, box: box})
	}
	return jobs
}

// pad grows b by share of its size on each side, clamped to the frame.
func pad(b geom.Rect, share float64, w, h int) geom.Rect {
	g := geom.Rect{X: b.X - b.W*share, Y: b.Y - b.H*share, W: b.W * (1 + 2*share), H: b.H * (1 + 2*share)}
	return g.Clamp(float64(w), float64(h))
}

// runJobs crops, preprocesses and runs one model's jobs in one batch and
// stores the answers per track.
func (s *Stage) runJobs(ctx context.Context, mi int, m *model, jobs []job) {
	for len(m.pool) < len(jobs) {
		m.pool = append(m.pool, m.run.newInput())
	}
	ins := m.pool[:0:0]
	var ok []job
	for _, j := range jobs {
		mat, err := picture.Mat(j.f)
		if err != nil {
			continue
		}
		r := image.Rect(int(j.box.X), int(j.box.Y), int(j.box.X+j.box.W), int(j.box.Y+j.box.H)).Intersect(image.Rect(0, 0, mat.Cols(), mat.Rows()))
		if r.Dx() < 1 || r.Dy() < 1 {
			continue
		}
		crop := mat.Region(r)
		in := m.pool[len(ins)]
		err = m.run.preprocess(crop, in)
		crop.Close()
		if err != nil {
			s.log.Warn("secondary: preprocess failed", "model", m.cfg.Name, "err", err)
			continue
		}
		j.box = geom.Rect{X: float64(r.Min.X), Y: float64(r.Min.Y), W: float64(r.Dx()), H: float64(r.Dy())}
		ins = append(ins, in)
		ok = append(ok, j)
	}
	if len(ins) == 0 {
		return
	}
	t0 := time.Now()
	out, err := m.run.run(ctx, ins)
	took := time.Since(t0)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("secondary: model failed; tracks keep their earlier answers", "model", m.cfg.Name, "err", err)
		}
		return
	}
	s.seconds.WithLabelValues(m.cfg.Name).Observe(took.Seconds())
	per := took / time.Duration(len(ins))
	if m.perCrop == 0 {
		m.perCrop = per
	} else {
		m.perCrop = (m.perCrop*7 + per) / 8
	}
	for k, j := range ok {
		f := j.f
		t := f.Tracks[j.track]
		s.crops.WithLabelValues(m.cfg.Name, f.Stream).Inc()
		r := &result{at: frameTime(f)}
		if m.classify {
			if len(out[k]) > 0 {
				d := out[k][0]
				r.attr = &object.Attribute{Name: m.cfg.Name, Value: d.Label, Confidence: d.Confidence}
			}
		} else {
			for _, d := range out[k] {
				// Crop pixels -> frame pixels -> shares of the track box.
				fb := geom.Rect{X: d.Box.X + j.box.X, Y: d.Box.Y + j.box.Y, W: d.Box.W, H: d.Box.H}
				d.Box = relative(fb, t.Box)
				d.Keypoints = nil
				r.children = append(r.children, d)
			}
		}
		st := s.streams[f.Stream]
		if st == nil {
			st = map[uint64]*trackState{}
			s.streams[f.Stream] = st
		}
		ts := st[t.ID]
		if ts == nil {
			ts = &trackState{results: make([]*result, len(s.models))}
			st[t.ID] = ts
		}
		ts.results[mi] = r
	}
}

// relative expresses b in shares of ref (0,0 its top-left, 1,1 its
// bottom-right).
func relative(b, ref geom.Rect) geom.Rect {
	return geom.Rect{X: (b.X - ref.X) / ref.W, Y: (b.Y - ref.Y) / ref.H, W: b.W / ref.W, H: b.H / ref.H}
}

// absolute maps a box in shares of ref back to pixels.
func absolute(r, ref geom.Rect) geom.Rect {
	return geom.Rect{X: ref.X + r.X*ref.W, Y: ref.Y + r.Y*ref.H, W: r.W * ref.W, H: r.H * ref.H}
}

// attach copies each track's stored answers onto f.Tracks (children placed
// on the track's current box) and onto the events of those tracks.
func (s *Stage) attach(f *stages.Frame) {
	st := s.streams[f.Stream]
	if len(st) == 0 {
		return
	}
	boxes := map[uint64]geom.Rect{}
	for i := range f.Tracks {
		t := &f.Tracks[i]
		ts := st[t.ID]
		if ts == nil {
			continue
		}
		t.Attributes, t.Children = s.answers(ts, t.Box)
		boxes[t.ID] = t.Box
	}
	for i := range f.Events {
		e := &f.Events[i]
		if b, ok := boxes[e.TrackID]; ok && e.TrackID != 0 {
			s.attachEvent(e, st[e.TrackID], &b, f.Width, f.Height)
		}
	}
}

// answers returns a track's attributes and children (in frame pixels on
// box), in model order.
func (s *Stage) answers(ts *trackState, box geom.Rect) (attrs []object.Attribute, children []object.Detection) {
	for _, r := range ts.results {
		if r == nil {
			continue
		}
		if r.attr != nil {
			attrs = append(attrs, *r.attr)
		}
		for _, c := range r.children {
			c.Box = absolute(c.Box, box)
			children = append(children, c)
		}
	}
	return attrs, children
}

// attachEvent sets e's attributes and children (normalised to the frame).
// box is the track's current box; nil uses the event's own box.
func (s *Stage) attachEvent(e *event.Event, ts *trackState, box *geom.Rect, w, h int) {
	if w <= 0 || h <= 0 {
		return
	}
	var ref geom.Rect
	switch {
	case box != nil:
		ref = *box
	case e.Box != nil:
		ref = geom.Rect{X: e.Box.X * float64(w), Y: e.Box.Y * float64(h), W: e.Box.W * float64(w), H: e.Box.H * float64(h)}
	}
	attrs, children := s.answers(ts, ref)
	e.Attributes = attrs
	e.Children = nil
	if ref.W <= 0 || ref.H <= 0 {
		return
	}
	for mi, r := range ts.results {
		if r == nil {
			continue
		}
		for range r.children {
			c := children[0]
			children = children[1:]
			e.Children = append(e.Children, event.Child{Model: s.models[mi].cfg.Name, Label: c.Label, Confidence: c.Confidence,
				Box: geom.Rect{X: c.Box.X / float64(w), Y: c.Box.Y / float64(h), W: c.Box.W / float64(w), H: c.Box.H / float64(h)}})
		}
	}
}

// ForgetStream implements stages.StreamForgetter: a stream removed by a
// reload drops its tracks' answers.
func (s *Stage) ForgetStream(stream string) []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, stream)
	return nil
}

// Close implements stages.Stage: it closes every model. Safe to call twice.
func (s *Stage) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, m := range s.models {
		for _, in := range m.pool {
			in.Release()
		}
		errs = append(errs, m.run.close())
	}
	return errors.Join(errs...)
}
