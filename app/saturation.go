package app

import (
	"sync/atomic"
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
	saturationWindow = 500 * time.Millisecond
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

	at        time.Time     // start of the current window
	busy      time.Duration // the stage's busy time at
	saturated atomic.Bool
}

func newSaturation(m *metrics.Metrics, stage string, workers int) *saturation {
	var cpu cpuload.Sampler
	return &saturation{m: m, stage: stage, workers: max(workers, 1), cpuBusy: cpu.Busy, now: time.Now}
}

// Saturated reports the state decided at the end of the last window. It is
// a load: the preview calls it for every frame.
func (s *saturation) Saturated() bool { return s.saturated.Load() }

// start samples every window until the returned stop is called.
func (s *saturation) start() (stop func()) {
	s.sample()
	return every(saturationWindow, s.sample)
}

// sample closes the current window and decides the state from it. Only one
// goroutine calls it.
func (s *saturation) sample() {
	now, busy := s.now(), s.m.StageBusy(s.stage)
	cpu, ok := s.cpuBusy()
	prevAt, prevBusy := s.at, s.busy
	s.at, s.busy = now, busy
	dt := now.Sub(prevAt)
	if prevAt.IsZero() || dt <= 0 {
		return
	}
	stage := float64(busy-prevBusy) / float64(dt) / float64(s.workers)
	if !ok {
		cpu = 1 // no CPU counters: go by the stage alone
	}
	on := s.saturated.Load()
	if on {
		on = stage >= leaveBusy && cpu >= leaveBusy
	} else {
		on = stage >= enterBusy && cpu >= enterBusy
	}
	s.saturated.Store(on)
	s.m.SetStageLoad(s.stage, min(stage, 1), on)
}
