package builtin

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/osprey-vision/osprey/analytics"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/track"
)

// TrackConfig is the track stage's configuration: the `track:`, `zones:`,
// `lines:` and `analytics:` sections of a pipeline file.
type TrackConfig struct {
	Track     track.Config     `yaml:"track"`
	Zones     []analytics.Zone `yaml:"zones"`
	Lines     []analytics.Line `yaml:"lines"`
	Analytics AnalyticsOptions `yaml:"analytics"`
}

// AnalyticsOptions tunes zone and line analytics (`analytics:`).
type AnalyticsOptions struct {
	Anchor   string  `yaml:"anchor"`
	LineBand float64 `yaml:"line_band"`
}

// TrackDefaults returns the track stage's configuration with every default set.
func TrackDefaults() TrackConfig {
	return TrackConfig{
		Track:     track.DefaultConfig(),
		Analytics: AnalyticsOptions{Anchor: analytics.AnchorBottomCenter, LineBand: analytics.DefaultLineBand},
	}
}

// AnalyticsConfig returns the zones, lines and options for the analytics engine.
func (c *TrackConfig) AnalyticsConfig() analytics.Config {
	return analytics.Config{Zones: c.Zones, Lines: c.Lines, Anchor: c.Analytics.Anchor, LineBand: c.Analytics.LineBand}
}

// Validate reports every problem at once, each at its field's path.
func (c *TrackConfig) Validate(env stages.Env) error {
	return errors.Join(stages.Under("track", c.Track.Validate()), c.AnalyticsConfig().Validate(env.Streams))
}

// TrackPlugin registers the track stage (tracker plus zone and line
// analytics per stream) under the `track`, `zones`, `lines` and `analytics` keys.
func TrackPlugin() stages.StagePlugin {
	return stages.NewStagePlugin("track", []string{"track", "zones", "lines", "analytics"}, TrackDefaults,
		func(c *TrackConfig, env stages.Env) error { return c.Validate(env) },
		func(c *TrackConfig, res *stages.Resources) ([]stages.StageSpec, error) {
			t := NewTrack(res.Pipeline, c.Track, c.AnalyticsConfig())
			t.OnClose(res.Emit)
			t.cur = *c
			t.offline = !res.Live
			res.Shared.ProvideOverlays(t.Overlays)
			res.Shared.ProvideTracks(t.Tracks)
			// The tracker is cheap and needs every inferred frame: a frame that
			// got this far is tracked even if late, so no inference is wasted.
			return []stages.StageSpec{{Name: "track", Stage: t, KeepStale: true}}, nil
		})
}

// Overlays returns the zones and lines of stream, for previews.
func (t *Track) Overlays(stream string) stages.Overlay {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ov stages.Overlay
	for _, z := range t.acfg.Zones {
		if z.Stream != stream {
			continue
		}
		oz := stages.OverlayZone{Name: z.Name}
		for _, p := range z.Polygon {
			oz.Polygon = append(oz.Polygon, geom.Point{X: p[0], Y: p[1]})
		}
		ov.Zones = append(ov.Zones, oz)
	}
	for _, l := range t.acfg.Lines {
		if l.Stream == stream {
			ov.Lines = append(ov.Lines, stages.OverlayLine{Name: l.Name, From: geom.Point{X: l.From[0], Y: l.From[1]}, To: geom.Point{X: l.To[0], Y: l.To[1]}})
		}
	}
	return ov
}

// errTrackerChanged says a reload changed `track:`, which needs a restart.
var errTrackerChanged = errors.New("track: the tracker settings changed")

// Reconfigure implements stages.Reconfigurer (hot reload): zones and lines
// apply at once to the streams whose set changed (they get a new analytics
// engine and keep their tracker); a change of `track:` needs a restart.
func (t *Track) Reconfigure(cfg any) ([]string, error) {
	next, ok := stages.ConfigAs[TrackConfig](cfg)
	if !ok {
		return nil, fmt.Errorf("track: reconfigure with %T", cfg)
	}
	t.mu.Lock()
	cur := t.cur
	ids := make([]string, 0, len(t.streams))
	for id := range t.streams {
		ids = append(ids, id)
	}
	t.mu.Unlock()
	oa, na := cur.AnalyticsConfig(), next.AnalyticsConfig()
	global := oa.Anchor != na.Anchor || oa.LineBand != na.LineBand
	var changed []string
	for _, id := range ids {
		if global || !sameOverlays(oa, na, id) {
			changed = append(changed, id)
		}
	}
	t.SetAnalytics(na, changed)
	t.mu.Lock()
	t.cur.Zones, t.cur.Lines, t.cur.Analytics = next.Zones, next.Lines, next.Analytics
	t.mu.Unlock()
	if !reflect.DeepEqual(cur.Track, next.Track) {
		return changed, errTrackerChanged
	}
	return changed, nil
}

// sameOverlays reports whether a and b give stream the same zones and lines.
func sameOverlays(a, b analytics.Config, stream string) bool {
	pick := func(c analytics.Config) ([]analytics.Zone, []analytics.Line) {
		var zs []analytics.Zone
		var ls []analytics.Line
		for _, z := range c.Zones {
			if z.Stream == stream {
				zs = append(zs, z)
			}
		}
		for _, l := range c.Lines {
			if l.Stream == stream {
				ls = append(ls, l)
			}
		}
		return zs, ls
	}
	az, al := pick(a)
	bz, bl := pick(b)
	return reflect.DeepEqual(az, bz) && reflect.DeepEqual(al, bl)
}
