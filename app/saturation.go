package app

import (
	"sync"
	"time"

	"github.com/osprey-vision/osprey/internal/cpuload"
	"github.com/osprey-vision/osprey/metrics"
)

// Saturation thresholds, with hysteresis so the preview does not flap at
// the edge: the detection path is saturated once the detect stage is busy
// enterBusy of the time with the CPUs busy enterBusy of the time, and stays
// so until either falls under leaveBusy.
const (
	enterBusy        = 0.85
	leaveBusy        = 0.70
	saturationWindow = time.Second
)

// saturation tells the preview whether the detection path is saturated: its
// workers are busy nearly all the time and the CPUs are too, so every cycle
// the preview spends is a cycle the detector loses. A detector saturated on
// a GPU with idle CPUs is not: encoding costs it nothing there.
type saturation struct {
	m       *metrics.Metrics
	stage   string
	workers int

	// cpuBusy and now are the CPU sampler and clock (tests replace them).
	cpuBusy func() (float64, bool)
	now     func() time.Time

	mu        sync.Mutex
	at        time.Time     // start of the current window
	busy      time.Duration // the stage's busy time at
	saturated bool
}

func newSaturation(m *metrics.Metrics, stage string, workers int) *saturation {
	var cpu cpuload.Sampler
	return &saturation{m: m, stage: stage, workers: max(workers, 1), cpuBusy: cpu.Busy, now: time.Now}
}

// Saturated reports the state decided at the end of the last full window
// (one second). It is cheap: the preview calls it for every frame.
func (s *saturation) Saturated() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.at.IsZero() {
		s.at, s.busy = now, s.m.StageBusy(s.stage)
		s.cpuBusy()
		return false
	}
	dt := now.Sub(s.at)
	if dt < saturationWindow {
		return s.saturated
	}
	busy := s.m.StageBusy(s.stage)
	stage := float64(busy-s.busy) / float64(dt) / float64(s.workers)
	cpu, ok := s.cpuBusy()
	s.at, s.busy = now, busy
	if !ok {
		cpu = 1 // no CPU counters: go by the stage alone
	}
	if s.saturated {
		s.saturated = stage >= leaveBusy && cpu >= leaveBusy
	} else {
		s.saturated = stage >= enterBusy && cpu >= enterBusy
	}
	return s.saturated
}
