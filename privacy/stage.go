package privacy

import (
	"context"
	"fmt"
	"image"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// Plugin registers the privacy stage under `privacy` (and
// streams[].privacy). It runs after every analytics stage, so the detector,
// the tracker and a cascade see the original picture and the sinks a
// redacted copy. It builds nothing when no stream redacts anything.
func Plugin() stages.StagePlugin {
	p := stages.NewStagePlugin("privacy", []string{"privacy"}, StageDefaults,
		func(c *StageConfig, env stages.Env) error { return c.Validate(env) },
		func(c *StageConfig, res *stages.Resources) ([]stages.StageSpec, error) {
			if !c.Active() {
				return nil, nil
			}
			st, err := NewStage(*c, res.Metrics)
			if err != nil {
				return nil, err
			}
			// A recorder must encode these streams' redacted frames, not copy
			// the camera's own stream.
			res.Shared.ProvideRedaction(func(stream string) bool { return st.cfg.For(stream).Active() })
			// Cheap, and every frame that reached it must reach the sinks
			// redacted: a late frame is not dropped here.
			return []stages.StageSpec{{Name: "privacy", Stage: st, KeepStale: true}}, nil
		})
	p.StreamKeys = []string{"privacy"}
	return p
}

// Stage redacts each frame's picture for the sinks. It implements
// stages.Stage; Process runs on one goroutine.
type Stage struct {
	cfg     StageConfig
	red     *Redactor
	regions *prometheus.CounterVec
	boxes   []image.Rectangle
}

// NewStage returns a privacy stage for c; reg (may be nil) takes its metrics.
func NewStage(c StageConfig, reg prometheus.Registerer) (*Stage, error) {
	s := &Stage{cfg: c, red: NewRedactor(),
		regions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osprey_privacy_regions_total", Help: "Regions redacted in the pictures sent to sinks, by stream and kind (box, mask).",
		}, []string{"stream", "kind"}),
	}
	if reg != nil {
		if err := reg.Register(s.regions); err != nil {
			s.red.Close()
			return nil, fmt.Errorf("privacy: metrics: %w", err)
		}
	}
	return s, nil
}

// Process replaces f's picture by a redacted copy when anything on it is to
// be redacted; the original stays alive, unseen by the sinks, until the
// frame's last Release (a stage before may still read it) and is closed then.
func (s *Stage) Process(_ context.Context, f *stages.Frame) ([]*stages.Frame, error) {
	c := s.cfg.For(f.Stream)
	if !c.Active() || f.Image == nil {
		return []*stages.Frame{f}, nil
	}
	src, err := picture.Mat(f)
	if err != nil {
		// No OpenCV picture: no sink can encode it either.
		return []*stages.Frame{f}, nil
	}
	s.boxes = Regions(f, c, s.boxes[:0])
	if len(s.boxes) == 0 && len(c.Masks) == 0 {
		return []*stages.Frame{f}, nil
	}
	out := src.Clone()
	s.red.Boxes(&out, c.Method, s.boxes)
	s.red.Polygons(&out, c.Method, maskPolygons(c.Masks, out.Cols(), out.Rows()))
	orig := f.Image
	f.Image = picture.New(out)
	f.OnRelease(func() { _ = orig.Close() })
	if len(s.boxes) > 0 {
		s.regions.WithLabelValues(f.Stream, "box").Add(float64(len(s.boxes)))
	}
	if len(c.Masks) > 0 {
		s.regions.WithLabelValues(f.Stream, "mask").Add(float64(len(c.Masks)))
	}
	return []*stages.Frame{f}, nil
}

// Close frees the stage's scratch.
func (s *Stage) Close(context.Context) error {
	if s.red != nil {
		s.red.Close()
		s.red = nil
	}
	return nil
}

// Regions appends to dst the boxes of f that c redacts, in picture pixels
// with c's padding: detections, tracks and tracks' children whose label c
// lists. A track's box covers frames the detector skipped.
func Regions(f *stages.Frame, c Config, dst []image.Rectangle) []image.Rectangle {
	if len(c.Redact) == 0 {
		return dst
	}
	start := len(dst)
	add := func(b image.Rectangle) {
		// A track's box mostly repeats its detection's: redact their union
		// once instead of the same face twice.
		for i := start; i < len(dst); i++ {
			if overlap(dst[i], b) > 0.5 {
				dst[i] = dst[i].Union(b)
				return
			}
		}
		dst = append(dst, b)
	}
	for _, d := range f.Detections {
		if slices.Contains(c.Redact, d.Label) {
			add(pad(d.Box, c.Padding))
		}
	}
	for _, t := range f.Tracks {
		if slices.Contains(c.Redact, t.Label) {
			add(pad(t.Box, c.Padding))
		}
		for _, ch := range t.Children {
			if slices.Contains(c.Redact, ch.Label) {
				add(pad(ch.Box, c.Padding))
			}
		}
	}
	return dst
}

// overlap is the intersection over union of a and b.
func overlap(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	i := float64(in.Dx() * in.Dy())
	return i / (float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - i)
}
