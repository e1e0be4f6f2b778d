package config

import "fmt"

// MaxStreams is the most streams one pipeline may run. Every stream holds
// decode buffers and a capture goroutine, and one detector serves them all:
// past this, split the streams over several pipeline processes.
const MaxStreams = 64

// validateLimits reports resource limits a file exceeds. Streams are checked
// here; frame size is per stream (max_width/max_height, checked by capture).
func (p *Pipeline) validateLimits(add func(path string, err error)) {
	if n := len(p.Streams); n > MaxStreams {
		add("streams", fmt.Errorf("%d streams is more than the limit of %d per pipeline: split them over several pipeline files", n, MaxStreams))
	}
}
