package region

import (
	"errors"
	"fmt"
	"math"

	"github.com/osprey-vision/osprey/stages"
)

// Config says how motion and track boxes become detector crops. It is the
// `regions` key of a stream's motion section.
type Config struct {
	// Enabled crops regions around motion and tracks; false runs the
	// detector on the whole frame whenever the gate says to run.
	Enabled bool `yaml:"enabled"`
	// Max caps the regions per frame; more are merged, cheapest merge first.
	Max int `yaml:"max"`
	// Margin pads each box on every side by this share of its larger side
	// before clustering, so a person whose legs alone moved is cropped whole.
	Margin float64 `yaml:"margin"`
	// FullFrameShare: when the regions' total area reaches this share of the
	// frame, one full-frame run replaces them.
	FullFrameShare float64 `yaml:"full_frame_share"`
	// MaxDownscale is the most a crop may be scaled down to the model input
	// (1: never); a plan needing more runs the whole frame instead.
	MaxDownscale float64 `yaml:"max_downscale"`
}

// Defaults returns the region settings used when the config names none.
func Defaults() Config {
	return Config{Enabled: true, Max: 4, Margin: 0.25, FullFrameShare: 0.6, MaxDownscale: 1}
}

// Validate reports every bad field at once; each error starts with the field
// path relative to the regions section.
func (c Config) Validate() error {
	var errs []error
	if c.Max < 1 || c.Max > 16 {
		errs = append(errs, stages.Errorf("max", "must be in 1..16, got %d: each region is one detector run, so a high cap costs more than one full-frame run", c.Max))
	}
	if math.IsNaN(c.Margin) || c.Margin < 0 || c.Margin > 2 {
		errs = append(errs, stages.Errorf("margin", "must be in 0..2 (a share of a box's larger side), got %g", c.Margin))
	}
	if math.IsNaN(c.FullFrameShare) || c.FullFrameShare <= 0 || c.FullFrameShare > 1 {
		errs = append(errs, stages.Errorf("full_frame_share", "must be in (0,1] (a share of the frame area), got %g", c.FullFrameShare))
	}
	if math.IsNaN(c.MaxDownscale) || c.MaxDownscale < 1 || c.MaxDownscale > 10 {
		errs = append(errs, stages.Errorf("max_downscale", "must be in 1..10 (how much a crop may shrink to the model input; 1 never shrinks), got %g", c.MaxDownscale))
	}
	return errors.Join(errs...)
}

// CheckModelInput reports whether regions can be cut for a model whose input
// is w x h pixels; a dynamic input (a dimension <= 0) cannot be, because a
// region is sized from the model's input. The error starts with the field
// the user must change.
func CheckModelInput(w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("enabled: the model's input size is dynamic (%dx%d), so regions cannot be sized to it: set regions.enabled: false, or use a model with a fixed input size", w, h)
	}
	return nil
}
