package track

import (
	"math"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/geom"
)

// FuzzTracker feeds arbitrary detection streams (7 bytes per detection:
// x, y, w, h, class, score, frame gap/flags) and checks the lifecycle
// contract: IDs are handed out 1, 2, 3... exactly once each, Started tracks
// are reported, Ended tracks are not, no ID is ever reported after it ended,
// boxes stay finite, and Flush ends exactly the tracks still alive.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{10, 10, 20, 40, 0, 230, 1, 12, 10, 20, 40, 0, 230, 1, 14, 10, 20, 40, 0, 230, 1, 16, 10, 20, 40, 0, 230, 1})
	f.Add([]byte{10, 10, 20, 40, 0, 230, 0, 10, 10, 20, 40, 1, 230, 0, 200, 200, 0, 0, 0, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := DefaultConfig()
		cfg.MinHits = 2
		cfg.CameraMotion = len(data)%2 == 1 // both paths, same contract
		tr := New(cfg)
		at := time.Unix(0, 0)
		var frame []Detection
		alive := map[uint64]bool{}
		ended := map[uint64]bool{}
		var nextID uint64 = 1
		step := func(gap byte) {
			at = at.Add(time.Duration(gap&63) * 20 * time.Millisecond)
			up := tr.Update(frame, at, gap&64 == 0)
			frame = frame[:0]
			for _, s := range up.Started {
				if s.ID != nextID {
					t.Fatalf("started ID %d, want %d", s.ID, nextID)
				}
				nextID++
				alive[s.ID] = true
			}
			seen := map[uint64]bool{}
			for _, tk := range up.Tracks {
				if !alive[tk.ID] || ended[tk.ID] || seen[tk.ID] || !tk.Confirmed {
					t.Fatalf("reported track %d: alive %v ended %v duplicate %v", tk.ID, alive[tk.ID], ended[tk.ID], seen[tk.ID])
				}
				seen[tk.ID] = true
				for _, v := range [4]float64{tk.Box.X, tk.Box.Y, tk.Box.W, tk.Box.H} {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("track %d box %v", tk.ID, tk.Box)
					}
				}
			}
			for _, e := range up.Ended {
				if !alive[e.ID] || seen[e.ID] {
					t.Fatalf("ended track %d not alive or still reported", e.ID)
				}
				delete(alive, e.ID)
				ended[e.ID] = true
			}
			if len(seen) != len(alive) {
				t.Fatalf("%d tracks reported, %d alive", len(seen), len(alive))
			}
		}
		for i := 0; i+7 <= len(data); i += 7 {
			d := data[i : i+7]
			frame = append(frame, Detection{
				Box:     geom.Rect{X: float64(d[0]) * 4, Y: float64(d[1]) * 4, W: float64(d[2]), H: float64(d[3])},
				ClassID: int(d[4] % 3), Score: float64(d[5]) / 255,
			})
			if d[6]&128 == 0 { // end of frame
				step(d[6])
			}
		}
		step(1)
		for _, e := range tr.Flush() {
			if !alive[e.ID] {
				t.Fatalf("Flush ended track %d that was not alive", e.ID)
			}
			delete(alive, e.ID)
		}
		if len(alive) != 0 {
			t.Fatalf("Flush left %d tracks", len(alive))
		}
	})
}
