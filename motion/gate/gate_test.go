package gate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDecideSequence(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	g := New(Policy{Refresh: 10 * time.Second, StationaryRecheck: 2 * time.Second})
	steps := []struct {
		in   Input
		want Decision
	}{
		{Input{Time: at(0)}, Decision{FullFrame, ReasonFirst, true}},
		{Input{Time: at(100)}, Decision{Skip, ReasonIdle, false}},
		{Input{Time: at(200), Motion: true}, Decision{Regions, ReasonMotion, false}},
		{Input{Time: at(300), MovingTracks: 1}, Decision{Regions, ReasonMoving, false}},
		// The person stopped: stationary, last covered by the full frame at 0.
		{Input{Time: at(1900), StationaryTracks: 1}, Decision{Skip, ReasonIdle, false}},
		{Input{Time: at(2000), StationaryTracks: 1}, Decision{Regions, ReasonStationary, true}},
		{Input{Time: at(2100), StationaryTracks: 1}, Decision{Skip, ReasonIdle, false}},
		// Motion elsewhere runs regions; the stationary track is not due yet.
		{Input{Time: at(3000), Motion: true, StationaryTracks: 1}, Decision{Regions, ReasonMotion, false}},
		{Input{Time: at(4000), Motion: true, StationaryTracks: 1}, Decision{Regions, ReasonMotion, true}},
		// Lights switched: full frame until the background is rebuilt.
		{Input{Time: at(5000), Calibrating: true}, Decision{FullFrame, ReasonCalibrating, true}},
		{Input{Time: at(5100), Calibrating: true}, Decision{FullFrame, ReasonCalibrating, true}},
		{Input{Time: at(5200)}, Decision{Skip, ReasonIdle, false}},
		{Input{Time: at(5300), MotionFailed: true}, Decision{FullFrame, ReasonMotionError, true}},
		// Refresh counts from the last full-frame run (5300).
		{Input{Time: at(15200)}, Decision{Skip, ReasonIdle, false}},
		{Input{Time: at(15300)}, Decision{FullFrame, ReasonRefresh, true}},
		{Input{Time: at(15400), Motion: true}, Decision{Regions, ReasonMotion, false}},
	}
	for i, s := range steps {
		require.Equal(t, s.want, g.Decide(s.in), "step %d at %v", i, s.in.Time.Sub(t0))
	}
}

func TestRanFullFramePostponesRefresh(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	g := New(Policy{Refresh: 10 * time.Second, StationaryRecheck: time.Second})
	g.Decide(Input{Time: t0})
	require.Equal(t, Regions, g.Decide(Input{Time: t0.Add(5 * time.Second), Motion: true}).Mode)
	g.RanFullFrame(t0.Add(5 * time.Second)) // the planner fell back to the full frame
	require.Equal(t, Decision{Skip, ReasonIdle, false}, g.Decide(Input{Time: t0.Add(14 * time.Second), StationaryTracks: 0}))
	require.Equal(t, Decision{FullFrame, ReasonRefresh, true}, g.Decide(Input{Time: t0.Add(15 * time.Second)}))
}

func TestZeroIntervals(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	g := New(Policy{})
	g.Decide(Input{Time: t0})
	// No refresh ever; stationary tracks every frame.
	require.Equal(t, Decision{Skip, ReasonIdle, false}, g.Decide(Input{Time: t0.Add(time.Hour)}))
	require.Equal(t, Decision{Regions, ReasonStationary, true}, g.Decide(Input{Time: t0.Add(time.Hour + 1), StationaryTracks: 2}))
	require.Equal(t, Decision{Regions, ReasonStationary, true}, g.Decide(Input{Time: t0.Add(time.Hour + 2), StationaryTracks: 2}))
}

func TestModeString(t *testing.T) {
	require.Equal(t, []string{"skip", "regions", "full_frame", "unknown"},
		[]string{Skip.String(), Regions.String(), FullFrame.String(), Mode(7).String()})
}

// A full-frame run that never reached the detector is asked for again once,
// then the gate goes back to its rules.
func TestMissedFullFrameIsRetried(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	g := New(Policy{Refresh: 10 * time.Second, StationaryRecheck: time.Second})
	require.Equal(t, ReasonFirst, g.Decide(Input{Time: t0}).Reason)
	g.Missed() // the first frame was dropped before the detector
	require.Equal(t, Decision{FullFrame, ReasonRetry, true}, g.Decide(Input{Time: t0.Add(100 * time.Millisecond)}))
	require.Equal(t, Decision{Skip, ReasonIdle, false}, g.Decide(Input{Time: t0.Add(200 * time.Millisecond)}))
}

func TestPhaseBringsOnlyTheFirstRefreshForward(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	g := New(Policy{Refresh: 10 * time.Second, StationaryRecheck: time.Second, Phase: 3 * time.Second})
	require.Equal(t, ReasonFirst, g.Decide(Input{Time: at(0)}).Reason)
	require.Equal(t, Skip, g.Decide(Input{Time: at(6900)}).Mode)
	require.Equal(t, Decision{FullFrame, ReasonRefresh, true}, g.Decide(Input{Time: at(7000)}))
	// Later refreshes keep the full interval.
	require.Equal(t, Skip, g.Decide(Input{Time: at(16900)}).Mode)
	require.Equal(t, ReasonRefresh, g.Decide(Input{Time: at(17000)}).Reason)

	// A phase past the interval is held to it: the first refresh comes on
	// the next frame, never before the first full frame.
	g = New(Policy{Refresh: 10 * time.Second, Phase: time.Minute})
	require.Equal(t, ReasonFirst, g.Decide(Input{Time: at(0)}).Reason)
	require.Equal(t, ReasonRefresh, g.Decide(Input{Time: at(100)}).Reason)
}
