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
	// Smooth writes the offline output, once the whole sequence has been
	// tracked: every confirmed track on all its matched frames (those while
	// tentative too), each box the fixed-interval smoother's estimate
	// (track.Smooth: the tracker's own Kalman model run forwards and
	// backwards over the track's detections), and the frames the track
	// missed in between on the smoother's path, except across a gap closed
	// by a detection the motion model finds inconsistent (track.GapGate).
	// It cannot be combined with Delay (a bounded-latency writer).
	Smooth bool
}

// Step is one frame fed to RunSteps: its number, its time, whether the
// detector ran on it, and what it found.
type Step struct {
	Frame    int
	At       time.Time
	Inferred bool
	Dets     []track.Detection
}

// RunSteps feeds steps (in strictly increasing time order) to a tracker built from cfg and
// returns what the writer reports: live (the confirmed tracks matched on
// each step), or with opts.Smooth the offline output (with MinStreak, of
// the tracks matched on that many consecutive steps). The lag writer
// (Delay, or MinStreak without Smooth) is RunWith's, for frame-numbered
// sequences, and is refused here.
func RunSteps(steps []Step, cfg track.Config, opts Options) ([]Result, error) {
	if opts.Delay != 0 || (!opts.Smooth && opts.MinStreak > 1) {
		return nil, fmt.Errorf("RunSteps: delay %v and min streak %d need RunWith's lag writer", opts.Delay, opts.MinStreak)
	}
	if opts.MinStreak < 0 {
		return nil, fmt.Errorf("min streak: must be >= 0, got %d", opts.MinStreak)
	}
	for i := 1; i < len(steps); i++ {
		if !steps[i].At.After(steps[i-1].At) {
			return nil, fmt.Errorf("step %d (frame %d): time %v is not after the previous step's", i, steps[i].Frame, steps[i].At)
		}
	}
	tr := track.New(cfg)
	// Every confirmed track's detections, in confirmation order.
	seen := map[uint64][]track.Sighting{}
	var ids []uint64
	class := map[uint64]track.Track{}
	var obs []track.Sighting
	var out []Result
	for _, st := range steps {
		up := tr.Update(st.Dets, st.At, st.Inferred)
		if !opts.Smooth {
			for _, t := range up.Tracks {
				if t.Matched {
					out = append(out, Result{Frame: st.Frame, Track: t})
				}
			}
			continue
		}
		for _, t := range up.Started {
			ids = append(ids, t.ID)
			class[t.ID] = t
		}
		for _, e := range up.Earlier {
			seen[e.ID] = append(seen[e.ID], e)
		}
		obs = tr.Observations(obs[:0])
		for _, o := range obs {
			seen[o.ID] = append(seen[o.ID], o)
		}
	}
	if !opts.Smooth {
		return out, nil
	}
	// frameOf maps a step's time to its index.
	idx := make(map[time.Time]int, len(steps))
	times := make([]time.Time, len(steps))
	for i, st := range steps {
		idx[st.At] = i
		times[i] = st.At
	}
	// IDs come in confirmation order, which is ID order: each step's
	// results come out sorted by ID.
	byStep := make([][]Result, len(steps))
	for _, id := range ids {
		ss := seen[id]
		if len(ss) == 0 {
			continue
		}
		if k := opts.MinStreak; k > 1 && !hasStreak(ss, idx, k) {
			continue
		}
		lo, hi := idx[ss[0].At], idx[ss[len(ss)-1].At]
		c := class[id]
		base := track.Track{ID: id, ClassID: c.ClassID, Label: c.Label, Confirmed: true, Start: c.Start}
		boxes, ok := track.Smooth(cfg, ss, times[lo:hi+1])
		k := 0
		for i := range boxes {
			at := times[lo+i]
			for k < len(ss) && ss[k].At.Before(at) {
				k++
			}
			matched := k < len(ss) && ss[k].At.Equal(at)
			if !ok[i] {
				continue // in a gap the smoother does not bridge
			}
			t := base
			t.Box, t.Matched = boxes[i], matched
			if k < len(ss) {
				t.Score = ss[k].Score // a gap takes the score of the detection that closes it
			}
			byStep[lo+i] = append(byStep[lo+i], Result{Frame: steps[lo+i].Frame, Track: t})
		}
	}
	n := 0
	for _, rs := range byStep {
		n += len(rs)
	}
	out = make([]Result, 0, n)
	for _, rs := range byStep {
		out = append(out, rs...)
	}
	return out, nil
}

// hasStreak reports whether a track's sightings include k on consecutive
// steps.
func hasStreak(ss []track.Sighting, idx map[time.Time]int, k int) bool {
	run := 0
	for i, s := range ss {
		if i > 0 && idx[ss[i-1].At] == idx[s.At]-1 {
			run++
		} else {
			run = 1
		}
		if run >= k {
			return true
		}
	}
	return false
}

// Steps turns detection frames into RunSteps input: one step per frame from
// 1 to the last frame with detections (frames without any are steps too),
// frame n at (n-1)/fps seconds, every detection class 0 ("person").
func Steps(frames []Frame, fps float64) []Step {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	step := float64(time.Second) / fps
	last := 0
	if len(frames) > 0 {
		last = frames[len(frames)-1].Number
	}
	out := make([]Step, 0, last)
	next := 0
	for n := 1; n <= last; n++ {
		st := Step{Frame: n, At: start.Add(time.Duration(float64(n-1) * step)), Inferred: true}
		if next < len(frames) && frames[next].Number == n {
			for _, r := range frames[next].Rows {
				st.Dets = append(st.Dets, track.Detection{Box: r.Box, Label: "person", Score: r.Conf})
			}
			next++
		}
		out = append(out, st)
	}
	return out
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
	if opts.Smooth {
		if opts.Delay != 0 {
			return nil, fmt.Errorf("delay: the smoothed (offline) output has no lag to set, got %v", opts.Delay)
		}
		return RunSteps(Steps(frames, fps), cfg, opts)
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
