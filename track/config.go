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
	// LostMatchIoU is the least IoU, in any pass, for a track that missed
	// its last inferred frame(s) and whose prediction has since moved more
	// than LostDrift box widths from where it was last seen: a prediction
	// that coasted that far uncorrected lands on neighbours (moving cameras,
	// turning people). 0: no stricter bound.
	LostMatchIoU float64 `yaml:"lost_match_iou"`
	// LostDrift is that distance, in widths of the last observed box.
	LostDrift float64 `yaml:"lost_drift"`
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
	// TentativeWindow is how long after its first detection a tentative
	// track may gather its MinHits, whether or not anyone looked meanwhile
	// (0: no limit). Without it, on a motion-gated camera a weak detection
	// seen once survived the skipped frames and was confirmed by the
	// full-frame refreshes tens of seconds later: a late, sometimes false,
	// track.started.
	TentativeWindow time.Duration `yaml:"tentative_window"`
	// MotionNoise is the Kalman filter's acceleration noise: standard
	// deviation per second², as a fraction of the box size.
	MotionNoise float64 `yaml:"motion_noise"`
	// MeasurementNoise is the detector's box noise: standard deviation as a
	// fraction of the box size.
	MeasurementNoise float64 `yaml:"measurement_noise"`
	// ConfirmScore confirms a new track at once, whatever MinHits says, when
	// the detection that starts it scores at least this much (0: never).
	// A confident detector rarely produces a false positive that high, and
	// waiting for MinHits costs every new object its first frames.
	ConfirmScore float64 `yaml:"confirm_score"`
	// ScoreQuantile makes HighScore and NewTrackScore adaptive: each is
	// raised to this quantile of the scores the stream's detector has given
	// so far (once it has given 50), so a detector that scores almost
	// everything above 0.9 gets stricter thresholds than one whose people
	// score 0.3 to 0.9 (0: fixed thresholds).
	ScoreQuantile float64 `yaml:"score_quantile"`
	// RecoverIoU enables a recovery pass after the first two: tracks still
	// unmatched are tried against the high-score detections left, by the
	// IoU of their last observed box (at least this much) instead of their
	// prediction (0: off).
	RecoverIoU float64 `yaml:"recover_iou"`
	// Reupdate re-runs a track's filter through interpolated observations
	// when it is found again after missed frames, so its velocity is not
	// the one it coasted on.
	Reupdate bool `yaml:"reupdate"`
	// CameraMotion enables camera-motion compensation from the detections
	// alone: on every inferred frame the median offset between confident
	// tracks' predictions and the detections they clearly match is taken
	// as the picture's own motion, and the tracks that missed the last
	// inferred frame are moved (and sped up) by it before association. For
	// moving, panning or hand-held cameras; on a fixed camera a group
	// walking together reads as camera motion.
	CameraMotion bool `yaml:"camera_motion"`
	// PartCover stops an unmatched detection from starting a track when at
	// least this fraction of its box lies inside the box of a confirmed
	// track matched on the same frame: a second box on part of a person
	// already tracked (0: off).
	PartCover float64 `yaml:"part_cover"`
	// Box is what a matched track reports as its box: BoxFiltered (the
	// Kalman estimate after folding in the detection, steadier than the
	// detector's box) or BoxDetection (the matched detection as it came).
	Box BoxSource `yaml:"box"`
}

// BoxSource says where a matched track's reported box comes from.
type BoxSource string

const (
	// BoxFiltered reports the Kalman filter's estimate after the update.
	BoxFiltered BoxSource = "filtered"
	// BoxDetection reports the matched detection's box unchanged.
	BoxDetection BoxSource = "detection"
)

// DefaultConfig returns the settings tuned on the real MOT15 development
// sequences and checked on the synthetic sets (see docs/tracking.md).
func DefaultConfig() Config {
	return Config{
		HighScore:         0.5,
		LowScore:          0.1,
		NewTrackScore:     0.6,
		ScoreQuantile:     0.15,
		MatchIoU:          0.15,
		LowMatchIoU:       0.4,
		LostMatchIoU:      0.4,
		LostDrift:         0.5,
		TentativeMatchIoU: 0.3,
		RecoverIoU:        0.3,
		Reupdate:          true,
		PartCover:         0.6,
		MinHits:           3,
		ConfirmScore:      0.9,
		MaxLost:           time.Second,
		TentativeMaxLost:  300 * time.Millisecond,
		TentativeWindow:   2 * time.Second,
		MotionNoise:       0.8,
		MeasurementNoise:  0.07,
		Box:               BoxFiltered,
	}
}

// SyntheticConfig returns the earlier defaults, tuned on the synthetic
// scenes only (detection boxes reported as they are, every detection above
// 0.5 in the first pass). Kept for comparison in docs/tracking.md.
func SyntheticConfig() Config {
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
		Box:               BoxDetection,
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
	if c.TentativeWindow < 0 {
		bad("tentative_window", "must be >= 0, got %v (0: no limit)", c.TentativeWindow)
	}
	pos := func(field string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			bad(field, "must be > 0, got %v", v)
		}
	}
	if math.IsNaN(c.LostDrift) || c.LostDrift < 0 {
		bad("lost_drift", "must be >= 0, got %v", c.LostDrift)
	}
	pos("motion_noise", c.MotionNoise)
	pos("measurement_noise", c.MeasurementNoise)
	unit("confirm_score", c.ConfirmScore)
	unit("recover_iou", c.RecoverIoU)
	unit("lost_match_iou", c.LostMatchIoU)
	unit("score_quantile", c.ScoreQuantile)
	unit("part_cover", c.PartCover)
	switch c.Box {
	case "", BoxFiltered, BoxDetection:
	default:
		bad("box", "must be %q or %q, got %q", BoxFiltered, BoxDetection, c.Box)
	}
	return errors.Join(errs...)
}
