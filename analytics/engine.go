package analytics

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/track"
)

// Engine evaluates one stream's zones and lines on the tracker's output,
// frame by frame. It is not safe for concurrent use: the runtime keeps one
// per stream next to that stream's tracker.
type Engine struct {
	pipeline, stream string
	anchor           string
	band             float64
	zones            []*zoneState
	lines            []*lineState
	started          map[string]int // confirmed tracks per label
	present          map[uint64]bool
}

type zoneState struct {
	Zone
	poly      geom.Polygon
	visits    map[uint64]*visit
	entered   map[string]int
	left      int
	loitering int
}

type visit struct {
	since    time.Time
	loitered bool
	label    string
}

type lineState struct {
	Line
	a, b  geom.Point
	inv   float64 // 1 / length, for signed distances without a square root per track
	sides map[uint64]*sideState
	in    map[string]int
	out   map[string]int
}

// sideState is the side of the line a track was last seen on outside the
// dead band, and where.
type sideState struct {
	side int
	at   geom.Point
}

// New returns the engine for one stream of a pipeline, keeping only that
// stream's zones and lines. cfg should have passed Validate; zones with
// fewer than 3 points and zero-length lines are skipped rather than
// failing at run time.
func New(cfg Config, pipeline, stream string) *Engine {
	e := &Engine{
		pipeline: pipeline, stream: stream, anchor: cfg.Anchor, band: cfg.LineBand,
		started: map[string]int{}, present: map[uint64]bool{},
	}
	if e.anchor == "" {
		e.anchor = AnchorBottomCenter
	}
	if e.band == 0 {
		e.band = DefaultLineBand
	}
	for _, z := range cfg.Zones {
		if z.Stream != stream || len(z.Polygon) < 3 {
			continue
		}
		e.zones = append(e.zones, &zoneState{Zone: z, poly: polygon(z.Polygon), visits: map[uint64]*visit{}, entered: map[string]int{}})
	}
	for _, l := range cfg.Lines {
		if l.Stream != stream || l.From == l.To {
			continue
		}
		a, b := geom.Point{X: l.From[0], Y: l.From[1]}, geom.Point{X: l.To[0], Y: l.To[1]}
		e.lines = append(e.lines, &lineState{
			Line: l, a: a, b: b, inv: 1 / math.Hypot(b.X-a.X, b.Y-a.Y),
			sides: map[uint64]*sideState{}, in: map[string]int{}, out: map[string]int{},
		})
	}
	return e
}

// Update consumes one frame of tracker output: tracks (the confirmed tracks
// alive, as in track.Update.Tracks), started and ended (its lifecycle lists),
// the frame size in pixels (boxes are normalised by it; a size <= 0 means
// the boxes are normalised already), the frame's sequence number and time.
// It returns the events of this frame in order: track.started, then zone
// and line events, then zone.left and track.ended for ended tracks.
//
// Only matched tracks move zone membership and cross lines: a coasting
// prediction never raises an event by itself. Loitering is checked on
// every frame.
func (e *Engine) Update(tracks []track.Track, started, ended []track.Track, frameW, frameH int, frameSeq uint64, at time.Time) []event.Event {
	sx, sy := 1.0, 1.0
	if frameW > 0 && frameH > 0 {
		sx, sy = 1/float64(frameW), 1/float64(frameH)
	}
	var out []event.Event
	newEvent := func(typ event.Type, t track.Track) event.Event {
		ev := event.New(typ, e.pipeline, e.stream)
		if !at.IsZero() {
			ev.Time = at.UTC()
		}
		ev.FrameSeq = frameSeq
		ev.TrackID = t.ID
		ev.Label = label(t)
		ev.Confidence = clamp(t.Score, 0, 1)
		b := t.Box.Scale(sx, sy)
		// The schema bounds boxes to [-0.5, 1.5]; predictions can drift off
		// screen further than that.
		b = geom.Rect{X: clamp(b.X, -0.5, 1.5), Y: clamp(b.Y, -0.5, 1.5), W: clamp(b.W, 0, 1.5), H: clamp(b.H, 0, 1.5)}
		ev.Box = &b
		return ev
	}

	for _, t := range started {
		e.started[label(t)]++
		out = append(out, newEvent(event.TrackStarted, t))
	}

	clear(e.present)
	for _, t := range tracks {
		if t.ID == 0 || !t.Confirmed {
			continue
		}
		e.present[t.ID] = true
		p := e.anchorOf(t.Box)
		p = geom.Point{X: p.X * sx, Y: p.Y * sy}
		for _, z := range e.zones {
			if !classOK(z.Classes, t.Label) {
				continue
			}
			v := z.visits[t.ID]
			if t.Matched {
				in := z.poly.Contains(p)
				switch {
				case in && v == nil:
					v = &visit{since: at, label: label(t)}
					z.visits[t.ID] = v
					z.entered[v.label]++
					ev := newEvent(event.ZoneEntered, t)
					ev.Zone, ev.Occupancy = z.Name, ptr(len(z.visits))
					out = append(out, ev)
				case !in && v != nil:
					out = append(out, e.leave(z, t, at, newEvent))
					v = nil
				}
			}
			if v != nil && !v.loitered && z.LoiterAfter > 0 && at.Sub(v.since) >= z.LoiterAfter {
				v.loitered = true
				z.loitering++
				ev := newEvent(event.Loitering, t)
				ev.Zone, ev.Occupancy, ev.Dwell = z.Name, ptr(len(z.visits)), at.Sub(v.since).Seconds()
				out = append(out, ev)
			}
		}
		if !t.Matched {
			continue
		}
		for _, l := range e.lines {
			if !classOK(l.Classes, t.Label) {
				continue
			}
			if ev, ok := e.cross(l, t, p, newEvent); ok {
				out = append(out, ev)
			}
		}
	}

	for _, t := range ended {
		delete(e.present, t.ID)
		for _, z := range e.zones {
			if z.visits[t.ID] != nil {
				out = append(out, e.leave(z, t, at, newEvent))
			}
		}
		for _, l := range e.lines {
			delete(l.sides, t.ID)
		}
		ev := newEvent(event.TrackEnded, t)
		ev.Dwell = t.Duration().Seconds()
		out = append(out, ev)
	}
	// A track that vanished without an ended entry (the caller dropped it)
	// must not stay in a zone forever.
	for _, z := range e.zones {
		for _, id := range slices.Sorted(maps.Keys(z.visits)) {
			if !e.present[id] {
				out = append(out, e.leave(z, track.Track{ID: id, Label: z.visits[id].label}, at, newEvent))
			}
		}
	}
	for _, l := range e.lines {
		maps.DeleteFunc(l.sides, func(id uint64, _ *sideState) bool { return !e.present[id] })
	}
	return out
}

// leave ends t's visit of z and returns the zone.left event.
func (e *Engine) leave(z *zoneState, t track.Track, at time.Time, newEvent func(event.Type, track.Track) event.Event) event.Event {
	v := z.visits[t.ID]
	delete(z.visits, t.ID)
	z.left++
	ev := newEvent(event.ZoneLeft, t)
	if t.Box == (geom.Rect{}) {
		ev.Box = nil // a vanished track: no box known
	}
	ev.Zone, ev.Occupancy, ev.Dwell = z.Name, ptr(len(z.visits)), math.Max(0, at.Sub(v.since).Seconds())
	return ev
}

// cross updates t's side of l and reports a crossing. The side only changes
// once the anchor is further than the band from the line, and a change
// counts as a crossing only if the path from the last point on the old side
// to this point passes through the segment itself, not its extension.
func (e *Engine) cross(l *lineState, t track.Track, p geom.Point, newEvent func(event.Type, track.Track) event.Event) (event.Event, bool) {
	d := geom.Orient(l.a, l.b, p) * l.inv // signed distance, + on the right
	if math.IsNaN(d) || math.Abs(d) <= e.band {
		return event.Event{}, false
	}
	side := 1
	if d < 0 {
		side = -1
	}
	st := l.sides[t.ID]
	if st == nil {
		l.sides[t.ID] = &sideState{side: side, at: p}
		return event.Event{}, false
	}
	if st.side == side {
		st.at = p
		return event.Event{}, false
	}
	crossed := geom.SegmentsIntersect(st.at, p, l.a, l.b)
	st.side, st.at = side, p
	if !crossed {
		return event.Event{}, false
	}
	ev := newEvent(event.LineCrossed, t)
	ev.Line = l.Name
	lb := label(t)
	if side > 0 { // left -> right of From->To
		l.in[lb]++
		ev.Direction, ev.Count = "in", total(l.in)
	} else {
		l.out[lb]++
		ev.Direction, ev.Count = "out", total(l.out)
	}
	return ev, true
}

func (e *Engine) anchorOf(b geom.Rect) geom.Point {
	switch e.anchor {
	case AnchorCenter:
		return b.Center()
	case AnchorTopCenter:
		return geom.Point{X: b.X + b.W/2, Y: b.Y}
	}
	return b.BottomCenter()
}

// Counts is a snapshot of an engine's counters, for the run summary and
// metrics. Maps are keyed by label (class) or by zone / line name.
type Counts struct {
	// Tracks counts the confirmed tracks started, per label.
	Tracks map[string]int
	Zones  map[string]ZoneCounts
	Lines  map[string]LineCounts
}

// ZoneCounts are one zone's counters.
type ZoneCounts struct {
	// Occupancy is the number of tracks inside now; OccupancyByClass splits
	// it by label.
	Occupancy        int
	OccupancyByClass map[string]int
	// Entered counts visits started, per label; Left and Loitering count
	// zone.left and zone.loitering events.
	Entered   map[string]int
	Left      int
	Loitering int
}

// LineCounts are one line's crossings per direction and label.
type LineCounts struct {
	In, Out               int
	InByClass, OutByClass map[string]int
}

// Counts returns a copy of the engine's counters.
func (e *Engine) Counts() Counts {
	c := Counts{Tracks: maps.Clone(e.started), Zones: map[string]ZoneCounts{}, Lines: map[string]LineCounts{}}
	for _, z := range e.zones {
		zc := ZoneCounts{Occupancy: len(z.visits), OccupancyByClass: map[string]int{}, Entered: maps.Clone(z.entered), Left: z.left, Loitering: z.loitering}
		for _, v := range z.visits {
			zc.OccupancyByClass[v.label]++
		}
		c.Zones[z.Name] = zc
	}
	for _, l := range e.lines {
		c.Lines[l.Name] = LineCounts{In: total(l.in), Out: total(l.out), InByClass: maps.Clone(l.in), OutByClass: maps.Clone(l.out)}
	}
	return c
}

// String renders the counts as a short human summary, one zone or line per
// line, in name order.
func (c Counts) String() string {
	s := fmt.Sprintf("tracks: %s\n", classes(c.Tracks))
	for _, name := range slices.Sorted(maps.Keys(c.Zones)) {
		z := c.Zones[name]
		s += fmt.Sprintf("zone %s: occupancy %d, entered %s, left %d, loitering %d\n", name, z.Occupancy, classes(z.Entered), z.Left, z.Loitering)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Lines)) {
		l := c.Lines[name]
		s += fmt.Sprintf("line %s: in %d%s, out %d%s\n", name, l.In, byClass(l.InByClass), l.Out, byClass(l.OutByClass))
	}
	return s
}

// byClass is the per-class split after a total: " (person=3 car=1)", or ""
// when nothing was counted.
func byClass(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	return " (" + classes(m) + ")"
}

func classes(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	s := ""
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s=%d", k, m[k])
	}
	return s
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func classOK(classes []string, label string) bool {
	return len(classes) == 0 || slices.Contains(classes, label)
}

// label returns the track's label, or class_<id> when the model has none:
// events always carry a label.
func label(t track.Track) string {
	if t.Label != "" {
		return t.Label
	}
	return fmt.Sprintf("class_%d", t.ClassID)
}

func clamp(v, lo, hi float64) float64 {
	if math.IsNaN(v) {
		return lo
	}
	return math.Min(hi, math.Max(lo, v))
}

func ptr(n int) *int { return &n }
