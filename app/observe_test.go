package app

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/metrics"
)

// The status line shows, per stream, the rates over the last interval,
// detector runs included: with motion gating they fall far below frames out.
func TestStatusLineShowsDetectorRuns(t *testing.T) {
	prev := metrics.Snapshot{Streams: map[string]metrics.StreamSnapshot{
		"door": {In: 100, Out: 90, Inferences: 10, Up: true},
	}}
	cur := metrics.Snapshot{Streams: map[string]metrics.StreamSnapshot{
		"door": {In: 120, Out: 110, Inferences: 11, Up: true, Drops: map[string]uint64{"detect/stale": 2}, E2EP50: 40, E2EP99: 90},
	}}
	require.Equal(t, "door: in 10.0 out 10.0 fps, detector 0.5/s, drops 2 (+stale 2), e2e p50 40ms p99 90ms",
		StatusLine(prev, cur, 2*time.Second))
}
