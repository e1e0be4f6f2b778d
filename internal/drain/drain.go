// Package drain bounds how long a sink keeps delivering when it closes:
// the sinks that spool events (NATS, webhook) finish what they can within
// their close_timeout and leave the rest spooled for the next start.
package drain

import (
	"context"
	"time"
)

// Bounded closes drain to ask a delivery goroutine to finish what it holds,
// waits for done at most limit (or until ctx is done), then calls stop to
// end the goroutine's work in flight and waits for done.
func Bounded(ctx context.Context, drain chan struct{}, done <-chan struct{}, limit time.Duration, stop func()) {
	close(drain)
	t := time.NewTimer(limit)
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	stop()
	<-done
}
