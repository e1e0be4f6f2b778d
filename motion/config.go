// Package motion finds what moves in a stream's frames, cheaply, so the
// detector runs only where and when something does (issue 13). A Detector
// keeps a running-average background of a small grey copy of each frame and
// reports motion boxes in frame pixels; package region turns those boxes into
// detector crops and package gate decides per frame whether to run at all.
package motion

import (
	"errors"
	"math"
	"time"

	"github.com/osprey-vision/osprey/motion/region"
	"github.com/osprey-vision/osprey/stages"
)

// Config is a stream's `motion` section. The first eight keys are the names
// issue 13 fixed for users; the rest are tuning keys with safe defaults.
type Config struct {
	// Enabled turns motion gating on or off. Off, every frame runs the
	// detector on the full frame. Unset (nil), it is on for live cameras
	// (RTSP, V4L2, GStreamer) and off for recordings and test patterns,
	// whose runs are analyses that should see every frame (see On).
	Enabled *bool `yaml:"enabled"`
	// Threshold is the grey-level change (0-255, after contrast
	// normalisation) a pixel needs to count as moving.
	Threshold int `yaml:"threshold"`
	// MinArea is the smallest motion blob reported, in pixels of the
	// downscaled motion frame (frame_height rows), so one value suits every
	// camera resolution. Blobs are measured after dilation.
	MinArea int `yaml:"min_area"`
	// FrameHeight is the height the frame is scaled down to before motion
	// detection; the width keeps the aspect ratio. Frames smaller than this
	// are used as they are.
	FrameHeight int `yaml:"frame_height"`
	// Masks are polygons where motion is ignored (a clock overlay, a tree
	// in the wind), each a list of [x, y] points in normalised frame
	// coordinates: (0,0) top-left, (1,1) bottom-right.
	Masks [][][]float64 `yaml:"masks"`
	// Regions configures the crops cut around motion and tracks.
	Regions region.Config `yaml:"regions"`
	// Refresh is the longest time between full-frame detector runs, to catch
	// what motion missed; 0 turns the refresh off.
	Refresh time.Duration `yaml:"refresh"`
	// StationaryRecheck is how often the detector re-checks tracks that
	// stopped moving (a parked car, a person standing) when nothing else
	// runs; 0 re-checks them every frame. The tracker must not age tracks
	// on frames the gate skips, or its max_lost must exceed this.
	StationaryRecheck time.Duration `yaml:"stationary_recheck"`

	// Rate is the background's learning rate per frame: the weight of the
	// new frame in the running average. Higher adapts faster to slow light
	// changes but absorbs slow movers sooner.
	Rate float64 `yaml:"rate"`
	// Contrast stretches each motion frame's grey levels (1st to 99th
	// percentile, gain at most 4) so night and IR scenes, whose whole
	// picture spans a few grey levels, still show motion, and a uniform
	// exposure change cancels out.
	Contrast bool `yaml:"contrast"`
	// WholeFrameShare: when at least this share of the unmasked motion
	// frame changes at once, or the motion boxes cover at least this share
	// of the frame (lights switched, IR cut filter, camera bumped), the
	// background is rebuilt instead of motion being reported.
	WholeFrameShare float64 `yaml:"whole_frame_share"`
}

// Defaults returns the motion settings used where the config names none.
// Enabled is unset: On decides per stream.
func Defaults() Config {
	return Config{
		Threshold:         25,
		MinArea:           40,
		FrameHeight:       180,
		Regions:           region.Defaults(),
		Refresh:           10 * time.Second,
		StationaryRecheck: 5 * time.Second,
		Rate:              0.05,
		Contrast:          true,
		WholeFrameShare:   0.6,
	}
}

// On reports whether gating runs for a stream whose source is a live
// camera (camera true) or not: Enabled when set, otherwise camera. The
// default follows the accuracy guard of docs/motion.md.
func (c Config) On(camera bool) bool {
	if c.Enabled != nil {
		return *c.Enabled
	}
	return camera
}

// Validate reports every bad field at once (errors.Join), each a
// stages.FieldError at its path relative to the motion section, saying
// what to do.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, a ...any) { errs = append(errs, stages.Errorf(path, format, a...)) }
	if c.Threshold < 1 || c.Threshold > 255 {
		add("threshold", "must be in 1..255, got %d: it is the grey-level change a pixel needs to count as moving; 20-40 suits most cameras", c.Threshold)
	}
	if c.MinArea < 1 {
		add("min_area", "must be at least 1, got %d: it is the smallest motion blob, in pixels of the %d-row motion frame", c.MinArea, c.FrameHeight)
	}
	if c.FrameHeight < 36 || c.FrameHeight > 1080 {
		add("frame_height", "must be in 36..1080, got %d: lower loses small objects, higher costs CPU; 180 suits most cameras", c.FrameHeight)
	}
	errs = append(errs, stages.CheckMasks("masks", c.Masks)...)
	if err := c.Regions.Validate(); err != nil {
		errs = append(errs, stages.Under("regions", err))
	}
	if c.Refresh < 0 {
		add("refresh", "must not be negative, got %v: it is the longest time between full-frame runs (0 turns the refresh off)", c.Refresh)
	}
	if c.StationaryRecheck < 0 {
		add("stationary_recheck", "must not be negative, got %v: it is how often stopped tracks are re-checked (0 means every frame)", c.StationaryRecheck)
	}
	if math.IsNaN(c.Rate) || c.Rate <= 0 || c.Rate > 1 {
		add("rate", "must be in (0,1], got %g: it is the new frame's weight in the background average; 0.02-0.1 suits most cameras", c.Rate)
	}
	if math.IsNaN(c.WholeFrameShare) || c.WholeFrameShare <= 0 || c.WholeFrameShare > 1 {
		add("whole_frame_share", "must be in (0,1], got %g: it is the share of the frame that, changing at once, counts as a light change or camera bump, not motion", c.WholeFrameShare)
	}
	return errors.Join(errs...)
}
