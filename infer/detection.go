package infer

import "github.com/osprey-vision/osprey/geom"

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
