package track

import (
	"testing"
	"time"

	"github.com/osprey-vision/osprey/geom"
)

// Four people stand still; at frame 10 the camera starts to pan, so every
// box slides 12 px (0.3 widths) per frame to the left. One of them is hidden
// for the first five frames of the pan. Its prediction, uncorrected, stays
// where it was last seen, 60 px (1.5 widths) from where it reappears: it
// comes back under a new ID. With camera_motion the others' offsets move it
// along with the picture and it keeps its ID; the others keep theirs either
// way.
func TestCameraMotion(t *testing.T) {
	run := func(cmc bool) (ids map[float64]uint64, started int) {
		cfg := DefaultConfig()
		cfg.CameraMotion = cmc
		tr := New(cfg)
		ids = map[float64]uint64{}
		xs := []float64{100, 300, 500, 700}
		for i := range 20 {
			pan := 0.0
			if i > 10 {
				pan = -12 * float64(i-10)
			}
			var dets []Detection
			for k, x := range xs {
				if k == 2 && i >= 10 && i < 15 {
					continue // hidden
				}
				dets = append(dets, det(x+pan, 100, 0.95))
			}
			up := tr.Update(dets, t0.Add(time.Duration(i)*100*time.Millisecond), true)
			started += len(up.Started)
			if i == 19 {
				for _, tk := range up.Tracks {
					if tk.Matched {
						ids[tk.Box.X-pan] = tk.ID
					}
				}
			}
		}
		return ids, started
	}
	near := func(ids map[float64]uint64, x float64) uint64 {
		for bx, id := range ids {
			if bx > x-10 && bx < x+10 {
				return id
			}
		}
		return 0
	}
	off, startedOff := run(false)
	if startedOff == 4 || near(off, 500) == 3 {
		t.Fatalf("without camera_motion the hidden person kept ID 3 (%d tracks started): the test proves nothing", startedOff)
	}
	t.Logf("without camera_motion: %d tracks started, IDs at the end %v", startedOff, off)
	on, startedOn := run(true)
	for k, x := range []float64{100, 300, 500, 700} {
		if got := near(on, x); got != uint64(k+1) {
			t.Errorf("camera_motion: person at %v has ID %d at the end, want %d (tracks %v)", x, got, k+1, on)
		}
	}
	if startedOn != 4 {
		t.Errorf("camera_motion: %d tracks started, want 4", startedOn)
	}
}

// A box lying mostly inside a tracked person (a second detection on the
// torso) starts no track with part_cover; one only half inside still does.
func TestPartCover(t *testing.T) {
	run := func(cover float64, part geom.Rect) int {
		cfg := DefaultConfig()
		cfg.PartCover = cover
		tr := New(cfg)
		started := 0
		for i := range 8 {
			dets := []Detection{det(100, 100, 0.95)} // 40x80
			if i >= 4 {
				dets = append(dets, Detection{Box: part, Label: "person", Score: 0.95})
			}
			started += len(tr.Update(dets, t0.Add(time.Duration(i)*100*time.Millisecond), true).Started)
		}
		return started
	}
	torso := geom.Rect{X: 105, Y: 110, W: 25, H: 40} // wholly inside
	if n := run(0, torso); n != 2 {
		t.Fatalf("part_cover 0: %d tracks, want 2 (the torso box tracked too)", n)
	}
	if n := run(0.6, torso); n != 1 {
		t.Fatalf("part_cover 0.6: %d tracks, want 1 (no track on the torso box)", n)
	}
	half := geom.Rect{X: 120, Y: 110, W: 40, H: 40} // half inside
	if n := run(0.6, half); n != 2 {
		t.Fatalf("part_cover 0.6: %d tracks for a box half inside, want 2", n)
	}
}
