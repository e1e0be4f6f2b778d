package app

import (
	"context"
	"fmt"
	"sync"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// latestFrames is a sink that keeps the newest frame of each stream so a
// snapshot can be served on request (NATS control). It holds one reference
// per stream and releases the previous frame when a new one arrives.
type latestFrames struct {
	mu     sync.Mutex
	frames map[string]*stages.Frame
}

func newLatestFrames() *latestFrames { return &latestFrames{frames: map[string]*stages.Frame{}} }

func (l *latestFrames) Connect(context.Context) error { return nil }

func (l *latestFrames) Write(_ context.Context, f *stages.Frame) error {
	f.Retain()
	l.mu.Lock()
	old := l.frames[f.Stream]
	l.frames[f.Stream] = f
	l.mu.Unlock()
	if old != nil {
		old.Release()
	}
	return nil
}

// JPEG encodes the newest frame of stream.
func (l *latestFrames) JPEG(stream string) ([]byte, error) {
	l.mu.Lock()
	f := l.frames[stream]
	if f != nil {
		f.Retain()
	}
	l.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("no frame yet from stream %q", stream)
	}
	defer f.Release()
	img, err := picture.Mat(f)
	if err != nil {
		return nil, fmt.Errorf("snapshot of %q: %w", stream, err)
	}
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, img)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot of %q: %w", stream, err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

func (l *latestFrames) Close(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, f := range l.frames {
		f.Release()
		delete(l.frames, k)
	}
	return nil
}

// controller answers NATS control requests.
// control answers requests about the running pipeline (stages.Control) for
// the sinks that serve them (NATS control subjects).
type control struct{ a *App }

func (c control) Stats() any   { return c.a.Stats() }
func (c control) Streams() any { return c.a.StreamStates() }
func (c control) Snapshot(stream string) ([]byte, error) {
	if c.a.latest == nil {
		return nil, fmt.Errorf("snapshots are off")
	}
	return c.a.latest.JPEG(stream)
}
