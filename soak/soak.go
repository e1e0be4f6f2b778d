// Package soak samples a long-running process's resources (RSS, heap in
// use, goroutines, open file descriptors, live gocv Mats, end-to-end latency
// p99) at a fixed interval and decides whether they stayed flat: a least-squares slope over
// the samples after a warm-up, compared with per-metric tolerances.
package soak

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/stages"
)

// Sample is one reading of the process.
type Sample struct {
	// At is the time since sampling started.
	At time.Duration
	// RSS is the resident set size in bytes.
	RSS uint64
	// CHeap is the C allocator's bytes in use (ReadCHeap).
	CHeap uint64
	// GoHeap is the live Go heap after the last collection (ReadGoHeap).
	GoHeap uint64
	// Goroutines is runtime.NumGoroutine.
	Goroutines int
	// FDs is the number of open file descriptors.
	FDs int
	// Mats is the live gocv Mat count; -1 when not built with -tags matprofile.
	Mats int
	// P99 is the end-to-end latency p99 of the frames seen since the previous
	// sample, in milliseconds (0 when none).
	P99 float64
	// Frames is the number of frames that reached the latency sink since the
	// previous sample.
	Frames int
}

// Heap is the bytes the process holds in use: C allocator plus live Go heap.
func (x Sample) Heap() uint64 { return x.CHeap + x.GoHeap }

// ReadRSS returns the resident set size of this process, from /proc.
func ReadRSS() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("soak: read rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("soak: parse VmRSS %q: %w", rest, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("soak: no VmRSS in /proc/self/status")
}

// CountFDs returns the number of open file descriptors of this process.
func CountFDs() (int, error) {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, fmt.Errorf("soak: count fds: %w", err)
	}
	return len(es), nil
}

// LatencySink is a frame sink that records each frame's capture-to-sink
// latency; the sampler takes the p99 of each interval from it. It never holds
// a frame.
type LatencySink struct {
	mu  sync.Mutex
	lat []float64
}

// Connect implements stages.Sink.
func (s *LatencySink) Connect(context.Context) error { return nil }

// Write implements stages.Sink: it records time since f.Captured.
func (s *LatencySink) Write(_ context.Context, f *stages.Frame) error {
	d := float64(time.Since(f.Captured)) / float64(time.Millisecond)
	s.mu.Lock()
	s.lat = append(s.lat, d)
	s.mu.Unlock()
	return nil
}

// Close implements stages.Sink.
func (s *LatencySink) Close(context.Context) error { return nil }

// take returns the p99 and count of the latencies since the last call.
func (s *LatencySink) take() (float64, int) {
	s.mu.Lock()
	lat := s.lat
	s.lat = nil
	s.mu.Unlock()
	return Percentile(lat, 0.99), len(lat)
}

// Percentile returns the q-quantile (0..1) of xs by nearest rank; 0 for none.
// It sorts xs.
func Percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// Sampler reads the process every interval until its context ends.
type Sampler struct {
	Interval time.Duration
	// Latency, when set, supplies the p99 of each interval.
	Latency *LatencySink
	// OnSample, when set, is called with each sample as it is taken.
	OnSample func(Sample)
}

// Take reads one sample now.
func (s *Sampler) Take(at time.Duration) Sample {
	smp := Sample{At: at, Goroutines: runtime.NumGoroutine(), Mats: -1}
	if n, ok := matcheck.Count(); ok {
		smp.Mats = n
	}
	smp.RSS, _ = ReadRSS()
	smp.CHeap, smp.GoHeap = ReadCHeap(), ReadGoHeap()
	smp.FDs, _ = CountFDs()
	if s.Latency != nil {
		smp.P99, smp.Frames = s.Latency.take()
	}
	return smp
}

// Run samples every Interval (first sample after one interval) until ctx is
// done and returns the samples.
func (s *Sampler) Run(ctx context.Context) []Sample {
	start := time.Now()
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	var out []Sample
	for {
		select {
		case <-ctx.Done():
			return out
		case now := <-tick.C:
			smp := s.Take(now.Sub(start))
			out = append(out, smp)
			if s.OnSample != nil {
				s.OnSample(smp)
			}
		}
	}
}
