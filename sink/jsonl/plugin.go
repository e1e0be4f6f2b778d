package jsonl

import (
	"os"

	"github.com/osprey-vision/osprey/stages"
)

// FileConfig is the `sinks.jsonl` section: events (and optionally one line
// per frame) appended to a file.
type FileConfig struct {
	// Path is the file to append to (created if missing).
	Path string `yaml:"path"`
	// Frames also writes one line per frame with its tracks.
	Frames bool `yaml:"frames"`
}

// StdoutConfig is the `sinks.stdout` section: events printed to standard
// output, one JSON object per line.
type StdoutConfig struct {
	Frames bool `yaml:"frames"`
}

// Plugin registers the JSONL file sink under `sinks.jsonl`.
func Plugin() stages.SinkPlugin {
	return stages.NewSinkPlugin("jsonl", func() FileConfig { return FileConfig{} },
		func(c *FileConfig, _ stages.Env) error {
			if c.Path == "" {
				return stages.Errorf("path", "required: the file to append events to")
			}
			return nil
		},
		func(c *FileConfig, res *stages.Resources) (stages.Sink, error) {
			return NewFile(res.Resolve(c.Path), c.Frames), nil
		})
}

// StdoutPlugin registers the standard-output sink under `sinks.stdout`.
func StdoutPlugin() stages.SinkPlugin {
	return stages.NewSinkPlugin("stdout", func() StdoutConfig { return StdoutConfig{} }, nil,
		func(c *StdoutConfig, _ *stages.Resources) (stages.Sink, error) {
			return NewWriter("stdout", os.Stdout, c.Frames), nil
		})
}
