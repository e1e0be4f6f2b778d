package preview

import "github.com/osprey-vision/osprey/internal/x264"

// newH264Encoder opens libx264 (package internal/x264, shared with the
// recorder) with the preview's settings.
func newH264Encoder(cfg Config, w, h int) (*x264.Encoder, error) {
	return x264.New(x264.Options{
		Width: w, Height: h, Kbps: cfg.Bitrate / 1000, FPS: int(cfg.MaxFPS),
		KeyframeInterval: cfg.KeyframeInterval, Threads: cfg.EncoderThreads,
	})
}
