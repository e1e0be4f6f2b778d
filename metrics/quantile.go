package metrics

import (
	"math"
	"sync"
	"time"
)

// Latency is a fixed-memory latency histogram with log-spaced buckets (about
// 4 % wide, 10 µs to 100 s) that answers quantiles with that relative error.
// Prometheus histograms give rates; this gives the p50/p99 the status line,
// `pipeline bench` and the preview page print. Safe for concurrent use.
type Latency struct {
	mu     sync.Mutex
	counts [bucketCount]uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	minLatency  = 10 * time.Microsecond
	growth      = 1.04
	bucketCount = 420 // 10µs * 1.04^420 ≈ 140 s
)

var logGrowth = math.Log(growth)

func bucketOf(d time.Duration) int {
	if d <= minLatency {
		return 0
	}
	i := int(math.Log(float64(d)/float64(minLatency))/logGrowth) + 1
	return min(i, bucketCount-1)
}

// upper returns the upper bound of bucket i.
func upper(i int) time.Duration {
	return time.Duration(float64(minLatency) * math.Pow(growth, float64(i)))
}

// Observe records one latency.
func (l *Latency) Observe(d time.Duration) {
	l.mu.Lock()
	l.counts[bucketOf(d)]++
	l.n++
	l.sum += d
	l.max = max(l.max, d)
	l.mu.Unlock()
}

// Summary is a snapshot of a Latency.
type Summary struct {
	Count          uint64
	Mean, P50, P99 time.Duration
	Max            time.Duration
}

// Summary returns count, mean, p50, p99 and max.
func (l *Latency) Summary() Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Summary{Count: l.n, Max: l.max}
	if l.n == 0 {
		return s
	}
	s.Mean = l.sum / time.Duration(l.n)
	s.P50 = l.quantileLocked(0.50)
	s.P99 = l.quantileLocked(0.99)
	return s
}

// Sum returns the total of every latency observed.
func (l *Latency) Sum() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sum
}

// Quantile returns the q-quantile (0 < q <= 1), or 0 when empty.
func (l *Latency) Quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.quantileLocked(q)
}

func (l *Latency) quantileLocked(q float64) time.Duration {
	if l.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(l.n)))
	var seen uint64
	for i, c := range l.counts {
		seen += c
		if seen >= rank {
			if i == bucketCount-1 { // the overflow bucket has no upper bound
				return l.max
			}
			return min(upper(i), l.max)
		}
	}
	return l.max
}

// Reset clears the histogram (the status line uses per-second windows).
func (l *Latency) Reset() {
	l.mu.Lock()
	l.counts = [bucketCount]uint64{}
	l.n, l.sum, l.max = 0, 0, 0
	l.mu.Unlock()
}
