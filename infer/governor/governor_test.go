package governor

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

var plotPath = flag.String("plot", "", "write the doubled-load timeline SVG here (docs/governor.svg)")

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func feed(g *Governor, lat time.Duration, n int, at time.Time) (changes int) {
	for i := 0; i < n; i++ {
		if _, ch := g.Observe(lat, at); ch {
			changes++
		}
	}
	return changes
}

func TestHysteresis(t *testing.T) {
	cfg := Config{TargetP99: 100 * time.Millisecond, Window: 10, DownAfter: 2, UpAfter: 3, Headroom: 0.7,
		Levels: []Level{{Name: "fp32"}, {Name: "int8"}, {Name: "int8-every2", Every: 2}}}
	g := New(cfg)
	now := time.Unix(0, 0)
	// In the band between headroom (70ms) and target: nothing moves.
	if n := feed(g, ms(90), 100, now); n != 0 || g.Level() != 0 {
		t.Fatalf("in-band latency changed level %d times, level %d", n, g.Level())
	}
	// One window over target is not enough with DownAfter 2 ...
	feed(g, ms(150), 10, now)
	if g.Level() != 0 {
		t.Fatalf("stepped down after one window, want two")
	}
	// ... the second is.
	feed(g, ms(150), 10, now)
	if g.Level() != 1 {
		t.Fatalf("level %d after two windows over target, want 1", g.Level())
	}
	// Headroom for two windows: not yet up (UpAfter 3), the third steps up.
	feed(g, ms(50), 20, now)
	if g.Level() != 1 {
		t.Fatalf("stepped up after two windows, want three")
	}
	feed(g, ms(50), 10, now)
	if g.Level() != 0 {
		t.Fatalf("level %d after three windows with headroom, want 0", g.Level())
	}
	// The step up failed at once: stepping up again from level 1 now needs
	// twice the windows.
	feed(g, ms(150), 20, now)
	if g.Level() != 1 {
		t.Fatalf("level %d, want 1", g.Level())
	}
	feed(g, ms(50), 50, now)
	if g.Level() != 1 {
		t.Fatalf("retried the failed level after 5 windows, want 6")
	}
	feed(g, ms(50), 10, now)
	if g.Level() != 0 {
		t.Fatalf("level %d after 6 windows with headroom, want 0", g.Level())
	}
	if got := len(g.Changes()); got != 4 {
		t.Fatalf("%d changes recorded, want 4", got)
	}
	// The p99 of a window, not its mean: one slow sample in 10 is the p99.
	g2 := New(cfg)
	for w := 0; w < 2; w++ {
		feed(g2, ms(10), 9, now)
		feed(g2, ms(500), 1, now)
	}
	if g2.Level() != 1 || g2.LastP99() != ms(500) {
		t.Fatalf("level %d p99 %v, want 1 and 500ms", g2.Level(), g2.LastP99())
	}
	// Never past the fastest level.
	feed(g2, ms(500), 200, now)
	if g2.Level() != 2 || g2.Current().Name != "int8-every2" {
		t.Fatalf("level %d %q, want the last level", g2.Level(), g2.Current().Name)
	}
}

func TestValidate(t *testing.T) {
	ok := Config{TargetP99: time.Second, Levels: []Level{{Name: "a"}}}
	tests := []struct {
		name string
		mod  func(*Config)
		err  string
	}{
		{"ok", func(*Config) {}, ""},
		{"no target", func(c *Config) { c.TargetP99 = 0 }, "target_p99: must be > 0 (e.g. 120ms)"},
		{"no levels", func(c *Config) { c.Levels = nil }, "levels: empty: list at least one level, best quality first"},
		{"bad threads", func(c *Config) { c.Levels[0].Threads = -1 }, "levels[0].threads: must be >= 0 (0: the model's threads), got -1"},
		{"bad headroom", func(c *Config) { c.Headroom = 1.5 }, "headroom: must be in (0,1), got 1.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.Levels = []Level{{Name: "a"}}
			tc.mod(&c)
			err := c.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tc.err || !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want %q", err, tc.err)
			}
		})
	}
}

// simLevel is how the slowed detector behaves at one governor level.
type simLevel struct {
	service time.Duration // inference time at load 1
	every   int
}

// simResult is one processed frame.
type simResult struct {
	at      float64 // seconds
	latency time.Duration
	level   int
}

// simulate runs a camera at fps through a one-worker detector with a
// bounded "latest" queue (two waiting frames, the oldest dropped), like the
// detect stage. load(t) multiplies inference time (a second pipeline on the
// same cores). g == nil runs level 0 fixed.
func simulate(g *Governor, levels []simLevel, fps float64, dur time.Duration, load func(sec float64) float64) []simResult {
	rng := rand.New(rand.NewPCG(1, 2))
	interval := time.Duration(float64(time.Second) / fps)
	type job struct{ arrival time.Duration }
	var queue []job
	var out []simResult
	var busyUntil time.Duration
	level := 0
	frame := 0
	epoch := time.Unix(0, 0)
	for now := time.Duration(0); now < dur; now += interval {
		// Finish every job that can start and complete before this frame.
		for len(queue) > 0 && busyUntil <= now {
			j := queue[0]
			queue = queue[1:]
			start := max(busyUntil, j.arrival)
			l := levels[level]
			jitter := math.Exp(rng.NormFloat64() * 0.2)
			svc := time.Duration(float64(l.service) * load(start.Seconds()) * jitter)
			busyUntil = start + svc
			lat := busyUntil - j.arrival
			out = append(out, simResult{at: busyUntil.Seconds(), latency: lat, level: level})
			if g != nil {
				level, _ = g.Observe(lat, epoch.Add(busyUntil))
			}
		}
		every := max(levels[level].every, 1)
		if frame%every == 0 {
			queue = append(queue, job{arrival: now})
			if len(queue) > 2 {
				queue = queue[1:] // latest policy: drop the oldest waiting frame
			}
		}
		frame++
	}
	return out
}

func p99Between(rs []simResult, from, to float64) time.Duration {
	var xs []time.Duration
	for _, r := range rs {
		if r.at >= from && r.at < to {
			xs = append(xs, r.latency)
		}
	}
	return percentile(xs, 0.99)
}

func TestDoubledLoad(t *testing.T) {
	target := 120 * time.Millisecond
	levels := []Level{
		{Name: "fp32, every frame"},
		{Name: "int8, every frame", Variant: "int8.onnx"},
		{Name: "int8, every 2nd", Variant: "int8.onnx", Every: 2},
		{Name: "pruned int8, every 3rd", Variant: "int8.p40.onnx", Every: 3},
	}
	// FP32 45ms, INT8 1.65x faster, a pruned INT8 variant ~0.56x its work.
	sim := []simLevel{{ms(45), 1}, {ms(27), 1}, {ms(27), 2}, {ms(15), 3}}
	const fps = 15.0
	load := func(s float64) float64 {
		if s >= 40 && s < 80 {
			return 2
		}
		return 1
	}
	dur := 120 * time.Second
	fixed := simulate(nil, sim, fps, dur, load)
	g := New(Config{TargetP99: target, Window: 30, DownAfter: 1, UpAfter: 3, Headroom: 0.7, Levels: levels})
	gov := simulate(g, sim, fps, dur, load)

	// Normal load: the fixed FP32 configuration holds the budget.
	if p := p99Between(fixed, 5, 40); p > target {
		t.Fatalf("fixed config p99 %v under normal load, want <= %v (simulation badly tuned)", p, target)
	}
	// Doubled load: fixed misses it, the governor holds it once adapted
	// (allow 10 s to step down).
	pf, pg := p99Between(fixed, 50, 80), p99Between(gov, 50, 80)
	t.Logf("doubled load p99: fixed %v, governed %v (target %v)", pf, pg, target)
	if pf <= target {
		t.Fatalf("fixed config p99 %v under doubled load is within target: the test proves nothing", pf)
	}
	if pg > target {
		t.Fatalf("governed p99 %v under doubled load, want <= %v", pg, target)
	}
	// Load back to normal: back to full quality, and within budget.
	if p := p99Between(gov, 100, 120); p > target {
		t.Fatalf("governed p99 %v after the load dropped, want <= %v", p, target)
	}
	if last := gov[len(gov)-1].level; last != 0 {
		t.Fatalf("governor ended at level %d after the load dropped, want 0", last)
	}
	// No oscillation: a handful of changes, not one per window.
	ch := g.Changes()
	if len(ch) > 8 {
		t.Fatalf("%d level changes in 120 s, want a few: %+v", len(ch), ch)
	}
	for _, c := range ch {
		t.Logf("t=%5.1fs level %d -> %d (window p99 %v)", c.At.Sub(time.Unix(0, 0)).Seconds(), c.From, c.To, c.P99)
	}

	plot := timelinePlot(fixed, gov, levels, target)
	var buf bytes.Buffer
	if err := WriteSVG(&buf, plot); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("plot is not well-formed SVG: %v", err)
		}
	}
	if !strings.Contains(buf.String(), "target 120 ms") {
		t.Fatalf("plot lacks the target line label")
	}
	if *plotPath != "" {
		if err := os.WriteFile(*plotPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// timelinePlot turns both runs into 2-second-window p99 series.
func timelinePlot(fixed, gov []simResult, levels []Level, target time.Duration) Plot {
	series := func(rs []simResult, name, color string, dashed bool) Series {
		s := Series{Name: name, Color: color, Dashed: dashed}
		for t0 := 0.0; t0 < 120; t0 += 2 {
			s.X = append(s.X, t0+2)
			s.Y = append(s.Y, float64(p99Between(rs, t0, t0+2))/float64(time.Millisecond))
		}
		return s
	}
	p := Plot{
		Title:    "Latency governor: p99 per 2 s window, load doubled from 40 s to 80 s (simulated detector)",
		TargetMs: float64(target) / float64(time.Millisecond),
		Series: []Series{
			series(fixed, "fixed (fp32, every frame)", "#c0392b", true),
			series(gov, "governed", "#1f4e9c", false),
		},
		ShadeFrom: 40, ShadeTo: 80, ShadeLabel: "2x load",
	}
	for _, l := range levels {
		p.LevelNames = append(p.LevelNames, l.Name)
	}
	for _, r := range gov {
		if len(p.Level) == 0 || p.Level[len(p.Level)-1] != r.level {
			p.LevelX = append(p.LevelX, r.at)
			p.Level = append(p.Level, r.level)
		}
	}
	p.LevelX = append(p.LevelX, gov[len(gov)-1].at)
	p.Level = append(p.Level, gov[len(gov)-1].level)
	return p
}
