package analytics

import (
	"testing"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/track"
	"github.com/osprey-vision/osprey/track/eval"
)

// TestLineCountsOnSyntheticScenes runs the real tracker on the synthetic
// scenes and compares the engine's line counts with the crossings of the
// ground-truth trajectories. Every emitted event is also schema-checked.
func TestLineCountsOnSyntheticScenes(t *testing.T) {
	line := Line{Name: "mid", Stream: "sim", From: [2]float64{0.5, 0}, To: [2]float64{0.5, 1}}
	for _, tc := range []struct {
		preset string
		// slack is the miscount allowed per direction. Objects in the
		// crossing sets sometimes cross the line while fully hidden behind
		// another (no detection for the whole passage, the track starts
		// after it): no tracker can count those.
		slack int
	}{{"lanes", 0}, {"noisy", 2}, {"skip", 2}} {
		for seed := uint64(1); seed <= 2; seed++ {
			c, _ := eval.Preset(tc.preset, seed)
			sc := eval.Generate(c)
			want := gtCrossings(sc, line)

			tr := track.New(track.DefaultConfig())
			e := New(Config{Lines: []Line{line}}, "sim", "sim")
			var evs []event.Event
			for i, f := range sc.Frames {
				up := tr.Update(f.Dets, f.At, f.Inferred)
				evs = append(evs, e.Update(up.Tracks, up.Started, up.Ended, int(c.Width), int(c.Height), uint64(i+1), f.At)...)
			}
			end := tr.Flush()
			evs = append(evs, e.Update(nil, nil, end, int(c.Width), int(c.Height), uint64(len(sc.Frames)+1), sc.Frames[len(sc.Frames)-1].At)...)
			validateAll(t, evs)

			got := e.Counts().Lines["mid"]
			t.Logf("%s seed %d: line in/out %d/%d, ground truth %d/%d", tc.preset, seed, got.In, got.Out, want[0], want[1])
			for d, g := range []int{got.In, got.Out} {
				diff := g - want[d]
				if diff < 0 {
					diff = -diff
				}
				if diff > tc.slack {
					t.Errorf("%s seed %d: direction %d counted %d, ground truth %d", tc.preset, seed, d, g, want[d])
				}
			}
			if want[0]+want[1] == 0 {
				t.Fatalf("%s seed %d: scene has no crossings to count", tc.preset, seed)
			}
		}
	}
}

// gtCrossings counts the ground-truth anchors' changes of side of l, with
// the same dead band as the engine: [in, out].
func gtCrossings(sc eval.Scene, l Line) [2]int {
	a, b := geom.Point{X: l.From[0], Y: l.From[1]}, geom.Point{X: l.To[0], Y: l.To[1]}
	last := map[uint64]int{}
	var n [2]int
	for _, f := range sc.Frames {
		for _, o := range f.GT {
			p := o.Box.BottomCenter()
			d := geom.SignedDistance(a, b, geom.Point{X: p.X / sc.Config.Width, Y: p.Y / sc.Config.Height})
			if d >= -DefaultLineBand && d <= DefaultLineBand {
				continue
			}
			s := 1
			if d < 0 {
				s = -1
			}
			if prev, ok := last[o.ID]; ok && prev != s {
				if s > 0 {
					n[0]++
				} else {
					n[1]++
				}
			}
			last[o.ID] = s
		}
	}
	return n
}
