package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestLatencyQuantilesWithinBucketError(t *testing.T) {
	var l Latency
	for i := 1; i <= 1000; i++ {
		l.Observe(time.Duration(i) * time.Millisecond)
	}
	s := l.Summary()
	require.EqualValues(t, 1000, s.Count)
	require.InEpsilon(t, float64(500*time.Millisecond), float64(s.P50), 0.05)
	require.InEpsilon(t, float64(990*time.Millisecond), float64(s.P99), 0.05)
	require.Equal(t, time.Second, s.Max)
	require.InEpsilon(t, float64(500500*time.Microsecond), float64(s.Mean), 0.001)
	l.Reset()
	require.Zero(t, l.Summary().Count)
	require.Zero(t, l.Quantile(0.5))
}

func TestLatencyExtremes(t *testing.T) {
	var l Latency
	l.Observe(0)
	l.Observe(time.Hour)
	require.Equal(t, time.Hour, l.Quantile(1))
	require.LessOrEqual(t, l.Quantile(0.5), minLatency)
}

func TestMetricsSnapshotCountsDropsAndLatency(t *testing.T) {
	m := New()
	m.Frame("cam", "capture")
	m.Frame("cam", "capture")
	m.Dropped("cam", "detect", "stale")
	m.EndToEnd("cam", 20*time.Millisecond)
	m.StageLatency("detect", 10*time.Millisecond)
	m.SourceUp("cam", true)
	s := m.Snapshot()
	require.EqualValues(t, 2, s.Streams["cam"].In)
	require.EqualValues(t, 1, s.Streams["cam"].Out)
	require.EqualValues(t, 1, s.Streams["cam"].Drops["detect/stale"])
	require.True(t, s.Streams["cam"].Up)
	require.InDelta(t, 10, s.Stages["detect"].P50, 0.5)
	require.Equal(t, []string{"detect"}, s.StageNames())
}

func TestSnapshotReadsTheDetectorsInferenceCounter(t *testing.T) {
	m := New()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "osprey_inferences_total", Help: "h"}, []string{"stream"})
	require.NoError(t, m.Registry().Register(c))
	m.Frame("door", "capture")
	c.WithLabelValues("door").Add(7)
	require.Equal(t, uint64(7), m.Snapshot().Streams["door"].Inferences)
}
