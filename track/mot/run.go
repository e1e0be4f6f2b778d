package mot

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/osprey-vision/osprey/geom"

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
// box being the filtered (or detection) box. Detections are class 0
// ("person"): the MOTChallenge files have no class.
func Run(frames []Frame, fps float64, cfg track.Config) ([]Result, error) {
	return RunWith(frames, fps, cfg, Options{})
}

// Options change what RunWith reports. The zero value reports what the
// pipeline reports live.
type Options struct {
	// Delay lets the writer wait this long before it commits a frame's
	// boxes (a fixed lag, as an offline writer can), so it can use what the
	// tracker learns in the meantime: a track confirmed within Delay of a
	// frame is reported on that frame too (the matches it had while
	// tentative), and a track missed for some frames and matched again
	// within Delay of them is reported on them, on the straight line
	// between its two matched boxes.
	Delay time.Duration
	// MinStreak holds a track back until it has been matched on this many
	// consecutive frames (counting those while tentative), as SORT's
	// hit streak does at start-up; with Delay its frames within the lag
	// before that are reported too. 0 or 1: the tracker's confirmation
	// only.
	MinStreak int
}

// sighting is one matched frame of a track.
type sighting struct {
	frame int
	tr    track.Track
}

// RunWith is Run with opts.
func RunWith(frames []Frame, fps float64, cfg track.Config, opts Options) ([]Result, error) {
	if math.IsNaN(fps) || fps <= 0 || fps > 1000 {
		return nil, fmt.Errorf("fps: must be in (0,1000], got %v", fps)
	}
	if opts.Delay < 0 {
		return nil, fmt.Errorf("delay: must be >= 0, got %v", opts.Delay)
	}
	if opts.MinStreak < 0 {
		return nil, fmt.Errorf("min streak: must be >= 0, got %d", opts.MinStreak)
	}
	tr := track.New(cfg)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	step := float64(time.Second) / fps
	lag := int(math.Floor(float64(opts.Delay)/step + 1e-9))
	frameAt := func(at time.Time) int { return int(math.Round(float64(at.Sub(start))/step)) + 1 }
	var dets []track.Detection
	next := 0
	last := 0
	if len(frames) > 0 {
		last = frames[len(frames)-1].Number
	}
	// Every track's matched frames, in order, and the frame the tracker
	// confirmed it on.
	seen := map[uint64][]sighting{}
	confirmedAt := map[uint64]int{}
	var ids []uint64
	for n := 1; n <= last; n++ {
		dets = dets[:0]
		if next < len(frames) && frames[next].Number == n {
			for _, r := range frames[next].Rows {
				dets = append(dets, track.Detection{Box: r.Box, Label: "person", Score: r.Conf})
			}
			next++
		}
		up := tr.Update(dets, start.Add(time.Duration(float64(n-1)*step)), true)
		for _, t := range up.Started {
			confirmedAt[t.ID] = n
			ids = append(ids, t.ID)
		}
		for _, e := range up.Earlier {
			seen[e.ID] = append(seen[e.ID], sighting{frame: frameAt(e.At), tr: track.Track{
				ID: e.ID, Label: "person", Box: e.Box, Score: e.Score, Matched: true, Confirmed: true}})
		}
		for _, t := range up.Tracks {
			if t.Matched {
				seen[t.ID] = append(seen[t.ID], sighting{frame: n, tr: t})
			}
		}
	}
	var out []Result
	for _, id := range ids {
		ss := seen[id]
		// ready: the frame on which the writer knows the track is real.
		ready := confirmedAt[id]
		if k := opts.MinStreak; k > 1 {
			q := -1
			run := 0
			for i, s := range ss {
				if i > 0 && ss[i-1].frame == s.frame-1 {
					run++
				} else {
					run = 1
				}
				if run >= k {
					q = s.frame
					break
				}
			}
			if q < 0 {
				continue // never reached MinStreak: never reported
			}
			ready = max(ready, q)
		}
		for i, s := range ss {
			// A frame is committed lag frames after it was seen.
			if ready > s.frame+lag {
				continue
			}
			if i > 0 {
				// Fill a gap the track was matched again within the lag of.
				p := ss[i-1]
				for m := p.frame + 1; m < s.frame; m++ {
					if s.frame > m+lag || ready > m+lag {
						continue
					}
					f := float64(m-p.frame) / float64(s.frame-p.frame)
					a, b := p.tr.Box, s.tr.Box
					it := s.tr
					it.Box = geom.Rect{X: a.X + f*(b.X-a.X), Y: a.Y + f*(b.Y-a.Y), W: a.W + f*(b.W-a.W), H: a.H + f*(b.H-a.H)}
					it.Matched = false
					out = append(out, Result{Frame: m, Track: it})
				}
			}
			out = append(out, Result{Frame: s.frame, Track: s.tr})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Frame != out[j].Frame {
			return out[i].Frame < out[j].Frame
		}
		return out[i].Track.ID < out[j].Track.ID
	})
	return out, nil
}
