package drain

import (
	"context"
	"testing"
	"time"
)

// A worker that finishes when asked returns at once; one that does not is
// stopped after the limit.
func TestBounded(t *testing.T) {
	drainCh, done := make(chan struct{}), make(chan struct{})
	go func() { <-drainCh; close(done) }()
	stopped := false
	Bounded(context.Background(), drainCh, done, time.Hour, func() { stopped = true })
	if !stopped {
		t.Fatal("stop must run even after a clean drain (it cancels work in flight)")
	}

	drainCh, done = make(chan struct{}), make(chan struct{})
	stop := make(chan struct{})
	go func() { <-stop; close(done) }()
	t0 := time.Now()
	Bounded(context.Background(), drainCh, done, 50*time.Millisecond, func() { close(stop) })
	if d := time.Since(t0); d < 50*time.Millisecond {
		t.Fatalf("returned after %v, before the limit", d)
	}
}
