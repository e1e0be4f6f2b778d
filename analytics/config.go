// Package analytics turns tracks into what integrators ask about: who entered
// or left a zone, who loitered, how many crossed a line in which direction,
// and per-class counts. It works per stream in normalised image coordinates
// ((0,0) top-left, (1,1) bottom-right), so a configuration survives a change
// of camera resolution. See docs/tracking.md.
package analytics

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/osprey-vision/osprey/geom"

	"github.com/osprey-vision/osprey/stages"
)

// Zone is a polygon on one stream's image.
type Zone struct {
	// Name identifies the zone in events; unique among the stream's zones.
	Name   string `yaml:"name"`
	Stream string `yaml:"stream"`
	// Polygon lists at least 3 vertices [x, y] in normalised coordinates.
	Polygon [][2]float64 `yaml:"polygon"`
	// LoiterAfter, when > 0, raises one zone.loitering event per visit once
	// a track has stayed this long.
	LoiterAfter time.Duration `yaml:"loiter_after"`
	// Classes, when set, limits the zone to these labels (e.g. person).
	Classes []string `yaml:"classes"`
}

// Line is a directed segment on one stream's image. A track's anchor
// crossing it from the left side of From->To to its right side (as seen on
// screen, image y pointing down) is direction "in"; the other way is "out".
// For a line drawn left to right, "in" is moving down the image.
type Line struct {
	// Name identifies the line in events; unique among the stream's lines.
	Name   string `yaml:"name"`
	Stream string `yaml:"stream"`
	// From and To are the end points [x, y] in normalised coordinates.
	From [2]float64 `yaml:"from"`
	To   [2]float64 `yaml:"to"`
	// Classes, when set, limits the line to these labels.
	Classes []string `yaml:"classes"`
}

// The anchor points: which point of a track's box stands for its position.
const (
	AnchorBottomCenter = "bottom_center" // feet of a person: the default
	AnchorCenter       = "center"
	AnchorTopCenter    = "top_center"
)

// DefaultLineBand is the hysteresis band used when Config.LineBand is 0.
const DefaultLineBand = 0.01

// Config is the analytics part of a pipeline: its `zones:` and `lines:`
// sections plus the anchor and the line hysteresis.
type Config struct {
	Zones []Zone `yaml:"zones"`
	Lines []Line `yaml:"lines"`
	// Anchor is bottom_center (default), center or top_center.
	Anchor string `yaml:"anchor"`
	// LineBand is the half-width of the dead band around each line, in
	// normalised units (default 0.01): an anchor must get further than this
	// from the line on the other side before a crossing counts, so jitter
	// on the line does not count twice.
	LineBand float64 `yaml:"line_band"`
}

// Validate checks cfg against the pipeline's stream IDs and returns every
// problem at once (errors.Join), each naming its field path, for example
// "zones[1].polygon: needs at least 3 points, got 2".
func (c Config) Validate(streams []string) error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, stages.Errorf(path, format, args...))
	}
	switch c.Anchor {
	case "", AnchorBottomCenter, AnchorCenter, AnchorTopCenter:
	default:
		add("anchor", "unknown anchor %q: use bottom_center, center or top_center", c.Anchor)
	}
	if math.IsNaN(c.LineBand) || c.LineBand < 0 || c.LineBand >= 0.5 {
		add("line_band", "must be in [0, 0.5), got %v", c.LineBand)
	}
	checkStream := func(path, s string) {
		switch {
		case s == "":
			add(path+".stream", "required: name one of the pipeline's streams (%s)", strings.Join(streams, ", "))
		case !slices.Contains(streams, s):
			add(path+".stream", "unknown stream %q: the pipeline's streams are %s", s, strings.Join(streams, ", "))
		}
	}
	checkName := func(path, name, stream string, seen map[[2]string]string) {
		if name == "" {
			add(path+".name", "required")
			return
		}
		key := [2]string{stream, name}
		if first, dup := seen[key]; dup {
			add(path+".name", "%q is already used by %s on stream %q: names must be unique per stream", name, first, stream)
			return
		}
		seen[key] = path
	}
	checkPoint := func(path string, p [2]float64) {
		if !(p[0] >= 0 && p[0] <= 1 && p[1] >= 0 && p[1] <= 1) { // NaN fails too
			add(path, "coordinates must be in [0,1] (normalised to the frame), got [%v, %v]", p[0], p[1])
		}
	}
	checkClasses := func(path string, classes []string) {
		for i, cl := range classes {
			if strings.TrimSpace(cl) == "" {
				add(fmt.Sprintf("%s.classes[%d]", path, i), "must not be empty")
			}
		}
	}

	seen := map[[2]string]string{}
	for i, z := range c.Zones {
		path := fmt.Sprintf("zones[%d]", i)
		checkName(path, z.Name, z.Stream, seen)
		checkStream(path, z.Stream)
		if len(z.Polygon) < 3 {
			add(path+".polygon", "needs at least 3 points, got %d", len(z.Polygon))
		} else {
			ok := true
			for j, p := range z.Polygon {
				before := len(errs)
				checkPoint(fmt.Sprintf("%s.polygon[%d]", path, j), p)
				ok = ok && len(errs) == before
			}
			if ok && polygon(z.Polygon).Area() == 0 {
				add(path+".polygon", "encloses no area: its points are collinear or repeated")
			}
		}
		if z.LoiterAfter < 0 {
			add(path+".loiter_after", "must be >= 0 (0 turns loitering off), got %v", z.LoiterAfter)
		}
		checkClasses(path, z.Classes)
	}
	seen = map[[2]string]string{}
	for i, l := range c.Lines {
		path := fmt.Sprintf("lines[%d]", i)
		checkName(path, l.Name, l.Stream, seen)
		checkStream(path, l.Stream)
		before := len(errs)
		checkPoint(path+".from", l.From)
		checkPoint(path+".to", l.To)
		if len(errs) == before && l.From == l.To {
			add(path, "from and to are the same point: a line needs two distinct ends")
		}
		checkClasses(path, l.Classes)
	}
	return errors.Join(errs...)
}

func polygon(pts [][2]float64) geom.Polygon {
	pg := make(geom.Polygon, len(pts))
	for i, p := range pts {
		pg[i] = geom.Point{X: p[0], Y: p[1]}
	}
	return pg
}
