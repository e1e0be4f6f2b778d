package soak

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

func series(n int, f func(i int) Sample) []Sample { return seriesEvery(n, 10*time.Second, f) }

func seriesEvery(n int, every time.Duration, f func(i int) Sample) []Sample {
	out := make([]Sample, n)
	for i := range out {
		out[i] = f(i)
		out[i].At = time.Duration(i) * every
	}
	return out
}

func TestAnalyzeFlatPasses(t *testing.T) {
	s := series(30, func(i int) Sample {
		return Sample{RSS: (200 + uint64(i%3)) << 20, Goroutines: 40 + i%2, FDs: 20, Mats: 10 + i%5, P99: 50 + float64(i%4)}
	})
	rep := Analyze(s, 0.2)
	if !rep.OK {
		t.Fatalf("flat series judged growing: %+v", rep.Trends)
	}
	if rep.Analysed != 24 {
		t.Errorf("analysed %d samples, want 24 after 20%% warm-up", rep.Analysed)
	}
}

func TestAnalyzeCatchesEachLeak(t *testing.T) {
	base := func(i int) Sample {
		return Sample{RSS: 200 << 20, CHeap: 70 << 20, GoHeap: 6 << 20, Goroutines: 40, FDs: 20, Mats: 10, P99: 50}
	}
	cases := map[string]func(i int) Sample{
		"heap":       func(i int) Sample { s := base(i); s.CHeap += uint64(i) << 20; return s },
		"goroutines": func(i int) Sample { s := base(i); s.Goroutines += i; return s },
		"fds":        func(i int) Sample { s := base(i); s.FDs += i / 2; return s },
		"mats":       func(i int) Sample { s := base(i); s.Mats += i; return s },
		"p99":        func(i int) Sample { s := base(i); s.P99 += float64(i * 5); return s },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			rep := Analyze(series(30, f), 0.2)
			if rep.OK {
				t.Fatal("leak not caught")
			}
			for _, tr := range rep.Trends {
				if (tr.Name == name) == tr.OK {
					t.Errorf("%s: ok=%v (growth %.2f, limit %.2f)", tr.Name, tr.OK, tr.Growth, tr.Limit)
				}
			}
		})
	}
}

// RSS is judged over a long span only: a leak there is caught, while the
// same RSS wander over 55 s, with the bytes in use flat, is not a verdict.
func TestAnalyzeRSSNeedsALongSpan(t *testing.T) {
	leak := func(i int) Sample {
		return Sample{RSS: (200 + uint64(i)) << 20, CHeap: 70 << 20, GoHeap: 6 << 20, Goroutines: 40, FDs: 20, Mats: 10, P99: 50}
	}
	rep := Analyze(seriesEvery(40, 20*time.Second, leak), 0.25) // 10 min analysed
	if rep.OK || rep.Trends[1].Name != "rss" || rep.Trends[1].OK || !rep.Trends[1].Judged {
		t.Fatalf("RSS leak of 3 MiB/min over 10 min not caught: %+v", rep.Trends)
	}
	// What a 75 s soak saw: RSS 287 -> 342 MiB in 70 s, in steps,
	// while the C heap in use stayed within 72-78 MiB.
	rss := []uint64{287, 304, 314, 326, 314, 316, 330, 329, 315, 332, 333, 337, 341, 342}
	heap := []uint64{76, 72, 75, 75, 75, 75, 76, 74, 75, 75, 74, 74, 78, 78}
	wander := seriesEvery(len(rss), 5*time.Second, func(i int) Sample {
		return Sample{RSS: rss[i] << 20, CHeap: heap[i] << 20, GoHeap: 6 << 20, Goroutines: 42, FDs: 20, Mats: 10, P99: 50}
	})
	rep = Analyze(wander, 0)
	if !rep.OK {
		t.Fatalf("allocator wander over 50 s judged a leak: %+v", rep.Trends)
	}
	if tr := rep.Trends[1]; tr.Name != "rss" || tr.Judged || tr.Growth < 24 {
		t.Fatalf("rss trend %+v: want growth over the limit, reported but not judged", tr)
	}
	var tab bytes.Buffer
	WriteTable(&tab, wander, rep)
	if !strings.Contains(tab.String(), "not judged") {
		t.Fatalf("table does not say RSS was not judged:\n%s", tab.String())
	}
}

func TestSlope(t *testing.T) {
	if got := Slope([]float64{0, 1, 2, 3}, []float64{1, 3, 5, 7}); math.Abs(got-2) > 1e-9 {
		t.Fatalf("slope %v, want 2", got)
	}
	if got := Percentile([]float64{5, 1, 4, 2, 3}, 0.99); got != 5 {
		t.Fatalf("p99 %v, want 5", got)
	}
}

func TestSamplerReadsThisProcess(t *testing.T) {
	ls := &LatencySink{}
	s := &Sampler{Interval: 20 * time.Millisecond, Latency: ls}
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Millisecond)
	defer cancel()
	got := s.Run(ctx)
	if len(got) < 3 {
		t.Fatalf("%d samples in 110ms at 20ms", len(got))
	}
	x := got[0]
	if x.RSS < 1<<20 || x.CHeap == 0 || x.Goroutines < 2 || x.FDs < 3 {
		t.Fatalf("implausible sample %+v", x)
	}
	var svg bytes.Buffer
	if err := WriteSVG(&svg, "test <run>", got); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(svg.String(), "<polyline") || !strings.Contains(svg.String(), "test &lt;run&gt;") {
		t.Fatalf("svg lacks plot or escaped title:\n%s", svg.String())
	}
	var tab bytes.Buffer
	WriteTable(&tab, got, Analyze(got, 0))
	if !strings.Contains(tab.String(), "soak: ") {
		t.Fatalf("table without verdict:\n%s", tab.String())
	}
}
