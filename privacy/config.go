// Package privacy redacts what leaves the analytics path (issue 16): faces
// or any other labels the detector, the tracker or a cascade found, and
// fixed mask polygons, are blurred, pixelated or filled in a copy of each
// frame's picture after the last analytics stage. Every sink (the WebRTC
// preview, MJPEG, snapshots, recordings) then reads the redacted copy;
// detection, tracking and the cascade have already run on the original.
package privacy

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/osprey-vision/osprey/stages"
)

// Method is how a region is redacted.
type Method string

// The redaction methods.
const (
	// Blur smooths the region with a box filter a third of its size, twice
	// (close to a Gaussian): shapes and colours stay, features go.
	Blur Method = "blur"
	// Pixelate replaces the region with about 8 blocks across its longer side.
	Pixelate Method = "pixelate"
	// Fill paints the region black.
	Fill Method = "fill"
)

// Config is a `privacy:` section, at the top of the pipeline file or inside
// a streams[] item (which overrides it for that stream key by key).
type Config struct {
	// Redact lists the labels whose boxes are redacted: detections, tracks
	// and tracks' children (a cascade's faces inside persons) carrying one.
	Redact []string `yaml:"redact"`
	// Method is blur, pixelate or fill.
	Method Method `yaml:"method"`
	// Masks are fixed polygons redacted on every frame (a neighbour's
	// window), each a list of [x, y] points in normalised frame
	// coordinates: (0,0) top-left, (1,1) bottom-right.
	Masks [][][]float64 `yaml:"masks"`
	// Padding grows each box by this share of its width and height on every
	// side, so a box that lags the object (a track's prediction) or a
	// detector's tight face box still covers hair, ears and chin.
	Padding float64 `yaml:"padding"`
}

// Defaults returns the settings used where the file names none: nothing is
// redacted until redact or masks say what.
func Defaults() Config { return Config{Method: Blur, Padding: 0.1} }

// Active reports whether c redacts anything.
func (c Config) Active() bool { return len(c.Redact) > 0 || len(c.Masks) > 0 }

// Validate reports every bad field at once, each a stages.FieldError at its
// path relative to the privacy section, saying what to do.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, a ...any) { errs = append(errs, stages.Errorf(path, format, a...)) }
	for i, l := range c.Redact {
		switch {
		case l == "":
			add(fmt.Sprintf("redact[%d]", i), "an empty label redacts nothing: name a detector label such as face or person")
		case slices.Index(c.Redact, l) < i:
			add(fmt.Sprintf("redact[%d]", i), "%q is listed twice", l)
		}
	}
	switch c.Method {
	case Blur, Pixelate, Fill:
	default:
		add("method", "%q is unknown: use blur, pixelate or fill", c.Method)
	}
	if math.IsNaN(c.Padding) || c.Padding < 0 || c.Padding > 1 {
		add("padding", "must be in 0..1, got %g: it grows each box by this share of its size on every side (0.1 suits faces)", c.Padding)
	}
	errs = append(errs, stages.CheckMasks("masks", c.Masks)...)
	return errors.Join(errs...)
}

// StageConfig is the privacy stage's configuration: the top-level
// `privacy:` section and each stream's override.
type StageConfig struct {
	Privacy Config `yaml:"privacy"`
	// Streams holds each overriding stream's settings by stream ID (the
	// loader fills it from streams[].privacy).
	Streams map[string]*Config `yaml:"-"`
}

// StageDefaults returns the stage's configuration with every default set.
func StageDefaults() StageConfig { return StageConfig{Privacy: Defaults()} }

// OverrideFor implements stages.StreamOverrider: a stream's `privacy:`
// decodes over a copy of the top-level section.
func (c *StageConfig) OverrideFor(_, stream string) any {
	if c.Streams == nil {
		c.Streams = map[string]*Config{}
	}
	cp := c.Privacy
	cp.Redact = slices.Clone(c.Privacy.Redact)
	cp.Masks = slices.Clone(c.Privacy.Masks)
	c.Streams[stream] = &cp
	return &cp
}

// For returns the settings that apply to stream.
func (c *StageConfig) For(stream string) Config {
	if s, ok := c.Streams[stream]; ok {
		return *s
	}
	return c.Privacy
}

// Active reports whether any stream redacts anything.
func (c *StageConfig) Active() bool {
	on := c.Privacy.Active()
	for _, s := range c.Streams {
		on = on || s.Active()
	}
	return on
}

// Validate checks the top-level section and every stream's override.
func (c *StageConfig) Validate(env stages.Env) error {
	errs := []error{stages.Under("privacy", c.Privacy.Validate())}
	for i, id := range env.Streams {
		if s, ok := c.Streams[id]; ok {
			errs = append(errs, stages.Under(fmt.Sprintf("streams[%d].privacy", i), s.Validate()))
		}
	}
	return errors.Join(errs...)
}
