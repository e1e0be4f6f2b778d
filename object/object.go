// Package object holds what the pipeline learns about the things in a frame:
// detections (one model output in one image) and tracks (an identity over
// time). It is a leaf: the contracts in stages carry these types without
// linking the inference runtime or the tracker.
package object

import (
	"time"

	"github.com/osprey-vision/osprey/geom"
)

// Detection is one object found in one image, in that image's pixel
// coordinates (after undoing resize/letterbox).
type Detection struct {
	ClassID    int       `json:"class_id"`
	Label      string    `json:"label"`
	Confidence float32   `json:"confidence"`
	Box        geom.Rect `json:"box"`
	// Keypoints are model-specific landmarks (BlazeFace: eyes, nose, mouth,
	// ears), in pixels; empty for plain detectors.
	Keypoints []geom.Point `json:"keypoints,omitempty"`
}

// Track is the tracker's view of one object on one frame.
type Track struct {
	// ID is unique per stream for the life of the pipeline, starting at 1.
	ID      uint64
	ClassID int
	Label   string
	// Box is the current estimate, in frame pixels: on a matched frame the
	// Kalman estimate after folding in the detection (or the detection
	// itself with the tracker's box: detection), otherwise the motion
	// model's prediction.
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
	// Attributes are secondary classifiers' answers about the object
	// (colour: red), the latest per attribute name; empty without a cascade.
	Attributes []Attribute
	// Children are secondary detectors' findings inside the track's box
	// (faces in a person), in frame pixels; empty without a cascade.
	Children []Detection
}

// Attribute is one secondary classifier's answer about a tracked object.
type Attribute struct {
	// Name is the attribute (the secondary model's name), Value the winning
	// label and Confidence its score.
	Name       string  `json:"name"`
	Value      string  `json:"value"`
	Confidence float32 `json:"confidence"`
}

// Duration returns how long the object has been seen: LastSeen - Start.
func (t Track) Duration() time.Duration { return t.LastSeen.Sub(t.Start) }
