// Package stages holds Osprey's contracts (Frame, Source, Stage, Sink), the
// registry that maps YAML type names to constructors, and the runner that owns
// every goroutine and queue between them. Implementations live in capture/,
// infer/ and sink/.
package stages

import (
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/track"
)

// Frame is one decoded picture from one stream and everything learned about it
// on its way through the pipeline.
//
// Ownership: Image (a BGR gocv.Mat) is reference counted. NewFrame returns a
// frame with one reference held by the caller. Whoever passes a frame to two
// consumers calls Retain once more first; every holder calls Release exactly
// once when done. The last Release closes the Mat, so every Mat is closed
// exactly once. A sink that keeps the image after Write returns must Retain it
// (and Release later); the runner releases its own reference after Write.
// The metadata fields may be read concurrently by several sinks once the frame
// has left the last stage, but only stages (one at a time) write them.
type Frame struct {
	// Stream is the stream ID from the pipeline YAML.
	Stream string
	// Seq numbers frames per stream from 1, in capture order. Gaps mean the
	// source skipped frames, not that the pipeline dropped them.
	Seq uint64
	// Captured is when the source returned the frame. It carries Go's monotonic
	// clock reading and is the start of every latency measurement.
	Captured time.Time
	// Deadline is Captured plus the pipeline's latency budget; zero when there is
	// no budget. A stage that receives a frame past its deadline drops it.
	Deadline time.Time
	// Image is the decoded frame (BGR, 8-bit). Use Retain/Release, never Close.
	Image gocv.Mat
	// Width and Height are the image size in pixels, kept after Image is released.
	Width, Height int

	// Input is the model input the preprocess stage made for this frame, in the
	// model's layout; the detect stage consumes it and sets it to nil.
	Input *infer.Input
	// Inferred is true when the detector ran on this frame; false when the frame
	// skipped inference (detect.every / max_fps) and the tracker only predicted.
	Inferred bool
	// Detections are the detector's output, in Image pixels.
	Detections []infer.Detection
	// Tracks are the tracker's tracks on this frame, in Image pixels.
	Tracks []track.Track
	// Events are what the analytics learned on this frame; delivered losslessly.
	Events []event.Event

	refs atomic.Int32
}

// NewFrame returns a frame owning img, with one reference held by the caller.
func NewFrame(stream string, seq uint64, img gocv.Mat) *Frame {
	f := &Frame{Stream: stream, Seq: seq, Captured: time.Now(), Image: img, Width: img.Cols(), Height: img.Rows()}
	f.refs.Store(1)
	return f
}

// Retain adds a reference to the frame's image.
func (f *Frame) Retain() { f.refs.Add(1) }

// Release drops one reference; the last one closes the image. Releasing more
// times than retained is a bug and is ignored rather than double-closing.
func (f *Frame) Release() {
	n := f.refs.Add(-1)
	if n == 0 {
		if f.Input != nil {
			f.Input.Release()
			f.Input = nil
		}
		_ = f.Image.Close()
	}
}

// Refs returns the current reference count (for tests and leak checks).
func (f *Frame) Refs() int32 { return f.refs.Load() }

// Stale reports whether the frame is past its deadline at now.
func (f *Frame) Stale(now time.Time) bool {
	return !f.Deadline.IsZero() && now.After(f.Deadline)
}
