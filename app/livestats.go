package app

import (
	"sync"
	"time"

	"github.com/osprey-vision/osprey/metrics"
	"github.com/osprey-vision/osprey/stages"
)

// liveStats turns cumulative metrics into dashboards' per-second view
// (stages.Resources.Stats; the preview page's stats panel): FPS at the end of the pipeline and mean stage latency since the
// previous poll (so the page's chart moves), plus drops by stage/reason.
type liveStats struct {
	m *metrics.Metrics

	mu   sync.Mutex
	prev metrics.Snapshot
	at   time.Time
	last stages.LiveStats
}

func (p *liveStats) get() stages.LiveStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	// Polls closer than half a second apart share the last answer, so several
	// viewers do not shrink each other's windows.
	if !p.at.IsZero() && now.Sub(p.at) < 500*time.Millisecond {
		return p.last
	}
	cur := p.m.Snapshot()
	dt := now.Sub(p.at).Seconds()
	st := stages.LiveStats{FPS: map[string]float64{}, Drops: map[string]uint64{}, StageMs: map[string]float64{}}
	for name, s := range cur.Streams {
		if !p.at.IsZero() {
			st.FPS[name] = float64(s.Out-p.prev.Streams[name].Out) / dt
		}
		for k, v := range s.Drops {
			st.Drops[k] += v
		}
	}
	for name, s := range cur.Stages {
		ps := p.prev.Stages[name]
		if n := s.Count - ps.Count; n > 0 {
			st.StageMs[name] = (s.Mean*float64(s.Count) - ps.Mean*float64(ps.Count)) / float64(n)
		} else if ps.Count == 0 {
			st.StageMs[name] = s.Mean
		}
	}
	p.prev, p.at, p.last = cur, now, st
	return st
}
