package track

import (
	"errors"
	"math"
	"time"

	"github.com/osprey-vision/osprey/stages"
)

// Config holds the tracker's thresholds. Scores are detector confidences in
// [0,1]; times are wall-clock so the tracker behaves the same at any frame
// rate. It decodes from the `track:` section of a pipeline YAML.
type Config struct {
	// HighScore splits detections: at or above it they take part in the
	// first association pass (and may start tracks).
	HighScore float64 `yaml:"high_score"`
	// LowScore is the floor below which detections are ignored; those in
	// [LowScore, HighScore) only extend existing tracks (second pass).
	LowScore float64 `yaml:"low_score"`
	// NewTrackScore is the least score for an unmatched detection to start a
	// new (tentative) track.
	NewTrackScore float64 `yaml:"new_track_score"`
	// MatchIoU is the least IoU between a track's predicted box and a
	// high-score detection for them to be associated.
	MatchIoU float64 `yaml:"match_iou"`
	// LowMatchIoU is the least IoU for a low-score detection (stricter: low
	// scores are often background).
	LowMatchIoU float64 `yaml:"low_match_iou"`
	// TentativeMatchIoU is the least IoU to extend a tentative track.
	TentativeMatchIoU float64 `yaml:"tentative_match_iou"`
	// MinHits is how many matched detections confirm a track (1: at once).
	// A track gets its ID when it is confirmed.
	MinHits int `yaml:"min_hits"`
	// MaxLost is how long a confirmed track survives without a matched
	// detection before it ends.
	MaxLost time.Duration `yaml:"max_lost"`
	// TentativeMaxLost is how long a tentative track survives without a
	// match; 0 drops it at its first miss.
	TentativeMaxLost time.Duration `yaml:"tentative_max_lost"`
	// MotionNoise is the Kalman filter's acceleration noise: standard
	// deviation per second², as a fraction of the box size.
	MotionNoise float64 `yaml:"motion_noise"`
	// MeasurementNoise is the detector's box noise: standard deviation as a
	// fraction of the box size.
	MeasurementNoise float64 `yaml:"measurement_noise"`
}

// DefaultConfig returns the settings the synthetic evaluation was tuned with
// (see docs/tracking.md).
func DefaultConfig() Config {
	return Config{
		HighScore:         0.5,
		LowScore:          0.1,
		NewTrackScore:     0.6,
		MatchIoU:          0.15,
		LowMatchIoU:       0.4,
		TentativeMatchIoU: 0.3,
		MinHits:           3,
		MaxLost:           time.Second,
		TentativeMaxLost:  300 * time.Millisecond,
		MotionNoise:       0.3,
		MeasurementNoise:  0.05,
	}
}

// Validate reports every invalid field at once; each error is a
// stages.FieldError at the field's yaml name (relative to `track:`).
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, stages.Errorf(field, format, args...))
	}
	unit := func(field string, v float64) {
		if math.IsNaN(v) || v < 0 || v > 1 {
			bad(field, "must be in [0,1], got %v", v)
		}
	}
	unit("high_score", c.HighScore)
	unit("low_score", c.LowScore)
	unit("new_track_score", c.NewTrackScore)
	if c.LowScore > c.HighScore {
		bad("low_score", "must be <= high_score (%v), got %v", c.HighScore, c.LowScore)
	}
	iou := func(field string, v float64) {
		if math.IsNaN(v) || v <= 0 || v > 1 {
			bad(field, "must be in (0,1], got %v", v)
		}
	}
	iou("match_iou", c.MatchIoU)
	iou("low_match_iou", c.LowMatchIoU)
	iou("tentative_match_iou", c.TentativeMatchIoU)
	if c.MinHits < 1 {
		bad("min_hits", "must be >= 1, got %d", c.MinHits)
	}
	if c.MaxLost <= 0 {
		bad("max_lost", "must be > 0, got %v", c.MaxLost)
	}
	if c.TentativeMaxLost < 0 {
		bad("tentative_max_lost", "must be >= 0, got %v", c.TentativeMaxLost)
	}
	pos := func(field string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			bad(field, "must be > 0, got %v", v)
		}
	}
	pos("motion_noise", c.MotionNoise)
	pos("measurement_noise", c.MeasurementNoise)
	return errors.Join(errs...)
}
