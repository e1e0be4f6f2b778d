package capture

import (
	"github.com/osprey-vision/osprey/stages"
)

// Schemes are the stream URL schemes capture serves ("" and bare paths are
// files).
var Schemes = []string{"file", "rtsp", "rtsps", "v4l2", "gst", "test"}

// Defaults returns a stream config with every default set.
func Defaults() Config {
	var c Config
	c.ApplyDefaults()
	return c
}

// Plugin registers capture as the source of its URL schemes.
func Plugin() stages.SourcePlugin {
	return stages.NewSourcePlugin(Schemes, Defaults,
		func(c *Config, _ stages.Env) error { return c.Validate() },
		func(c *Config, res *stages.Resources) (stages.Source, error) {
			return New(*c, res.Log, res.SourceState)
		})
}

// Paced reports whether the stream is read like a camera (realtime or
// looping) rather than as fast as possible; the config loader picks live
// mode for any paced stream.
func (c *Config) Paced() bool { return c.Realtime || c.Loop }

// Camera reports whether the stream is a live camera, a source that can be
// lost and reconnected (RTSP, V4L2, GStreamer), rather than a recording or a
// test pattern; stages use it to pick defaults meant for cameras (motion
// gating).
func (c *Config) Camera() bool {
	ep, err := parseURL(c.URL)
	return err == nil && ep.kind.live()
}
