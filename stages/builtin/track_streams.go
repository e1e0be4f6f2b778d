package builtin

import (
	"github.com/osprey-vision/osprey/analytics"
	"github.com/osprey-vision/osprey/event"
)

// SetAnalytics swaps in new zones and lines (hot reload). The listed streams
// get a new analytics engine built from acfg; their trackers are kept, so
// track IDs continue. The new engine starts with no zone membership, so a
// track already inside a zone is reported entering it again on its next
// frame. Streams not listed keep their engine; streams seen later use acfg.
func (t *Track) SetAnalytics(acfg analytics.Config, streams []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.acfg = acfg
	for _, id := range streams {
		if s := t.streams[id]; s != nil {
			s.engine = analytics.New(acfg, t.pipeline, id)
		}
	}
}

// ForgetStream drops a removed stream's tracker and engine (hot reload). Its
// open tracks end: the track.ended and zone.left events are returned for the
// caller to emit. A stream of that ID added later starts fresh.
func (t *Track) ForgetStream(id string) []event.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.streams[id]
	if s == nil {
		return nil
	}
	delete(t.streams, id)
	ended := s.tracker.Flush()
	if len(ended) == 0 {
		return nil
	}
	return s.engine.Update(nil, nil, ended, s.w, s.h, s.seq, t.ended(s))
}
