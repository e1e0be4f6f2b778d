package builtin

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/osprey-vision/osprey/analytics"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/track"
)

// Track runs one tracker and one analytics engine per stream. It sets
// f.Tracks and appends the events of the frame (track started/ended, zones,
// lines, loitering) to f.Events. Frames that skipped inference only advance
// the trackers' motion models.
type Track struct {
	mu       sync.Mutex
	onClose  func(stream string, evs ...event.Event)
	pipeline string
	cfg      track.Config
	acfg     analytics.Config
	streams  map[string]*streamTrack
	dets     []track.Detection
	// cur is the configuration built from, for Reconfigure's diff.
	cur TrackConfig
	// offline runs the trackers on the file's own clock (Frame.Media).
	offline bool
}

type streamTrack struct {
	tracker *track.Tracker
	engine  *analytics.Engine
	// tracks are the tracks of the latest frame (Tracks, for motion gating).
	tracks []track.Track
	w, h   int
	seq    uint64
	// last is the clock of the stream's latest frame; anchor and
	// anchorMedia tie the offline clock to the first frame's capture time.
	last, anchor, anchorMedia time.Time
}

// clock is the time the tracker and analytics run on: the capture time
// live, and offline the first frame's capture time advanced by the file's
// own position, so velocities, max_lost and dwell times come out the same
// however fast the file is read.
func (t *Track) clock(s *streamTrack, f *stages.Frame) time.Time {
	if !t.offline || f.Media.IsZero() {
		return f.Captured
	}
	if s.anchor.IsZero() {
		s.anchor, s.anchorMedia = f.Captured, f.Media
	}
	return s.anchor.Add(f.Media.Sub(s.anchorMedia))
}

// ended returns the time a stream's tracks end at when it is flushed: now
// live, its latest frame's clock offline.
func (t *Track) ended(s *streamTrack) time.Time {
	if t.offline && !s.last.IsZero() {
		return s.last
	}
	return time.Now()
}

// NewTrack returns the track stage.
func NewTrack(pipeline string, cfg track.Config, acfg analytics.Config) *Track {
	return &Track{pipeline: pipeline, cfg: cfg, acfg: acfg, streams: map[string]*streamTrack{}}
}

func (t *Track) stream(id string) *streamTrack {
	s := t.streams[id]
	if s == nil {
		s = &streamTrack{tracker: track.New(t.cfg), engine: analytics.New(t.acfg, t.pipeline, id)}
		t.streams[id] = s
	}
	return s
}

// Process implements stages.Stage.
func (t *Track) Process(ctx context.Context, f *stages.Frame) ([]*stages.Frame, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stream(f.Stream)
	t.dets = t.dets[:0]
	for _, d := range f.Detections {
		t.dets = append(t.dets, track.Detection{Box: d.Box, ClassID: d.ClassID, Label: d.Label, Score: float64(d.Confidence)})
	}
	now := t.clock(s, f)
	var up track.Update
	switch fo := f.Focus; {
	case fo.Skip:
		// Motion gating skipped the detector: nobody looked for anything.
		up = s.tracker.UpdateFocused(nil, now, false, lookedNowhere)
	case f.Inferred && len(fo.Regions) > 0:
		up = s.tracker.UpdateFocused(t.dets, now, true, func(b geom.Rect) bool { return insideAny(b, fo.Regions) })
	default:
		up = s.tracker.Update(t.dets, now, f.Inferred)
	}
	f.Tracks = up.Tracks
	s.tracks = up.Tracks
	f.Events = append(f.Events, s.engine.Update(up.Tracks, up.Started, up.Ended, f.Width, f.Height, f.Seq, now)...)
	s.w, s.h, s.seq, s.last = f.Width, f.Height, f.Seq, now
	return []*stages.Frame{f}, nil
}

// Counts returns each stream's analytics counters. Safe while running.
func (t *Track) Counts() map[string]analytics.Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]analytics.Counts, len(t.streams))
	for id, s := range t.streams {
		out[id] = s.engine.Counts()
	}
	return out
}

// OnClose sets where the events of tracks still open at shutdown go (the
// runner's Emit): each open track ends, leaving its zones.
func (t *Track) OnClose(emit func(stream string, evs ...event.Event)) { t.onClose = emit }

// Close implements stages.Stage: it flushes every stream's tracker so open
// tracks end with track.ended (and zone.left) events.
func (t *Track) Close(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.onClose == nil {
		return nil
	}
	for id, s := range t.streams {
		ended := s.tracker.Flush()
		if len(ended) == 0 {
			continue
		}
		if evs := s.engine.Update(nil, nil, ended, s.w, s.h, s.seq, t.ended(s)); len(evs) > 0 {
			t.onClose(id, evs...)
		}
	}
	return nil
}

// Tracks returns a stream's tracks on its latest frame (a copy), for motion
// gating ahead of the detector.
func (t *Track) Tracks(stream string) []track.Track {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.streams[stream]; s != nil {
		return slices.Clone(s.tracks)
	}
	return nil
}

func lookedNowhere(geom.Rect) bool { return false }

// insideAny reports whether b's centre lies in one of the regions: the
// detector saw the object there, so not finding it counts as a miss.
func insideAny(b geom.Rect, regions []geom.Rect) bool {
	cx, cy := b.X+b.W/2, b.Y+b.H/2
	for _, r := range regions {
		if cx >= r.X && cx <= r.X+r.W && cy >= r.Y && cy <= r.Y+r.H {
			return true
		}
	}
	return false
}
