// Package stages holds Osprey's contracts (Frame, Source, Stage, Sink), the
// registry that maps configuration keys and URL schemes to components, and
// the runner that owns every goroutine and queue between them.
// Implementations live in capture/, infer/, stages/builtin/ and sink/; the
// built-ins are listed in package components. This package links neither the
// inference runtime nor OpenCV: a frame's picture is an Image, and package
// picture gives components the gocv Mat behind it.
package stages

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/object"
)

// Image is a frame's decoded picture (BGR, 8-bit). Sources make it (a
// *gocv.Mat satisfies it); the frame owns it and closes it once, on its last
// Release. Components reach the pixels through package picture.
type Image interface {
	Cols() int
	Rows() int
	Close() error
}

// Frame is one decoded picture from one stream and everything learned about it
// on its way through the pipeline.
//
// Ownership: Image is reference counted. NewFrame returns a frame with one
// reference held by the caller. Whoever passes a frame to two consumers calls
// Retain once more first; every holder calls Release exactly once when done.
// The last Release runs the OnRelease hooks and closes the Image, so every Mat
// is closed exactly once. A sink that keeps the image after Write returns must
// Retain it (and Release later); the runner releases its own reference after
// Write. The metadata fields may be read concurrently by several sinks once the
// frame has left the last stage, but only stages (one at a time) write them.
type Frame struct {
	// Stream is the stream ID from the pipeline YAML.
	Stream string
	// Seq numbers frames per stream from 1, in capture order. Gaps mean the
	// source skipped frames, not that the pipeline dropped them.
	Seq uint64
	// Captured is when the source returned the frame. It carries Go's monotonic
	// clock reading and is the start of every latency measurement.
	Captured time.Time
	// Media is the frame's time on its stream's own clock, when the source
	// has one: for a file, its position (frame number over the container's
	// frame rate, counting on across loops) from the Unix epoch. Zero for
	// live cameras. Offline runs time rules (motion refresh, re-checks) on
	// it, so they fire as often as they would on the same video live.
	Media time.Time
	// Deadline is Captured plus the pipeline's latency budget; zero when there is
	// no budget. A stage that receives a frame past its deadline drops it.
	Deadline time.Time
	// Image is the decoded frame; nil on metadata-only copies (event sinks).
	// Use Retain/Release, never Close. A stage may replace it (the privacy
	// stage gives the sinks a redacted copy); it then closes the old image
	// in an OnRelease hook, since an earlier holder may still read it.
	Image Image
	// Width and Height are the image size in pixels, kept after Image is released.
	Width, Height int

	// Focus is where the detector should look on this frame, set by a stage
	// ahead of it (motion gating); the zero value is the whole frame.
	Focus Focus
	// Inferred is true when the detector ran on this frame; false when the frame
	// skipped inference (detect.every / max_fps / motion gating) and the
	// tracker only predicted.
	Inferred bool
	// Detections are the detector's output, in Image pixels.
	Detections []object.Detection
	// Tracks are the tracker's tracks on this frame, in Image pixels.
	Tracks []object.Track
	// Events are what the analytics learned on this frame; delivered losslessly.
	Events []event.Event
	// Lease is the fleet lease its stream ran under when the frame was
	// captured (SourceSpec.Lease; 0 outside fleet mode): the fencing token
	// its events carry.
	Lease uint64

	refs      atomic.Int32
	hooksMu   sync.Mutex
	onRelease []func()
}

// Focus tells the detector where to look on one frame.
type Focus struct {
	// Skip means nothing needs the detector on this frame (nothing moves):
	// the tracker only predicts, and tracks are not aged for it.
	Skip bool
	// Regions are crops, in Image pixels, to run the detector on instead of
	// the whole frame; empty means the whole frame.
	Regions []geom.Rect
	// Motion are the motion boxes found, in Image pixels (for overlays).
	Motion []geom.Rect
	// Reason says why the gate decided as it did (a metric label); empty
	// when no gate ran.
	Reason string
}

// NewFrame returns a frame owning img, with one reference held by the caller.
func NewFrame(stream string, seq uint64, img Image) *Frame {
	f := &Frame{Stream: stream, Seq: seq, Captured: time.Now(), Image: img, Width: img.Cols(), Height: img.Rows()}
	f.refs.Store(1)
	return f
}

// Retain adds a reference to the frame's image.
func (f *Frame) Retain() { f.refs.Add(1) }

// OnRelease registers fn to run once, at the frame's last Release, before the
// image is closed. Stages use it for scratch they attach to a frame outside
// it (a model input tensor), so the scratch is freed however the frame ends:
// dropped by a queue, failed, or delivered.
func (f *Frame) OnRelease(fn func()) {
	f.hooksMu.Lock()
	f.onRelease = append(f.onRelease, fn)
	f.hooksMu.Unlock()
}

// Release drops one reference; the last one runs the OnRelease hooks and
// closes the image. Releasing more times than retained is a bug and is
// ignored rather than double-closing.
func (f *Frame) Release() {
	if f.refs.Add(-1) != 0 {
		return
	}
	f.hooksMu.Lock()
	hooks := f.onRelease
	f.onRelease = nil
	f.hooksMu.Unlock()
	for _, fn := range hooks {
		fn()
	}
	if f.Image != nil {
		_ = f.Image.Close()
	}
}

// Refs returns the current reference count (for tests and leak checks).
func (f *Frame) Refs() int32 { return f.refs.Load() }

// Stale reports whether the frame is past its deadline at now.
func (f *Frame) Stale(now time.Time) bool {
	return !f.Deadline.IsZero() && now.After(f.Deadline)
}
