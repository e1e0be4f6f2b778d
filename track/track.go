// Package track assigns stable identities to detections over time, per stream.
//
// The Tracker follows ByteTrack: high-score detections are associated first,
// low-score ones then extend tracks the first pass left unmatched, each pass
// solved as a min-cost assignment (Hungarian method) on 1-IoU between Kalman
// predicted boxes and detections of the same class. Tracks live through
// tentative -> confirmed -> lost -> removed, aged by wall-clock time so the
// same configuration works at any frame rate. See docs/tracking.md.
package track

import (
	"time"

	"github.com/osprey-vision/osprey/geom"
)

// Track is the tracker's view of one object on one frame.
type Track struct {
	// ID is unique per stream for the life of the pipeline, starting at 1.
	ID      uint64
	ClassID int
	Label   string
	// Box is the current estimate, in frame pixels: on a matched frame the
	// Kalman estimate after folding in the detection (or the detection
	// itself with Config.Box "detection"), otherwise the motion model's
	// prediction.
	Box   geom.Rect
	Score float64
	// Matched is true when a detection was associated on this frame.
	Matched bool
	// Confirmed is true once the track has passed its tentative phase.
	Confirmed bool
	// Start is the time of the track's first detection.
	Start time.Time
	// LastSeen is the time of the track's latest matched detection.
	LastSeen time.Time
	// Hits counts the detections associated with the track so far.
	Hits int
}

// Duration returns how long the object has been seen: LastSeen - Start.
func (t Track) Duration() time.Duration { return t.LastSeen.Sub(t.Start) }
