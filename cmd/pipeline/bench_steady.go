package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// steadyWindow reads the meter when the frame a tenth of the way through
// the run leaves the pipeline and again a tenth before its end, so that the
// figures between the two leave out what a run does once: opening the
// source, every queue filling, each session's first (slow) inference, and
// the drain at the end, where the cores run out of frames before the
// detector does. Both readings fall while the pipeline is full, so the
// frames then part-way through it are alike at either end and their work
// cancels out.
type steadyWindow struct {
	from, to int64 // frames out at which the window opens and closes; 0: none
	m        *cpuMeter

	mu   sync.Mutex
	a, b cpuTotals
	got  int
	err  error
}

// minSteadyFrames is the shortest run that gets a steady window: below it
// a tenth of the frames is too few to leave the start-up behind.
const minSteadyFrames = 100

func newSteadyWindow(total int, m *cpuMeter) *steadyWindow {
	if total < minSteadyFrames {
		return &steadyWindow{}
	}
	skip := int64(total / 10)
	return &steadyWindow{from: skip, to: int64(total) - skip, m: m}
}

// passed is told the count of frames out each time one leaves.
func (w *steadyWindow) passed(n int64) {
	if w.from == 0 || (n != w.from && n != w.to) {
		return
	}
	t, err := w.m.totals()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = cmpErr(w.err, err)
	if n == w.from {
		w.a = t
	} else {
		w.b = t
	}
	w.got++
}

// steadyReport is the bench's accounting over the steady window.
type steadyReport struct {
	FromFrame int     `json:"from_frame"`
	ToFrame   int     `json:"to_frame"`
	FPS       float64 `json:"pipeline_fps"`
	// BareFPS is bare inference over the same share of its frames.
	BareFPS   float64    `json:"bare_inference_fps"`
	RatioBare float64    `json:"ratio_pipeline_bare"`
	CPU       *cpuReport `json:"cpu_per_frame"`
}

// result returns the window's report, or false when the run never reached
// both ends of it (a short file) or a reading failed.
func (w *steadyWindow) result() (*steadyReport, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.got != 2 || w.err != nil {
		return nil, false
	}
	frames := int(w.to - w.from)
	wall := w.b.run.at.Sub(w.a.run.at)
	if wall <= 0 {
		return nil, false
	}
	fps := float64(frames) / wall.Seconds()
	return &steadyReport{FromFrame: int(w.from), ToFrame: int(w.to), FPS: fps, CPU: perFrame(frames, w.a, w.b, fps)}, true
}

func (s *steadyReport) print(tw io.Writer) {
	c := s.CPU
	fmt.Fprintf(tw, "steady state\tframes %d-%d\t(start-up and drain left out)\n", s.FromFrame, s.ToFrame)
	fmt.Fprintf(tw, "  pipeline\t%.1f fps\tpipeline/bare = %.2f (bare %.1f fps over the same share of its frames)\n", s.FPS, s.RatioBare, s.BareFPS)
	parts := make([]string, 0, len(c.order))
	for _, n := range c.order {
		parts = append(parts, fmt.Sprintf("%s %.3f", n, c.StagesMs[n]))
	}
	fmt.Fprintf(tw, "  stages\t%.3f ms\t(%s)\n", c.StagesSumMs, strings.Join(parts, ", "))
	fmt.Fprintf(tw, "  runtime overhead\t%.3f ms\t(process %.3f ms - stages; GC %.3f ms)\n", c.OverheadMs, c.ProcessMs, c.GCMs)
	fmt.Fprintf(tw, "  ideal\t%.1f fps\tpipeline/ideal = %.2f\n", c.IdealFPS, c.RatioIdeal)
	fmt.Fprintf(tw, "  cores used\tthis process %.2f\tother processes %.2f\n", c.UsedCores, c.OtherCores)
}
