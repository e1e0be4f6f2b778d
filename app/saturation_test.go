package app

import (
	"testing"
	"time"

	"github.com/osprey-vision/osprey/metrics"
)

// The detection path counts as saturated only while both the detect stage's
// workers and the CPUs are busy: it enters at 85 %, leaves under 70 %, and
// the state is exported as metrics.
func TestSaturationNeedsBusyStageAndCPU(t *testing.T) {
	m := metrics.New()
	clock := time.Unix(1_700_000_000, 0)
	cpu := 0.0
	s := newSaturation(m, "detect", 2)
	s.now = func() time.Time { return clock }
	s.cpuBusy = func() (float64, bool) { return cpu, true }
	s.sample()

	// window advances the clock by one window in which the two detect
	// workers were busy stage of the time and the CPUs cpuFrac.
	window := func(stage, cpuFrac float64) bool {
		m.StageLatency("detect", time.Duration(stage*2*float64(saturationWindow)))
		clock = clock.Add(saturationWindow)
		cpu = cpuFrac
		s.sample()
		return s.Saturated()
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
	if got := gauge(t, m, "osprey_stage_saturated"); got != 1 {
		t.Fatalf("osprey_stage_saturated = %v, want 1", got)
	}
	if got := gauge(t, m, "osprey_stage_busy_ratio"); got < 0.98 || got > 1 {
		t.Fatalf("osprey_stage_busy_ratio = %v, want 0.99", got)
	}
}

// gauge returns the exported value of the one-series gauge name.
func gauge(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not exported", name)
	return 0
}

// Without CPU counters (not Linux) the stage alone decides.
func TestSaturationWithoutCPUCounters(t *testing.T) {
	m := metrics.New()
	clock := time.Unix(1_700_000_000, 0)
	s := newSaturation(m, "detect", 1)
	s.now = func() time.Time { return clock }
	s.cpuBusy = func() (float64, bool) { return 0, false }
	s.sample()
	m.StageLatency("detect", saturationWindow*9/10)
	clock = clock.Add(saturationWindow)
	s.sample()
	if !s.Saturated() {
		t.Fatal("a detector busy 90 % of the time is saturated when the CPU load is unknown")
	}
}

// start samples on a ticker and stop ends the goroutine.
func TestSaturationStartStop(t *testing.T) {
	m := metrics.New()
	s := newSaturation(m, "detect", 1)
	s.cpuBusy = func() (float64, bool) { return 1, true }
	stop := s.start()
	deadline := time.Now().Add(10 * time.Second)
	for !s.Saturated() && time.Now().Before(deadline) {
		m.StageLatency("detect", 100*time.Millisecond) // busier than real time
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if !s.Saturated() {
		t.Fatal("a stage busy more than its wall time never became saturated")
	}
}
