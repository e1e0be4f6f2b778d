package stages

import (
	"context"
	"errors"
)

// Sentinel errors shared by every component. Components wrap them with %w and
// context (the stream URL, the model path); the runner checks with errors.Is.
var (
	// ErrNotConnected tells the runner the component lost its connection: it
	// calls Connect again after its back-off (Graph.BackoffMin/Max). Frames
	// already accepted are kept. A source may instead reconnect by itself
	// (capture does, inside Read, with its own back-off and state reports)
	// and never return it.
	ErrNotConnected = errors.New("stages: not connected")
	// ErrEndOfStream tells the runner a finite source (a file without loop) has
	// no more frames: the runner drains the pipeline and stops that stream.
	ErrEndOfStream = errors.New("stages: end of stream")
)

// Source produces frames from one stream.
//
// The runner calls Connect, then Read in a loop from a single goroutine, and
// Close once at the end; no two methods run concurrently except Close, which may
// be called while Read blocks (to unblock it at shutdown).
//   - Connect opens the stream. It returns an error wrapping ErrNotConnected
//     when the stream is unreachable (retry later) and any other error when
//     retrying cannot help (a malformed URL).
//   - Read returns the next frame, owned by the caller. It returns ErrEndOfStream
//     at the end of a finite stream, ErrNotConnected when the stream was lost
//     (the runner reconnects), or ctx.Err() when ctx is done.
//   - Close releases the device or connection. It is safe to call twice; Read
//     after Close returns ErrNotConnected.
type Source interface {
	Connect(ctx context.Context) error
	Read(ctx context.Context) (*Frame, error)
	Close(ctx context.Context) error
}

// Stage transforms frames. The runner calls Process from one goroutine per
// stage, in frame order, and Close once after the last Process. A stage
// run with StageSpec.StreamWorkers > 1 gets concurrent Process calls for
// frames of different streams, but never two of one stream at once, and
// each stream's frames in order.
//   - Process takes ownership of f and returns the frames to pass on (usually
//     f itself). Returning no frames and a nil error means the stage dropped f;
//     the stage must then Release it. An error is logged and counted, and f is
//     released by the runner.
type Stage interface {
	Process(ctx context.Context, f *Frame) ([]*Frame, error)
	Close(ctx context.Context) error
}

// BatchStage is an optional interface for stages that work on several frames
// at once (the detector batches frames across streams). The runner collects up
// to BatchSize frames, waiting at most the batch timeout, and calls ProcessBatch
// instead of Process. Ownership is as for Process, per frame.
type BatchStage interface {
	Stage
	BatchSize() int
	ProcessBatch(ctx context.Context, fs []*Frame) ([]*Frame, error)
}

// Sink consumes frames at the end of the pipeline.
//
// The runner calls Connect once before the first Write (and again after Write
// returns ErrNotConnected), Write from one goroutine per sink, and Close once.
//   - Write must not keep f after it returns unless it calls f.Retain (and later
//     f.Release). Frame sinks (preview) may be skipped when they fall behind;
//     event sinks (see EventSink) never are.
//   - Close flushes what was accepted and waits for the sink's goroutines. It
//     is safe to call twice.
type Sink interface {
	Connect(ctx context.Context) error
	Write(ctx context.Context, f *Frame) error
	Close(ctx context.Context) error
}

// EventSink is an optional interface for sinks that deliver events. The runner
// sends such a sink only frames that carry events, through a blocking queue,
// so no event is dropped; the frame's image may already be released. Write
// returns once the events are durable: acknowledged by the destination or
// written to a local spool.
type EventSink interface {
	Sink
	// EventsOnly reports whether the sink wants only frames that carry events.
	EventsOnly() bool
}

// ImageSink is an optional interface for event sinks that need the frame's
// image with its events (JPEG snapshots of events). The runner then passes
// them the frame itself, retained, instead of a metadata-only copy.
type ImageSink interface {
	NeedsImages() bool
}
