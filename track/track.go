// Package track assigns stable identities to detections over time, per stream.
package track

import "github.com/osprey-vision/osprey/geom"

// Track is the tracker's view of one object on one frame.
type Track struct {
	// ID is unique per stream for the life of the pipeline, starting at 1.
	ID      uint64
	ClassID int
	Label   string
	// Box is the current estimate, in frame pixels: the matched detection's box,
	// or the motion model's prediction when the object was not detected this frame.
	Box   geom.Rect
	Score float64
	// Matched is true when a detection was associated on this frame.
	Matched bool
	// Confirmed is true once the track has passed its tentative phase.
	Confirmed bool
}
