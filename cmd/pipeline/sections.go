package main

import (
	"fmt"

	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/stages/builtin"
)

// loadPipeline loads a pipeline file against the built-in components.
func loadPipeline(path string) (*config.Pipeline, error) {
	return config.Load(path, components.Builtin())
}

// The tools (bench, soak) read and adjust the built-in components' sections.

// detectSection returns the pipeline's `model:`/`detect:` settings.
func detectSection(cfg *config.Pipeline) (*builtin.DetectConfig, error) {
	c, ok := config.StageConfig[builtin.DetectConfig](cfg, "detect")
	if !ok {
		return nil, fmt.Errorf("%s: the pipeline has no detect stage", cfg.File)
	}
	return c, nil
}

// trackSection returns the pipeline's `track:`/zones/lines settings.
func trackSection(cfg *config.Pipeline) (*builtin.TrackConfig, error) {
	c, ok := config.StageConfig[builtin.TrackConfig](cfg, "track")
	if !ok {
		return nil, fmt.Errorf("%s: the pipeline has no track stage", cfg.File)
	}
	return c, nil
}

// captureConfig returns a stream's capture settings, or nil when another
// source serves its scheme.
func captureConfig(s config.Stream) *capture.Config {
	c, _ := s.Config.(*capture.Config)
	return c
}
