package main

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/internal/realpart"
)

const (
	benchModel = "../../models/ssd_mobilenet_v2_coco.onnx"
	benchVideo = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
)

// A short bench on the real SSD and vtest.avi: every millisecond of the
// process's CPU is either a stage's (decode included, on its own threads)
// or the runtime overhead, and the ideal rate follows from the stages; the
// same holds over the steady window, the middle 80% of the frames.
func TestBenchAccountsCPU(t *testing.T) {
	realpart.File(t, realpart.SSDModel, benchModel)
	realpart.File(t, realpart.SampleVideo, benchVideo)
	model, _ := filepath.Abs(benchModel)
	p := filepath.Join(t.TempDir(), "p.yaml")
	yaml := "name: t\nstreams:\n  - id: a\n    url: file://" + benchVideo + "\nmodel: { path: " + model + ", format: ssd, threads: 1 }\n" +
		"detect: { workers: 2, classes: [person] }\n"
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadPipeline(p)
	if err != nil {
		t.Fatal(err)
	}
	offline(cfg)
	res, err := runBench(context.Background(), cfg, 120, false, nil)
	if errors.Is(err, infer.ErrNoRuntime) {
		realpart.Missing(t, realpart.ORT, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := res.CPU
	if res.Frames != 120 || c == nil {
		t.Fatalf("frames %d, cpu report %v", res.Frames, c)
	}
	for _, st := range []string{"decode", "preprocess", "detect", "track"} {
		if c.StagesMs[st] <= 0 {
			t.Errorf("stage %s: %.3f ms per frame, want > 0 (all: %v)", st, c.StagesMs[st], c.StagesMs)
		}
	}
	// The decoder runs on its own named thread, not in the source's Read.
	if c.Helpers["decode"] < 1 || c.HelpersMs["decode"] <= 0 {
		t.Errorf("decode: %d helper threads, %.3f ms: the decoder thread was not seen", c.Helpers["decode"], c.HelpersMs["decode"])
	}
	var sum float64
	for _, v := range c.StagesMs {
		sum += v
	}
	if math.Abs(sum-c.StagesSumMs) > 1e-9 || math.Abs(c.StagesSumMs+c.OverheadMs-c.ProcessMs) > 1e-9 {
		t.Errorf("stages %.3f + overhead %.3f != process %.3f", c.StagesSumMs, c.OverheadMs, c.ProcessMs)
	}
	// Thread clocks are a part of the process clock: a negative overhead
	// beyond clock granularity means something was counted twice.
	if c.OverheadMs < -0.05*c.ProcessMs {
		t.Errorf("overhead %.3f ms of %.3f: CPU counted twice", c.OverheadMs, c.ProcessMs)
	}
	if want := float64(c.Cores) * 1000 / c.StagesSumMs; math.Abs(c.IdealFPS-want) > 1e-9 || c.RatioIdeal <= 0 {
		t.Errorf("ideal %.1f fps (want %.1f), pipeline/ideal %.2f", c.IdealFPS, want, c.RatioIdeal)
	}
	if c.BareMs <= 0 || c.AllocBytes <= 0 || c.CPU == "" {
		t.Errorf("bare %.3f ms, allocs %.0f B per frame, cpu %q", c.BareMs, c.AllocBytes, c.CPU)
	}

	s := res.Steady
	if s == nil {
		t.Fatal("no steady window on a 120-frame run")
	}
	if s.FromFrame != 12 || s.ToFrame != 108 || s.FPS <= 0 || s.BareFPS <= 0 || math.Abs(s.RatioBare-s.FPS/s.BareFPS) > 1e-9 {
		t.Errorf("steady window frames %d-%d, %.1f fps, bare %.1f fps, pipeline/bare %.2f", s.FromFrame, s.ToFrame, s.FPS, s.BareFPS, s.RatioBare)
	}
	sc := s.CPU
	for _, st := range []string{"decode", "preprocess", "detect", "track"} {
		if sc.StagesMs[st] <= 0 {
			t.Errorf("steady stage %s: %.3f ms per frame, want > 0 (all: %v)", st, sc.StagesMs[st], sc.StagesMs)
		}
	}
	if math.Abs(sc.StagesSumMs+sc.OverheadMs-sc.ProcessMs) > 1e-9 || sc.OverheadMs < -0.05*sc.ProcessMs {
		t.Errorf("steady: stages %.3f + overhead %.3f, process %.3f", sc.StagesSumMs, sc.OverheadMs, sc.ProcessMs)
	}
	// The window leaves out the start-up: its detect cost per frame cannot
	// exceed the whole run's by more than noise.
	if sc.StagesMs["detect"] > 1.5*c.StagesMs["detect"] {
		t.Errorf("steady detect %.3f ms per frame against %.3f over the whole run", sc.StagesMs["detect"], c.StagesMs["detect"])
	}
}

// A run too short for a steady window reports none rather than one from a
// handful of frames.
func TestSteadyWindowNeedsFrames(t *testing.T) {
	w := newSteadyWindow(minSteadyFrames-1, newCPUMeter())
	for n := int64(1); n < minSteadyFrames; n++ {
		w.passed(n)
	}
	if r, ok := w.result(); ok || r != nil {
		t.Fatalf("steady window on %d frames: %+v", minSteadyFrames-1, r)
	}
	w = newSteadyWindow(200, newCPUMeter())
	if w.from != 20 || w.to != 180 {
		t.Fatalf("200 frames: window %d-%d, want 20-180", w.from, w.to)
	}
	w.passed(20) // a file shorter than asked never reaches the far end
	if _, ok := w.result(); ok {
		t.Fatal("a window with one end reported")
	}
}

// go test ./cmd/pipeline -run '^$' -bench Measure: what timing one call
// costs (lock, tag, two clock readings, untag), about five calls a frame.
func BenchmarkMeasure(b *testing.B) {
	m := newCPUMeter()
	for b.Loop() {
		m.measure("x", 1, func() {})
	}
}
