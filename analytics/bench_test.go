package analytics

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/track"
)

// BenchmarkEngineUpdate measures one frame of 100 moving tracks against 4
// zones and 4 lines.
func BenchmarkEngineUpdate(b *testing.B) {
	cfg := Config{}
	for i := range 4 {
		o := float64(i) * 0.2
		cfg.Zones = append(cfg.Zones, Zone{Name: fmt.Sprint("z", i), Stream: "cam", LoiterAfter: time.Second,
			Polygon: [][2]float64{{o, 0.1}, {o + 0.15, 0.1}, {o + 0.15, 0.9}, {o, 0.9}}})
		cfg.Lines = append(cfg.Lines, Line{Name: fmt.Sprint("l", i), Stream: "cam", From: [2]float64{0, o + 0.1}, To: [2]float64{1, o + 0.1}})
	}
	e := New(cfg, "p", "cam")
	tracks := make([]track.Track, 100)
	f := 0
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		f++
		for i := range tracks {
			// Each track sweeps diagonally, so zones and lines keep firing.
			x := float64((i*7+f)%100) / 100
			y := float64((i*13+f)%100) / 100
			tracks[i] = person(uint64(i+1), x, y)
		}
		e.Update(tracks, nil, nil, fw, fh, uint64(f), t0.Add(time.Duration(f)*33*time.Millisecond))
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the process's user+system CPU time: on a shared machine
// wall time includes waiting for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
