package motion

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/goprocs"
	"github.com/osprey-vision/osprey/motion/gate"
	"github.com/osprey-vision/osprey/motion/region"
	"github.com/osprey-vision/osprey/object"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// StageConfig is the motion stage's configuration: the top-level `motion:`
// section, and `motion:` inside a streams[] item, which overrides it for
// that stream key by key.
type StageConfig struct {
	Motion Config `yaml:"motion"`
	// Streams holds each overriding stream's settings by stream ID (the
	// loader fills it from streams[].motion).
	Streams map[string]*Config `yaml:"-"`
}

// StageDefaults returns the stage's configuration with every default set.
func StageDefaults() StageConfig { return StageConfig{Motion: Defaults()} }

// OverrideFor implements stages.StreamOverrider: a stream's `motion:`
// decodes over a copy of the top-level section.
func (c *StageConfig) OverrideFor(_, stream string) any {
	if c.Streams == nil {
		c.Streams = map[string]*Config{}
	}
	cp := c.Motion
	cp.Masks = slices.Clone(c.Motion.Masks)
	if cp.Enabled != nil {
		// The decoder writes through a set pointer: the stream's `enabled`
		// must not change the top-level section's.
		on := *cp.Enabled
		cp.Enabled = &on
	}
	c.Streams[stream] = &cp
	return &cp
}

// For returns the settings that apply to stream.
func (c *StageConfig) For(stream string) Config {
	if s, ok := c.Streams[stream]; ok {
		return *s
	}
	return c.Motion
}

// Validate checks the top-level section and every stream's override.
func (c *StageConfig) Validate(env stages.Env) error {
	errs := []error{stages.Under("motion", c.Motion.Validate())}
	for i, id := range env.Streams {
		if s, ok := c.Streams[id]; ok {
			errs = append(errs, stages.Under(fmt.Sprintf("streams[%d].motion", i), s.Validate()))
		}
	}
	return errors.Join(errs...)
}

// Plugin registers the motion stage under `motion` (and streams[].motion).
// It runs ahead of the detector: on frames where nothing moves it tells the
// detector to skip, otherwise where to look (stages.Frame.Focus).
func Plugin() stages.StagePlugin {
	p := stages.NewStagePlugin("motion", []string{"motion"}, StageDefaults,
		func(c *StageConfig, env stages.Env) error { return c.Validate(env) },
		func(c *StageConfig, res *stages.Resources) ([]stages.StageSpec, error) {
			gated := c.gatedStreams(res)
			if len(gated) == 0 {
				return nil, nil
			}
			res.Log.Info("motion gating", "streams", gated, "default", "on for live cameras (rtsp, v4l2, gst), off for files and test://")
			st, err := newStage(*c, res)
			if err != nil {
				return nil, err
			}
			return []stages.StageSpec{{Name: "motion", Stage: st, StreamWorkers: streamWorkers()}}, nil
		})
	p.StreamKeys = []string{"motion"}
	return p
}

// Gated reports whether gating runs on stream, given whether its source
// is a live camera (the default: Config.On).
func (c *StageConfig) Gated(stream string, camera bool) bool { return c.For(stream).On(camera) }

// gatedStreams lists the pipeline's streams that gating runs on; with
// none the stage is left out, so a camera added later by a hot reload to a
// pipeline that gated nothing at start runs ungated until a restart.
func (c *StageConfig) gatedStreams(res *stages.Resources) []string {
	var on []string
	for _, id := range res.Streams {
		if c.Gated(id, isCamera(res, id)) {
			on = append(on, id)
		}
	}
	return on
}

func isCamera(res *stages.Resources, stream string) bool {
	return res.Camera != nil && res.Camera(stream)
}

// refreshPhase spreads the streams' refreshes over the refresh interval,
// the same for a stream on every run (a hash of its ID): cameras started
// together would otherwise all run the full frame on the same frame every
// refresh, and that burst set the p99 of a box full of idle cameras
// (docs/motion.md, "Cameras per box").
func refreshPhase(stream string, refresh time.Duration) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(stream))
	return time.Duration(uint64(h.Sum32()) % 1000 * uint64(refresh) / 1000)
}

// streamWorkers is how many streams' frames the stage works on at once:
// one goroutine for every camera was the bottleneck of a box full of idle
// cameras (docs/motion.md, "Cameras per box"), and streams share nothing
// but the metrics.
func streamWorkers() int { return min(goprocs.Cores(), 4) }

// Stage gates detection per stream: motion detection on a small grey copy
// of the frame, the gate's decision, and the regions to detect on. Process
// may run for several streams at once (StageSpec.StreamWorkers); a
// stream's state is only touched by the call working on its frame.
type Stage struct {
	cfg    StageConfig
	res    *stages.Resources
	mu     sync.Mutex
	stream map[string]*streamGate

	decisions *prometheus.CounterVec
	ratio     *prometheus.GaugeVec
	regions   prometheus.Histogram
}

// streamGate is one stream's motion state.
type streamGate struct {
	cfg    Config
	det    *Detector
	gate   *gate.Gate
	warned bool
	// missed is set when a frame the gate sent whole never reached the
	// detector (set from whichever goroutine releases the frame).
	missed   atomic.Bool
	tracks   []geom.Rect
	moving   int
	still    int
	stillBox []geom.Rect
}

func newStage(c StageConfig, res *stages.Resources) (*Stage, error) {
	s := &Stage{cfg: c, res: res, stream: map[string]*streamGate{},
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osprey_motion_decisions_total", Help: "Motion gate decisions per frame, by stream, mode (skip, regions, full_frame) and reason.",
		}, []string{"stream", "mode", "reason"}),
		ratio: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "osprey_motion_ratio", Help: "Share of a stream's frames with motion since start.",
		}, []string{"stream"}),
		regions: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "osprey_motion_regions", Help: "Detector regions per frame that ran on regions.",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16},
		}),
	}
	if res.Metrics != nil {
		for _, c := range []prometheus.Collector{s.decisions, s.ratio, s.regions} {
			if err := res.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("motion: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// state returns stream's motion state, made on its first frame.
func (s *Stage) state(stream string) (*streamGate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.stream[stream]; g != nil {
		return g, nil
	}
	cfg := s.cfg.For(stream)
	g := &streamGate{cfg: cfg}
	if cfg.On(isCamera(s.res, stream)) {
		det, err := NewDetector(cfg)
		if err != nil {
			return nil, err
		}
		g.det = det
		g.gate = gate.New(gate.Policy{Refresh: cfg.Refresh, StationaryRecheck: cfg.StationaryRecheck, Phase: refreshPhase(stream, cfg.Refresh)})
	}
	s.stream[stream] = g
	return g, nil
}

// Process implements stages.Stage: it sets f.Focus. A failure of motion
// detection never stops the stream: the frame runs the full frame, counted
// with reason motion_error.
func (s *Stage) Process(_ context.Context, f *stages.Frame) ([]*stages.Frame, error) {
	g, err := s.state(f.Stream)
	if err != nil {
		return nil, err
	}
	if g.det == nil {
		return []*stages.Frame{f}, nil
	}
	if g.missed.Swap(false) {
		g.gate.Missed()
	}
	res, derr := Result{}, error(nil)
	if img, err := picture.Mat(f); err != nil {
		derr = err
	} else {
		res, derr = g.det.Detect(img)
	}
	if derr != nil && !g.warned {
		g.warned = true
		s.res.Log.Warn("motion detection failed: running the full frame", "stream", f.Stream, "err", derr)
	}
	g.classify(s.res.Shared.Tracks(f.Stream), res.Boxes)
	dec := g.gate.Decide(gate.Input{
		Time: s.clock(f), Motion: len(res.Boxes) > 0, Calibrating: res.Calibrating, MotionFailed: derr != nil,
		MovingTracks: g.moving, StationaryTracks: g.still,
	})
	f.Focus = stages.Focus{Motion: slices.Clone(res.Boxes), Reason: string(dec.Reason)}
	mode := dec.Mode
	switch mode {
	case gate.Skip:
		f.Focus.Skip = true
	case gate.Regions:
		mode = s.plan(f, g, res.Boxes, dec)
	}
	if mode == gate.FullFrame {
		// A full-frame run dropped on the way (a newer frame took its
		// place, or it came too late) is asked for again on the next frame:
		// left alone, the first frame's detections would wait for the
		// refresh, and a light change's for the next one.
		f.OnRelease(func() {
			if !f.Inferred {
				g.missed.Store(true)
			}
		})
	}
	s.decisions.WithLabelValues(f.Stream, mode.String(), string(dec.Reason)).Inc()
	if st := g.det.Stats(); st.Frames > 0 {
		s.ratio.WithLabelValues(f.Stream).Set(float64(st.MotionFrames) / float64(st.Frames))
	}
	return []*stages.Frame{f}, nil
}

// plan turns a Regions decision into crops, or into a full-frame run when
// the crops would cover most of the frame, regions are off, or the model's
// input size is unknown or dynamic.
func (s *Stage) plan(f *stages.Frame, g *streamGate, motion []geom.Rect, dec gate.Decision) gate.Mode {
	w, h, ok := s.res.Shared.ModelInput()
	if !g.cfg.Regions.Enabled || !ok {
		g.gate.RanFullFrame(s.clock(f))
		return gate.FullFrame
	}
	if err := region.CheckModelInput(w, h); err != nil {
		if !g.warned {
			g.warned = true
			s.res.Log.Warn("motion: regions need a fixed model input size: running full frames", "stream", f.Stream, "err", err)
		}
		g.gate.RanFullFrame(s.clock(f))
		return gate.FullFrame
	}
	tracks := g.tracks
	if dec.Stationary {
		tracks = append(slices.Clone(tracks), g.stillBox...)
	}
	p := region.PlanRegions(g.cfg.Regions, motion, tracks, f.Width, f.Height, w, h)
	if p.FullFrame {
		g.gate.RanFullFrame(s.clock(f))
		return gate.FullFrame
	}
	if len(p.Regions) == 0 {
		f.Focus.Skip = true
		return gate.Skip
	}
	f.Focus.Regions = p.Regions
	s.regions.Observe(float64(len(p.Regions)))
	return gate.Regions
}

// clock is the time the gate's rules (refresh, stationary_recheck) run on:
// the capture time live, the file's own position offline, where frames are
// read as fast as the pipeline takes them and a 10 s refresh would
// otherwise come every 10 s of processing, not of video.
func (s *Stage) clock(f *stages.Frame) time.Time {
	if !s.res.Live && !f.Media.IsZero() {
		return f.Media
	}
	return f.Captured
}

// overlapShare is how much of a track's box a motion box must cover for
// the track to count as moving.
const overlapShare = 0.1

// classify splits the stream's tracks into moving (a motion box covers part
// of the box: pixels changed where the object is) and stationary. The
// tracker's own boxes are not used for this: between detections they move
// along the motion model's prediction, also for a person who stopped.
func (g *streamGate) classify(tracks []object.Track, motion []geom.Rect) {
	g.tracks, g.stillBox = g.tracks[:0], g.stillBox[:0]
	g.moving, g.still = 0, 0
	for _, t := range tracks {
		b := t.Box
		moving := false
		for _, m := range motion {
			if a := b.Area(); a > 0 && b.Intersect(m).Area() >= overlapShare*a {
				moving = true
				break
			}
		}
		if moving {
			g.moving++
			g.tracks = append(g.tracks, b)
			continue
		}
		g.still++
		g.stillBox = append(g.stillBox, b)
	}
}

// Close implements stages.Stage and releases every stream's buffers.
func (s *Stage) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, g := range s.stream {
		if g.det != nil {
			_ = g.det.Close()
		}
		delete(s.stream, id)
	}
	return nil
}

// ForgetStream implements stages.StreamForgetter: a removed stream's
// background is dropped (a stream of that ID added later starts fresh).
func (s *Stage) ForgetStream(stream string) []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.stream[stream]; g != nil {
		if g.det != nil {
			_ = g.det.Close()
		}
		delete(s.stream, stream)
	}
	return nil
}
