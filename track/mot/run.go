package mot

import (
	"fmt"
	"math"
	"time"

	"github.com/osprey-vision/osprey/track"
)

// Result is one reported track box on one frame.
type Result struct {
	Frame int
	Track track.Track
}

// Run feeds detection frames to a tracker built from cfg, one Update per
// frame from 1 to the last frame with detections (frames without any still
// advance time), frame n at (n-1)/fps seconds. It returns what the pipeline
// reports on each frame: the confirmed tracks matched on that frame, their
// box being the matched detection. Detections are class 0 ("person"): the
// MOTChallenge files have no class.
func Run(frames []Frame, fps float64, cfg track.Config) ([]Result, error) {
	if math.IsNaN(fps) || fps <= 0 || fps > 1000 {
		return nil, fmt.Errorf("fps: must be in (0,1000], got %v", fps)
	}
	tr := track.New(cfg)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	step := float64(time.Second) / fps
	var out []Result
	var dets []track.Detection
	next := 0
	last := 0
	if len(frames) > 0 {
		last = frames[len(frames)-1].Number
	}
	for n := 1; n <= last; n++ {
		dets = dets[:0]
		if next < len(frames) && frames[next].Number == n {
			for _, r := range frames[next].Rows {
				dets = append(dets, track.Detection{Box: r.Box, Label: "person", Score: r.Conf})
			}
			next++
		}
		up := tr.Update(dets, start.Add(time.Duration(float64(n-1)*step)), true)
		for _, t := range up.Tracks {
			if t.Matched {
				out = append(out, Result{Frame: n, Track: t})
			}
		}
	}
	return out, nil
}
