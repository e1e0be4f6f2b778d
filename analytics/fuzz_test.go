package analytics

import (
	"testing"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/track"
)

// FuzzEngine walks one track along an arbitrary path (pairs of bytes are
// normalised points) past an arbitrary line and zone and checks invariants
// that must hold whatever the path: a crossing happens only on a frame
// where the anchor changed side outside the dead band, in the direction of
// that change (so jitter inside the band never counts), and two crossings
// in the same direction have an uncounted side change (a walk around the
// line's end) between them; zone entries and exits alternate; occupancy is
// 0 or 1; loitering happens at most once per visit.
func FuzzEngine(f *testing.F) {
	f.Add([]byte{0, 128, 255, 128, 10, 10, 200, 200}, []byte{128, 0, 128, 255, 128, 0})
	f.Add([]byte{0, 128, 255, 128, 10, 10, 200, 200}, []byte{128, 126, 128, 130, 128, 126, 128, 130})
	f.Add([]byte{50, 50, 50, 50, 0, 0, 0, 0}, []byte{1, 2, 3, 4})
	f.Add([]byte{0, 0, 255, 255, 0, 255, 255, 0}, []byte{0, 255, 255, 0, 0, 255, 255, 0, 128, 128})
	f.Fuzz(func(t *testing.T, geo, path []byte) {
		if len(geo) < 8 || len(path) < 2 || len(path) > 400 {
			return
		}
		n := func(b byte) float64 { return float64(b) / 255 }
		line := Line{Name: "l", Stream: "s", From: [2]float64{n(geo[0]), n(geo[1])}, To: [2]float64{n(geo[2]), n(geo[3])}}
		x0, y0, x1, y1 := min(n(geo[4]), n(geo[6])), min(n(geo[5]), n(geo[7])), max(n(geo[4]), n(geo[6])), max(n(geo[5]), n(geo[7]))
		zone := Zone{Name: "z", Stream: "s", LoiterAfter: 500 * time.Millisecond,
			Polygon: [][2]float64{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}}
		e := New(Config{Lines: []Line{line}, Zones: []Zone{zone}}, "p", "s")

		var evs []event.Event
		a, b := geom.Point{X: line.From[0], Y: line.From[1]}, geom.Point{X: line.To[0], Y: line.To[1]}
		change := map[uint64]string{} // frame -> direction of a side change
		lastSide := 0
		for i := 0; i+1 < len(path); i += 2 {
			p := geom.Point{X: n(path[i]), Y: n(path[i+1])}
			tk := track.Track{ID: 1, Label: "person", Score: 0.9, Matched: true, Confirmed: true,
				Box: geom.Rect{X: p.X - 0.01, Y: p.Y - 0.05, W: 0.02, H: 0.05}}
			evs = append(evs, e.Update([]track.Track{tk}, nil, nil, 0, 0, uint64(i+1), time.Unix(int64(i), 0))...)
			if d := geom.SignedDistance(a, b, p); d > DefaultLineBand || d < -DefaultLineBand {
				s := 1
				if d < 0 {
					s = -1
				}
				if lastSide != 0 && s != lastSide {
					change[uint64(i+1)] = map[int]string{1: "in", -1: "out"}[s]
				}
				lastSide = s
			}
		}
		lastDir, crossings, inZone, loiters := "", 0, false, 0
		var lastFrame uint64
		for _, ev := range evs {
			switch ev.Type {
			case event.LineCrossed:
				if change[ev.FrameSeq] != ev.Direction {
					t.Fatalf("frame %d: crossing %q, but the side change there is %q", ev.FrameSeq, ev.Direction, change[ev.FrameSeq])
				}
				if ev.Direction == lastDir {
					// Same direction again: the anchor must have come back
					// uncounted in between.
					back := false
					for f, d := range change {
						if f > lastFrame && f < ev.FrameSeq && d != ev.Direction {
							back = true
						}
					}
					if !back {
						t.Fatalf("two %q crossings with no way back between frames %d and %d", ev.Direction, lastFrame, ev.FrameSeq)
					}
				}
				lastDir, lastFrame = ev.Direction, ev.FrameSeq
				crossings++
			case event.ZoneEntered:
				if inZone || *ev.Occupancy != 1 {
					t.Fatalf("entered twice or occupancy %d", *ev.Occupancy)
				}
				inZone, loiters = true, 0
			case event.ZoneLeft:
				if !inZone || *ev.Occupancy != 0 {
					t.Fatalf("left without entering or occupancy %d", *ev.Occupancy)
				}
				inZone = false
			case event.Loitering:
				if loiters++; !inZone || loiters > 1 {
					t.Fatal("loitering outside a visit or twice in one visit")
				}
			}
		}
		c := e.Counts()
		if c.Lines["l"].In+c.Lines["l"].Out != crossings {
			t.Fatalf("counts %+v disagree with %d events", c.Lines["l"], crossings)
		}
	})
}
