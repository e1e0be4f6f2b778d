package analytics

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/track"
)

func validateAll(t *testing.T, evs []event.Event) map[event.Type]int {
	t.Helper()
	seen := map[event.Type]int{}
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal %+v: %v", e, err)
		}
		if err := event.Validate(b); err != nil {
			t.Errorf("%s event does not match event/schema.json:\n%s\n%v", e.Type, b, err)
		}
		seen[e.Type]++
	}
	return seen
}

// TestEventsMatchSchema drives the engine through every event type it
// emits, including awkward values (no label, scores above 1, boxes drifting
// far off screen, a track vanishing without an end), and validates each
// event's JSON against the schema.
func TestEventsMatchSchema(t *testing.T) {
	cfg := Config{
		Zones: []Zone{{Name: "door", Stream: "cam", LoiterAfter: 300 * time.Millisecond,
			Polygon: [][2]float64{{0.4, 0.4}, {0.6, 0.4}, {0.6, 0.6}, {0.4, 0.6}}}},
		Lines: []Line{{Name: "gate", Stream: "cam", From: [2]float64{0.1, 0.5}, To: [2]float64{0.9, 0.5}}},
	}
	f := &feeder{e: New(cfg, "lobby", "cam")}
	a := person(1, 0.5, 0.3)
	b := person(2, 0.45, 0.45)
	b.Label, b.ClassID, b.Score = "", 7, 1.7 // unlabelled model, odd score
	f.frame([]track.Track{a, b}, []track.Track{a, b}, nil)
	for _, y := range []float64{0.45, 0.5, 0.55, 0.58, 0.7, 0.3} {
		f.frame([]track.Track{person(1, 0.5, y), b}, nil, nil)
	}
	drift := person(1, 0.5, 0.3)
	drift.Box.X, drift.Box.W, drift.Matched = -5000, 3000, false
	f.frame([]track.Track{drift}, nil, []track.Track{b})
	f.frame(nil, nil, []track.Track{drift})
	// A track entering then vanishing with no end.
	f.frame([]track.Track{person(3, 0.5, 0.5)}, nil, nil)
	f.frame(nil, nil, nil)

	seen := validateAll(t, f.all)
	for _, typ := range []event.Type{event.TrackStarted, event.TrackEnded, event.ZoneEntered, event.ZoneLeft, event.Loitering, event.LineCrossed} {
		if seen[typ] == 0 {
			t.Errorf("scenario emitted no %s event (emitted %v)", typ, seen)
		}
	}
	for _, e := range f.all {
		if e.Label == "" || (e.Box != nil && (math.Abs(e.Box.X) > 1.5 || e.Box.W > 1.5)) {
			t.Errorf("event not sanitised: %+v %v", e, e.Box)
		}
	}
}

// The schema check must be able to fail: a crossing without a direction
// and a track.started without its box are rejected.
func TestSchemaRejectsIncompleteEvents(t *testing.T) {
	for _, e := range []event.Event{
		func() event.Event {
			e := event.New(event.LineCrossed, "p", "cam")
			e.TrackID, e.Line, e.Count = 1, "gate", 1
			return e
		}(),
		func() event.Event {
			e := event.New(event.TrackStarted, "p", "cam")
			e.TrackID, e.Label, e.FrameSeq = 1, "person", 3
			return e
		}(),
	} {
		b, _ := json.Marshal(e)
		if event.Validate(b) == nil {
			t.Errorf("schema accepted incomplete %s event %s", e.Type, b)
		}
	}
}
