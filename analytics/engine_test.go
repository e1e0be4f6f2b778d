package analytics

import (
	"testing"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/track"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

const fw, fh = 1000, 1000

// person returns a matched confirmed track whose bottom-centre (the default
// anchor) is at normalised (x, y) on a 1000x1000 frame.
func person(id uint64, x, y float64) track.Track {
	return track.Track{ID: id, Label: "person", Score: 0.8, Matched: true, Confirmed: true,
		Box: geom.Rect{X: x*fw - 20, Y: y*fh - 80, W: 40, H: 80}, Start: t0, LastSeen: t0}
}

// feeder drives an engine frame by frame, 100 ms apart.
type feeder struct {
	e   *Engine
	seq uint64
	all []event.Event
}

func (f *feeder) frame(tracks []track.Track, started, ended []track.Track) []event.Event {
	f.seq++
	evs := f.e.Update(tracks, started, ended, fw, fh, f.seq, t0.Add(time.Duration(f.seq)*100*time.Millisecond))
	f.all = append(f.all, evs...)
	return evs
}

func types(evs []event.Event) []event.Type {
	var out []event.Type
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func count(evs []event.Event, typ event.Type) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func TestZoneEnterLoiterLeave(t *testing.T) {
	cfg := Config{Zones: []Zone{{Name: "door", Stream: "cam", LoiterAfter: time.Second,
		Polygon: [][2]float64{{0.4, 0.4}, {0.6, 0.4}, {0.6, 0.6}, {0.4, 0.6}}}}}
	f := &feeder{e: New(cfg, "lobby", "cam")}
	p := person(1, 0.2, 0.5)
	evs := f.frame([]track.Track{p}, []track.Track{p}, nil)
	if got := types(evs); len(got) != 1 || got[0] != event.TrackStarted {
		t.Fatalf("first frame events %v, want [track.started]", got)
	}
	// Walk in; a second person joins.
	evs = f.frame([]track.Track{person(1, 0.5, 0.5), person(2, 0.45, 0.45)}, nil, nil)
	if len(evs) != 2 || evs[0].Type != event.ZoneEntered || *evs[0].Occupancy != 1 || *evs[1].Occupancy != 2 || evs[1].TrackID != 2 {
		t.Fatalf("entering: %+v", evs)
	}
	// Stay 1.5 s: exactly one loitering event each.
	for range 15 {
		f.frame([]track.Track{person(1, 0.5, 0.5), person(2, 0.45, 0.45)}, nil, nil)
	}
	if n := count(f.all, event.Loitering); n != 2 {
		t.Fatalf("%d loitering events, want 2", n)
	}
	// A coasting (unmatched) prediction outside the zone does not leave it.
	coast := person(1, 0.9, 0.9)
	coast.Matched = false
	if evs := f.frame([]track.Track{coast, person(2, 0.45, 0.45)}, nil, nil); len(evs) != 0 {
		t.Fatalf("coasting track raised %v", types(evs))
	}
	// Track 1 walks out: zone.left with its dwell; occupancy 1.
	evs = f.frame([]track.Track{person(1, 0.9, 0.5), person(2, 0.45, 0.45)}, nil, nil)
	if len(evs) != 1 || evs[0].Type != event.ZoneLeft || *evs[0].Occupancy != 1 || evs[0].Dwell != 1.7 {
		t.Fatalf("leaving: %+v", evs)
	}
	// Track 2 ends inside the zone: zone.left then track.ended.
	gone := person(2, 0.45, 0.45)
	gone.LastSeen = t0.Add(3 * time.Second)
	evs = f.frame([]track.Track{person(1, 0.9, 0.5)}, nil, []track.Track{gone})
	if got := types(evs); len(got) != 2 || got[0] != event.ZoneLeft || got[1] != event.TrackEnded || evs[1].Dwell != 3 || *evs[0].Occupancy != 0 {
		t.Fatalf("ending inside: %+v", evs)
	}
	// Track 1 comes back: a new visit, and a new loitering event later.
	for range 12 {
		f.frame([]track.Track{person(1, 0.5, 0.5)}, nil, nil)
	}
	if n := count(f.all, event.Loitering); n != 3 {
		t.Fatalf("%d loitering events after a second visit, want 3", n)
	}
	c := f.e.Counts()
	z := c.Zones["door"]
	if z.Occupancy != 1 || z.OccupancyByClass["person"] != 1 || z.Entered["person"] != 3 || z.Left != 2 || z.Loitering != 3 || c.Tracks["person"] != 1 {
		t.Fatalf("counts %+v", c)
	}
	// A track that disappears without an ended entry still leaves.
	evs = f.frame(nil, nil, nil)
	if len(evs) != 1 || evs[0].Type != event.ZoneLeft || evs[0].TrackID != 1 || evs[0].Box != nil {
		t.Fatalf("vanished track: %+v", evs)
	}
}

func TestZoneClassFilterAndStream(t *testing.T) {
	poly := [][2]float64{{0, 0}, {1, 0}, {1, 1}, {0, 1}}
	cfg := Config{Zones: []Zone{
		{Name: "cars", Stream: "cam", Polygon: poly, Classes: []string{"car"}},
		{Name: "other", Stream: "other-cam", Polygon: poly},
	}}
	f := &feeder{e: New(cfg, "lobby", "cam")}
	car := person(2, 0.5, 0.5)
	car.Label = "car"
	evs := f.frame([]track.Track{person(1, 0.5, 0.5), car}, nil, nil)
	if len(evs) != 1 || evs[0].TrackID != 2 || evs[0].Zone != "cars" {
		t.Fatalf("events %+v, want only the car entering zone cars", evs)
	}
}

func TestLineCrossing(t *testing.T) {
	// A horizontal line drawn left to right across the middle: "in" is
	// moving down the image (from its left side to its right side).
	cfg := Config{Lines: []Line{{Name: "gate", Stream: "cam", From: [2]float64{0.2, 0.5}, To: [2]float64{0.8, 0.5}}}}
	f := &feeder{e: New(cfg, "lobby", "cam")}
	path := func(id uint64, x float64, ys ...float64) {
		for _, y := range ys {
			f.frame([]track.Track{person(id, x, y)}, nil, nil)
		}
	}
	path(1, 0.5, 0.3, 0.4, 0.49, 0.6) // down: in
	// Jitter around the line inside the band, then settle below: nothing.
	path(1, 0.5, 0.505, 0.497, 0.503, 0.495, 0.502, 0.6)
	path(1, 0.5, 0.4) // back up: out
	if got := f.e.Counts().Lines["gate"]; got.In != 1 || got.Out != 1 {
		t.Fatalf("after one crossing each way: %+v", got)
	}
	crossings := 0
	for _, e := range f.all {
		if e.Type == event.LineCrossed {
			crossings++
			want := map[int]string{1: "in", 2: "out"}[crossings]
			if e.Direction != want || e.Count != 1 || e.Line != "gate" || e.TrackID != 1 {
				t.Fatalf("crossing %d: %+v, want direction %s count 1", crossings, e, want)
			}
		}
	}
	// Passing beside the segment (x = 0.9, beyond To) is no crossing.
	path(2, 0.9, 0.3, 0.7)
	// Lost under occlusion and reappearing on the other side: one crossing.
	path(3, 0.3, 0.2, 0.8)
	// A line drawn right to left flips the meaning: down is "out" for it.
	cfg.Lines[0].From, cfg.Lines[0].To = cfg.Lines[0].To, cfg.Lines[0].From
	f2 := &feeder{e: New(cfg, "lobby", "cam")}
	f2.frame([]track.Track{person(1, 0.5, 0.3)}, nil, nil)
	f2.frame([]track.Track{person(1, 0.5, 0.7)}, nil, nil)

	got := f.e.Counts().Lines["gate"]
	if got.In != 2 || got.Out != 1 || got.InByClass["person"] != 2 {
		t.Fatalf("counts %+v, want in 2 out 1", got)
	}
	if got := f2.e.Counts().Lines["gate"]; got.In != 0 || got.Out != 1 {
		t.Fatalf("reversed line counts %+v, want out 1", got)
	}
	// Jitter larger than the band does count: it is real movement.
	f3 := &feeder{e: New(Config{Lines: cfg.Lines, LineBand: 0.001}, "lobby", "cam")}
	for _, y := range []float64{0.49, 0.51, 0.49, 0.51} {
		f3.frame([]track.Track{person(1, 0.5, y)}, nil, nil)
	}
	if got := f3.e.Counts().Lines["gate"]; got.In+got.Out != 3 {
		t.Fatalf("with a thin band: %+v, want 3 crossings", got)
	}
}

func TestAnchor(t *testing.T) {
	poly := [][2]float64{{0, 0}, {1, 0}, {1, 0.5}, {0, 0.5}} // top half
	// The box spans y 0.42..0.5 (bottom at 0.5) if at y=0.5; use y=0.55:
	// the bottom is out of the zone, the centre (0.51) too, the top (0.47) in.
	for anchor, want := range map[string]int{"": 0, AnchorCenter: 0, AnchorTopCenter: 1} {
		f := &feeder{e: New(Config{Anchor: anchor, Zones: []Zone{{Name: "top", Stream: "cam", Polygon: poly}}}, "p", "cam")}
		if got := count(f.frame([]track.Track{person(1, 0.5, 0.55)}, nil, nil), event.ZoneEntered); got != want {
			t.Errorf("anchor %q: %d entries, want %d", anchor, got, want)
		}
	}
}
