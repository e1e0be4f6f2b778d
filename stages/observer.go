package stages

import (
	"time"

	"github.com/osprey-vision/osprey/event"
)

// Observer receives the runner's measurements. The metrics package implements
// it with Prometheus collectors and quantile sketches; tests may use their own.
// Methods are called concurrently from every stage goroutine.
type Observer interface {
	// Frame counts a frame that a stage (or "capture") handled.
	Frame(stream, stage string)
	// Dropped counts a frame dropped before or by stage, with the reason.
	Dropped(stream, stage, reason string)
	// StageLatency records the time one Process/ProcessBatch call took.
	StageLatency(stage string, d time.Duration)
	// EndToEnd records capture-to-sink latency of one frame.
	EndToEnd(stream string, d time.Duration)
	// BatchSize records the size of one detector batch.
	BatchSize(n int)
	// SourceUp records a stream's health.
	SourceUp(stream string, up bool)
	// Event counts one emitted event.
	Event(t event.Type)
}

// NopObserver discards every measurement.
type NopObserver struct{}

// Frame implements Observer.
func (NopObserver) Frame(string, string) {}

// Dropped implements Observer.
func (NopObserver) Dropped(string, string, string) {}

// StageLatency implements Observer.
func (NopObserver) StageLatency(string, time.Duration) {}

// EndToEnd implements Observer.
func (NopObserver) EndToEnd(string, time.Duration) {}

// BatchSize implements Observer.
func (NopObserver) BatchSize(int) {}

// SourceUp implements Observer.
func (NopObserver) SourceUp(string, bool) {}

// Event implements Observer.
func (NopObserver) Event(event.Type) {}
