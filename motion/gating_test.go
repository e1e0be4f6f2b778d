package motion

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/motion/gate"
	"github.com/osprey-vision/osprey/motion/region"
)

// gatedRun feeds frames at 10 fps through Detector, gate and region planner
// as the pipeline stage will (no tracks: there is no detector here) and
// counts what the detector would have run.
type gatedRun struct {
	frames, skipped, full, regionRuns, regions int
	reasons                                    map[gate.Reason]int
}

func runGated(t *testing.T, cfg Config, frames []gocv.Mat) gatedRun {
	t.Helper()
	d := newDetector(t, cfg)
	g := gate.New(gate.Policy{Refresh: cfg.Refresh, StationaryRecheck: cfg.StationaryRecheck})
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	out := gatedRun{reasons: map[gate.Reason]int{}}
	for i, f := range frames {
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		r, err := d.Detect(f)
		require.NoError(t, err)
		dec := g.Decide(gate.Input{Time: now, Motion: len(r.Boxes) > 0, Calibrating: r.Calibrating})
		out.frames++
		out.reasons[dec.Reason]++
		switch dec.Mode {
		case gate.Skip:
			out.skipped++
		case gate.FullFrame:
			out.full++
		case gate.Regions:
			p := region.PlanRegions(cfg.Regions, r.Boxes, nil, f.Cols(), f.Rows(), 300, 300)
			if p.FullFrame {
				g.RanFullFrame(now)
				out.full++
				continue
			}
			out.regionRuns++
			out.regions += len(p.Regions)
		}
	}
	return out
}

func TestGatingIdleAndBusy(t *testing.T) {
	matcheck.Leaks(t)
	busy := vtestFrames(t, 200)
	idle := idleScene(t, busy[0], 200, 120)
	cfg := Defaults()

	in := runGated(t, cfg, idle)
	t.Logf("idle 200 frames (20 s, light change at frame 120): %d skipped, %d full-frame runs %v", in.skipped, in.full, in.reasons)
	// First frame, one refresh at 10 s and the light change, whose next
	// frame already matches the rebuilt background: 3 runs, 1.5%.
	require.Equal(t, 3, in.full)
	require.Equal(t, 0, in.regionRuns)
	require.Equal(t, map[gate.Reason]int{gate.ReasonFirst: 1, gate.ReasonRefresh: 1, gate.ReasonCalibrating: 1, gate.ReasonIdle: 197}, in.reasons)

	bu := runGated(t, cfg, busy)
	t.Logf("vtest 200 frames: %d skipped, %d full-frame runs, %d region runs with %.2f regions each (300x300 model)",
		bu.skipped, bu.full, bu.regionRuns, float64(bu.regions)/float64(max(bu.regionRuns, 1)))
	require.Zero(t, bu.skipped, "people walk in every frame of vtest")
	require.Equal(t, bu.frames, bu.full+bu.regionRuns)
}
