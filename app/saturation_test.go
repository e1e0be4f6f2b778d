package app

import (
	"testing"
	"time"

	"github.com/osprey-vision/osprey/metrics"
)

// The detection path counts as saturated only while both the detect stage's
// workers and the CPUs are busy, enters at 85 %, leaves under 70 %, and
// decides once per one-second window.
func TestSaturationNeedsBusyStageAndCPU(t *testing.T) {
	m := metrics.New()
	clock := time.Unix(1_700_000_000, 0)
	cpu := 0.0
	s := newSaturation(m, "detect", 2)
	s.now = func() time.Time { return clock }
	s.cpuBusy = func() (float64, bool) { return cpu, true }

	// window advances the clock by one second in which the two detect
	// workers were busy stage of the time and the CPUs cpuFrac.
	window := func(stage, cpuFrac float64) bool {
		m.StageLatency("detect", time.Duration(stage*2*float64(time.Second)))
		clock = clock.Add(time.Second)
		cpu = cpuFrac
		return s.Saturated()
	}
	if s.Saturated() {
		t.Fatal("saturated before any window")
	}
	steps := []struct {
		stage, cpu float64
		want       bool
		why        string
	}{
		{0.95, 0.50, false, "busy detector, idle CPUs (a GPU detector): encoding costs it nothing"},
		{0.50, 0.95, false, "busy CPUs, detector keeping up"},
		{0.90, 0.90, true, "both busy"},
		{0.75, 0.75, true, "hysteresis: stays saturated above 70 %"},
		{0.95, 0.65, false, "CPUs fell under 70 %"},
		{0.80, 0.95, false, "detector at 80 % does not re-enter"},
		{0.99, 0.99, true, "both busy again"},
	}
	for i, st := range steps {
		if got := window(st.stage, st.cpu); got != st.want {
			t.Fatalf("window %d (stage %.2f, cpu %.2f): saturated %v, want %v: %s", i, st.stage, st.cpu, got, st.want, st.why)
		}
	}
	// Within a window the answer does not change.
	clock = clock.Add(500 * time.Millisecond)
	cpu = 0
	if !s.Saturated() {
		t.Fatal("the state changed before the window ended")
	}
}

// Without CPU counters (not Linux) the stage alone decides.
func TestSaturationWithoutCPUCounters(t *testing.T) {
	m := metrics.New()
	clock := time.Unix(1_700_000_000, 0)
	s := newSaturation(m, "detect", 1)
	s.now = func() time.Time { return clock }
	s.cpuBusy = func() (float64, bool) { return 0, false }
	s.Saturated()
	m.StageLatency("detect", 900*time.Millisecond)
	clock = clock.Add(time.Second)
	if !s.Saturated() {
		t.Fatal("a detector busy 90 % of the time is saturated when the CPU load is unknown")
	}
}
