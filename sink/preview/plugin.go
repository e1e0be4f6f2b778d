package preview

import (
	"github.com/osprey-vision/osprey/stages"
)

// Plugin registers the preview under `sinks.preview`. It keeps only the
// newest frames in front of it: a slow encoder drops preview frames, never
// the pipeline's.
func Plugin() stages.SinkPlugin {
	p := stages.NewSinkPlugin("preview", Defaults,
		func(c *Config, _ stages.Env) error { return c.Validate() },
		func(c *Config, res *stages.Resources) (stages.Sink, error) {
			s, err := New(*c, res.Log)
			if err != nil {
				return nil, err
			}
			// Before any stream exists: each stream's encode loop reads it
			// as it starts.
			s.background = res.Background
			s.overlays = res.Shared.Overlays
			for _, id := range res.Streams {
				if err := s.RefreshOverlays(id); err != nil {
					return nil, err
				}
			}
			if res.Stats != nil {
				s.SetStatsProvider(res.Stats)
			}
			s.SetSaturation(res.Saturated)
			if s.review != nil {
				return reviewing{s}, nil
			}
			return s, nil
		})
	p.Link = &stages.Link{Size: 2, Policy: stages.Latest}
	return p
}

// reviewing is the sink with the review page on: an EventSink, so the
// runner hands it every event (a blocking queue, and the events that belong
// to no frame, such as clip.ready). Write never blocks on encoding, so the
// blocking queue does not slow the pipeline: the newest-frame slot in front
// of each encoder still drops frames.
type reviewing struct{ *Sink }

// EventsOnly reports that the preview wants every frame, not only those
// with events.
func (reviewing) EventsOnly() bool { return false }

// RefreshOverlays redraws stream's zones and lines from the pipeline's
// overlay provider (after a hot reload changed them). Without a provider it
// does nothing.
func (s *Sink) RefreshOverlays(stream string) error {
	if s.overlays == nil {
		return nil
	}
	ov := s.overlays(stream)
	zones := make([]Zone, 0, len(ov.Zones))
	for _, z := range ov.Zones {
		zones = append(zones, Zone{Name: z.Name, Polygon: z.Polygon})
	}
	lines := make([]Line, 0, len(ov.Lines))
	for _, l := range ov.Lines {
		lines = append(lines, Line{Name: l.Name, From: l.From, To: l.To})
	}
	return s.SetOverlays(stream, zones, lines)
}
