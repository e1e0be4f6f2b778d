package track

import (
	"math"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/geom"
)

// A detection at or above confirm_score confirms its track on the spot; a
// weaker one waits for min_hits.
func TestConfirmScore(t *testing.T) {
	cfg := DefaultConfig()
	tr := New(cfg)
	up := tr.Update([]Detection{det(100, 100, 0.95), det(400, 100, 0.85)}, t0, true)
	if len(up.Started) != 1 || up.Started[0].Box.X != 100 {
		t.Fatalf("started %+v, want only the 0.95 detection's track", up.Started)
	}
	for i := 1; i < cfg.MinHits; i++ {
		up = tr.Update([]Detection{det(100, 100, 0.95), det(400, 100, 0.85)}, t0.Add(time.Duration(i)*100*time.Millisecond), true)
	}
	if len(up.Started) != 1 || up.Started[0].Hits != cfg.MinHits {
		t.Fatalf("started %+v on hit %d, want the 0.85 track", up.Started, cfg.MinHits)
	}
}

// box: detection reports the detector's box; filtered (the default) the
// Kalman estimate, which does not follow a one-frame jump all the way.
func TestBoxSource(t *testing.T) {
	for _, src := range []BoxSource{BoxDetection, BoxFiltered} {
		cfg := DefaultConfig()
		cfg.Box = src
		tr := New(cfg)
		var up Update
		for i := range 6 {
			x := 100.0
			if i == 5 {
				x = 106 // jitter
			}
			up = tr.Update([]Detection{det(x, 100, 0.95)}, t0.Add(time.Duration(i)*100*time.Millisecond), true)
		}
		got := up.Tracks[0].Box.X
		switch {
		case src == BoxDetection && got != 106:
			t.Errorf("detection: box x %v, want 106", got)
		case src == BoxFiltered && (got <= 100 || got >= 106):
			t.Errorf("filtered: box x %v, want strictly between the prediction (100) and the detection (106)", got)
		}
	}
}

// An object moves right at 300 px/s, is hidden for 5 frames in which it
// stops, and is detected again where it stopped. Its prediction coasted 75
// px away, so only the recovery pass (by its last observed box) finds it;
// the re-update then runs the filter through the gap's virtual
// observations, so the next prediction overshoots the still object less.
func TestRecoveryAndReupdate(t *testing.T) {
	run := func(reupdate bool) (id uint64, drift float64) {
		cfg := DefaultConfig()
		cfg.Reupdate = reupdate
		tr := New(cfg)
		dt := 50 * time.Millisecond
		x := 100.0
		var up Update
		i := 0
		step := func(dets []Detection) {
			up = tr.Update(dets, t0.Add(time.Duration(i)*dt), true)
			i++
		}
		for range 10 {
			step([]Detection{det(x, 100, 0.95)})
			x += 15
		}
		for range 5 {
			step(nil) // hidden; it has stopped at x
		}
		step([]Detection{det(x, 100, 0.95)})
		if len(up.Tracks) != 1 || !up.Tracks[0].Matched {
			t.Fatalf("reupdate %v: not found again: %+v", reupdate, up)
		}
		id = up.Tracks[0].ID
		step(nil) // still there; how far does the prediction run?
		return id, math.Abs(up.Tracks[0].Box.X - x)
	}
	idOn, driftOn := run(true)
	idOff, driftOff := run(false)
	if idOn != 1 || idOff != 1 {
		t.Fatalf("IDs %d, %d after the gap, want 1 (recovered)", idOn, idOff)
	}
	// Measured: 13.3 px with, 18.2 px without. The filter still trusts the
	// long constant-velocity history, but less than after coasting.
	if driftOn >= 0.8*driftOff {
		t.Fatalf("prediction one frame after recovery is %.1f px off with re-update, %.1f without; want at least 20%% less", driftOn, driftOff)
	}
	t.Logf("drift with re-update %.1f px, without %.1f px", driftOn, driftOff)
}

// A detector that scores its people above 0.9 and puts one steady false
// box at 0.7: with score_quantile the 0.7 box stops starting tracks once
// the histogram knows the detector; with fixed thresholds it is tracked.
func TestScoreQuantile(t *testing.T) {
	run := func(q float64) (fpTracks int) {
		cfg := DefaultConfig()
		cfg.ScoreQuantile = q
		cfg.ConfirmScore = 0
		tr := New(cfg)
		for i := range 60 {
			var dets []Detection
			for k := range 5 {
				dets = append(dets, det(float64(100+200*k), 100, 0.92+0.01*float64(k)))
			}
			if i >= 20 && i%8 < 4 { // flickers: a new track each time
				dets = append(dets, Detection{Box: geom.Rect{X: 500, Y: 400, W: 30, H: 30}, Score: 0.7})
			}
			for _, s := range tr.Update(dets, t0.Add(time.Duration(i)*100*time.Millisecond), true).Started {
				if s.Box.Y > 300 {
					fpTracks++
				}
			}
		}
		return fpTracks
	}
	if n := run(0); n == 0 {
		t.Fatal("fixed thresholds: the 0.7 box never became a track; the test proves nothing")
	}
	if n := run(0.15); n != 0 {
		t.Fatalf("score_quantile 0.15: %d tracks on the 0.7 box, want 0", n)
	}
}
