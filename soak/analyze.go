package soak

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Trend is the verdict on one metric over the samples after warm-up.
type Trend struct {
	Name string
	Unit string
	// First, Last, Min, Max and Median are over the analysed samples.
	First, Last, Min, Max, Median float64
	// PerMinute is the least-squares slope in Unit per minute.
	PerMinute float64
	// Growth is PerMinute over the analysed span: how much the fitted line rose.
	Growth float64
	// Limit is the most Growth allowed.
	Limit float64
	// OK reports Growth <= Limit (true when not Judged).
	OK bool
	// Judged is false for a metric the run was too short to judge.
	Judged bool
}

// Report is the analysis of a soak run.
type Report struct {
	Samples  int
	Analysed int
	Span     time.Duration
	Trends   []Trend
	// OK reports every trend flat.
	OK bool
}

// RSSMinSpan is the shortest analysed span over which RSS is judged. glibc
// keeps freed pages in its per-thread arenas, so RSS wanders by tens of MiB
// for the first minutes while the bytes in use stay flat; over a shorter
// span the heap metric (C and Go bytes in use) carries the memory verdict.
const RSSMinSpan = 5 * time.Minute

// Analyze fits a line to each metric over the samples after the first warmup
// fraction (0..1) and judges it flat when its rise over the analysed span
// stays within a tolerance: heap in use (C allocator plus live Go heap)
// max(16 MiB, 8% of its median), RSS max(24 MiB, 8%) when the span is at
// least RSSMinSpan, goroutines and open fds max(3, 5%), gocv Mats max(8, 50%:
// frames in flight vary with the queues), and the latency p99 of the last
// third of the span within 1.5x + 10 ms of the first third. A real leak grows
// without bound, so over a long run it exceeds any such constant; short runs
// only catch fast leaks.
func Analyze(samples []Sample, warmup float64) Report {
	skip := int(math.Floor(warmup * float64(len(samples))))
	if len(samples)-skip < 3 {
		skip = max(0, len(samples)-3)
	}
	s := samples[skip:]
	rep := Report{Samples: len(samples), Analysed: len(s), OK: true}
	if len(s) < 2 {
		rep.OK = false
		return rep
	}
	rep.Span = s[len(s)-1].At - s[0].At
	col := func(f func(Sample) float64) []float64 {
		out := make([]float64, len(s))
		for i, x := range s {
			out[i] = f(x)
		}
		return out
	}
	add := func(name, unit string, ys []float64, limit func(median float64) float64) {
		t := trend(s, ys)
		t.Name, t.Unit = name, unit
		t.Limit = limit(t.Median)
		t.Judged = true
		t.OK = t.Growth <= t.Limit
		rep.Trends = append(rep.Trends, t)
	}
	if s[0].Heap() > 0 {
		add("heap", "MiB", col(func(x Sample) float64 { return float64(x.Heap()) / (1 << 20) }),
			func(m float64) float64 { return max(16, 0.08*m) })
	}
	add("rss", "MiB", col(func(x Sample) float64 { return float64(x.RSS) / (1 << 20) }),
		func(m float64) float64 { return max(24, 0.08*m) })
	if rss := &rep.Trends[len(rep.Trends)-1]; rep.Span < RSSMinSpan {
		rss.Judged, rss.OK = false, true
	}
	add("goroutines", "", col(func(x Sample) float64 { return float64(x.Goroutines) }),
		func(m float64) float64 { return max(3, 0.05*m) })
	add("fds", "", col(func(x Sample) float64 { return float64(x.FDs) }),
		func(m float64) float64 { return max(3, 0.05*m) })
	if s[0].Mats >= 0 {
		add("mats", "", col(func(x Sample) float64 { return float64(x.Mats) }),
			func(m float64) float64 { return max(8, 0.5*m) })
	}
	// Latency: compare the thirds rather than fit, p99 is noisy per interval.
	p99 := col(func(x Sample) float64 { return x.P99 })
	t := trend(s, p99)
	t.Name, t.Unit = "p99", "ms"
	n := max(1, len(p99)/3)
	first, last := mean(p99[:n]), mean(p99[len(p99)-n:])
	t.Growth = last - first
	t.Limit = 0.5*first + 10
	t.Judged = true
	t.OK = t.Growth <= t.Limit
	rep.Trends = append(rep.Trends, t)
	for _, t := range rep.Trends {
		rep.OK = rep.OK && t.OK
	}
	return rep
}

func trend(s []Sample, ys []float64) Trend {
	xs := make([]float64, len(s))
	for i, x := range s {
		xs[i] = x.At.Minutes()
	}
	slope := Slope(xs, ys)
	sorted := slices.Clone(ys)
	slices.Sort(sorted)
	return Trend{
		First: ys[0], Last: ys[len(ys)-1], Min: sorted[0], Max: sorted[len(sorted)-1],
		Median:    sorted[len(sorted)/2],
		PerMinute: slope,
		Growth:    slope * (xs[len(xs)-1] - xs[0]),
	}
}

// Slope is the least-squares slope of ys over xs (0 when xs do not vary).
func Slope(xs, ys []float64) float64 {
	mx, my := mean(xs), mean(ys)
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var t float64
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

// WriteTable prints the samples and the verdict as plain text.
func WriteTable(w io.Writer, samples []Sample, rep Report) {
	fmt.Fprintf(w, "%8s %9s %9s %10s %5s %6s %8s %7s\n", "t", "rss_MiB", "heap_MiB", "goroutines", "fds", "mats", "p99_ms", "frames")
	for _, x := range samples {
		mats := "-"
		if x.Mats >= 0 {
			mats = fmt.Sprint(x.Mats)
		}
		fmt.Fprintf(w, "%8s %9.1f %9.1f %10d %5d %6s %8.1f %7d\n", x.At.Round(time.Second), float64(x.RSS)/(1<<20), float64(x.Heap())/(1<<20), x.Goroutines, x.FDs, mats, x.P99, x.Frames)
	}
	fmt.Fprintf(w, "\nanalysed %d of %d samples over %s (after warm-up)\n", rep.Analysed, rep.Samples, rep.Span.Round(time.Second))
	fmt.Fprintf(w, "%-10s %10s %10s %10s %12s %10s %10s  %s\n", "metric", "first", "last", "median", "slope/min", "growth", "limit", "verdict")
	for _, t := range rep.Trends {
		v := "flat"
		switch {
		case !t.Judged:
			v = fmt.Sprintf("not judged (span under %s)", RSSMinSpan)
		case !t.OK:
			v = "GROWING"
		}
		name := t.Name
		if t.Unit != "" {
			name += "_" + t.Unit
		}
		fmt.Fprintf(w, "%-10s %10.1f %10.1f %10.1f %12.3f %10.2f %10.2f  %s\n", name, t.First, t.Last, t.Median, t.PerMinute, t.Growth, t.Limit, v)
	}
	if rep.OK {
		fmt.Fprintln(w, "soak: PASS (every judged metric flat after warm-up)")
	} else {
		fmt.Fprintln(w, "soak: FAIL (a metric grew beyond its limit, see above)")
	}
}
