// Package gate decides, frame by frame, whether a stream's detector runs and
// on what: nothing, regions around motion and tracks, or the full frame. It
// is pure logic on frame timestamps, so offline runs decide exactly as live
// ones do.
package gate

import "time"

// Mode is what the detector runs on for one frame.
type Mode int

const (
	// Skip runs no detector: the tracker predicts.
	Skip Mode = iota
	// Regions runs the detector on crops around motion and tracks.
	Regions
	// FullFrame runs the detector on the whole frame.
	FullFrame
)

// String names the mode for logs and metrics.
func (m Mode) String() string {
	switch m {
	case Skip:
		return "skip"
	case Regions:
		return "regions"
	case FullFrame:
		return "full_frame"
	}
	return "unknown"
}

// Reason says why a decision was taken; its value is a metric label.
type Reason string

// The reasons, in the order Decide checks them.
const (
	ReasonFirst       Reason = "first"        // first frame of the stream
	ReasonMotionError Reason = "motion_error" // the motion stage failed on this frame
	ReasonCalibrating Reason = "calibrating"  // background being (re)built after a whole-frame change
	ReasonRefresh     Reason = "refresh"      // refresh interval since the last full-frame run
	ReasonRetry       Reason = "retry"        // the last full-frame run was dropped before the detector
	ReasonMotion      Reason = "motion"       // motion boxes (and moving tracks)
	ReasonMoving      Reason = "moving_track" // no motion boxes, but a track still moves
	ReasonStationary  Reason = "stationary"   // stationary tracks due a re-check
	ReasonIdle        Reason = "idle"         // nothing moves: skip
)

// Policy holds the intervals the gate enforces.
type Policy struct {
	// Refresh is the longest time between full-frame runs, catching what
	// motion missed; 0 disables the refresh.
	Refresh time.Duration
	// StationaryRecheck is how often stationary tracks are re-checked by the
	// detector when nothing else runs; 0 re-checks them on every frame.
	StationaryRecheck time.Duration
	// Phase brings the first refresh forward by this much (0..Refresh), so
	// streams started together do not all refresh on the same frame: a
	// burst of full-frame runs that every camera's next frames wait behind.
	Phase time.Duration
}

// Input is what the gate knows about one frame.
type Input struct {
	// Time is the frame's timestamp.
	Time time.Time
	// Motion is set when the motion detector reported at least one box.
	Motion bool
	// Calibrating is set while the motion detector rebuilds its background
	// (stream start, whole-frame change): its boxes mean nothing then.
	Calibrating bool
	// MotionFailed is set when the motion detector returned an error.
	MotionFailed bool
	// MovingTracks and StationaryTracks count the stream's active tracks.
	MovingTracks, StationaryTracks int
}

// Decision is the gate's answer for one frame.
type Decision struct {
	Mode   Mode
	Reason Reason
	// Stationary is set when stationary tracks' boxes belong in the
	// regions (or are covered by the full frame) this frame; otherwise the
	// regions are cut around motion and moving tracks only.
	Stationary bool
}

// Gate holds one stream's gating state. The zero value is not usable; use
// New. A Gate is not safe for concurrent use: one stream, one goroutine.
type Gate struct {
	p                        Policy
	started, retry           bool
	lastFull, lastStationary time.Time
}

// New returns a gate enforcing p.
func New(p Policy) *Gate { return &Gate{p: p} }

// Decide returns what to run for the frame in and records it: a full-frame
// decision restarts the refresh and stationary clocks, a decision that
// covers stationary tracks restarts the stationary clock. When the region
// planner turns a Regions decision into a full-frame run, report it with
// RanFullFrame so the refresh is not spent twice.
func (g *Gate) Decide(in Input) Decision {
	d := g.decide(in)
	switch {
	case d.Mode == FullFrame:
		g.RanFullFrame(in.Time)
		if d.Reason == ReasonFirst {
			g.lastFull = in.Time.Add(-min(max(g.p.Phase, 0), g.p.Refresh))
		}
	case d.Stationary:
		g.lastStationary = in.Time
	}
	g.started = true
	return d
}

func (g *Gate) decide(in Input) Decision {
	full := func(r Reason) Decision { return Decision{Mode: FullFrame, Reason: r, Stationary: true} }
	switch {
	case !g.started:
		return full(ReasonFirst)
	case in.MotionFailed:
		return full(ReasonMotionError)
	case in.Calibrating:
		return full(ReasonCalibrating)
	case g.retry:
		return full(ReasonRetry)
	case g.p.Refresh > 0 && in.Time.Sub(g.lastFull) >= g.p.Refresh:
		return full(ReasonRefresh)
	}
	recheck := in.StationaryTracks > 0 && in.Time.Sub(g.lastStationary) >= g.p.StationaryRecheck
	switch {
	case in.Motion:
		return Decision{Mode: Regions, Reason: ReasonMotion, Stationary: recheck}
	case in.MovingTracks > 0:
		return Decision{Mode: Regions, Reason: ReasonMoving, Stationary: recheck}
	case recheck:
		return Decision{Mode: Regions, Reason: ReasonStationary, Stationary: true}
	}
	return Decision{Mode: Skip, Reason: ReasonIdle}
}

// Missed records that a full-frame run the gate asked for never happened
// (the frame was dropped on the way to the detector): the next frame runs
// the full frame again (reason retry).
func (g *Gate) Missed() { g.retry = true }

// RanFullFrame records a full-frame run at t (for example when the region
// planner fell back to the full frame).
func (g *Gate) RanFullFrame(t time.Time) {
	g.lastFull, g.lastStationary, g.retry = t, t, false
}
