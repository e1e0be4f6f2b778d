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
			return s, nil
		})
	p.Link = &stages.Link{Size: 2, Policy: stages.Latest}
	return p
}

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
