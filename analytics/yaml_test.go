package analytics

import (
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/osprey-vision/osprey/track"
)

// The pipeline YAML of docs/design.md decodes into these types as written:
// flow-style polygons, durations as strings, snake_case keys.
func TestDecodeYAML(t *testing.T) {
	src := `
track:
  max_lost: 1500ms
  min_hits: 2
zones:
  - { name: entrance, stream: door-cam, polygon: [[0.1,0.5],[0.5,0.5],[0.5,1],[0.1,1]], loiter_after: 30s, classes: [person] }
lines:
  - { name: gate, stream: door-cam, from: [0.2,0.6], to: [0.8,0.6] }
anchor: center
line_band: 0.02
`
	var doc struct {
		Track  track.Config `yaml:"track"`
		Config `yaml:",inline"`
	}
	doc.Track = track.DefaultConfig()
	if err := yaml.UnmarshalWithOptions([]byte(src), &doc, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	if doc.Track.MaxLost != 1500*time.Millisecond || doc.Track.MinHits != 2 || doc.Track.HighScore != 0.5 {
		t.Errorf("track config %+v", doc.Track)
	}
	z := doc.Zones[0]
	if z.Name != "entrance" || z.Stream != "door-cam" || len(z.Polygon) != 4 || z.Polygon[2] != [2]float64{0.5, 1} ||
		z.LoiterAfter != 30*time.Second || z.Classes[0] != "person" {
		t.Errorf("zone %+v", z)
	}
	l := doc.Lines[0]
	if l.From != [2]float64{0.2, 0.6} || l.To != [2]float64{0.8, 0.6} || doc.Anchor != AnchorCenter || doc.LineBand != 0.02 {
		t.Errorf("line %+v, anchor %q, band %v", l, doc.Anchor, doc.LineBand)
	}
	if err := doc.Config.Validate([]string{"door-cam"}); err != nil {
		t.Errorf("validate: %v", err)
	}
	if err := doc.Track.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
}
