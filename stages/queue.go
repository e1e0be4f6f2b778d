package stages

import (
	"context"
	"fmt"
	"time"
)

// Policy says what a link between two stages does when its queue is full.
type Policy string

// The link policies.
const (
	// Latest keeps the newest frames: when full, the oldest queued frame is
	// dropped (reason "queue_full"). The default for live sources, so latency
	// stays bounded however fast the camera is.
	Latest Policy = "latest"
	// Block applies backpressure: the producer waits for room. The default for
	// offline file runs, where every frame must be processed.
	Block Policy = "block"
	// DropNewest refuses the incoming frame when full (reason "queue_full").
	DropNewest Policy = "drop_newest"
	// Handoff has no buffer: the producer waits until the consumer takes the
	// frame (Size is ignored). The live default behind the admission point,
	// so a frame ahead of a busy detector waits in one stage's hands, not in
	// a queue as well, where it would only age.
	Handoff Policy = "handoff"
)

// UnmarshalText parses a policy name, so YAML can name it.
func (p *Policy) UnmarshalText(b []byte) error {
	switch v := Policy(b); v {
	case Latest, Block, DropNewest, Handoff:
		*p = v
		return nil
	}
	return fmt.Errorf("unknown queue policy %q (use latest, block, drop_newest or handoff)", b)
}

// Link configures the queue in front of a stage or sink.
type Link struct {
	// Size is the queue capacity in frames (>= 1).
	Size int `yaml:"size"`
	// Policy is what happens when the queue is full.
	Policy Policy `yaml:"policy"`
}

// Drop reasons used in metrics.
const (
	ReasonQueueFull = "queue_full"
	ReasonStale     = "stale"
	ReasonError     = "error"
	ReasonShutdown  = "shutdown"
	ReasonFiltered  = "filtered" // the stage chose not to pass the frame on (no error)
)

// queue is a bounded channel of frames with a full-queue policy. Frames it
// drops are released and counted against the consuming stage.
type queue struct {
	stage  string // the consumer, for drop accounting
	ch     chan *Frame
	policy Policy
	obs    Observer
}

func newQueue(stage string, l Link, obs Observer) *queue {
	if l.Size < 1 {
		l.Size = 1
	}
	if l.Policy == "" {
		l.Policy = Block
	}
	if l.Policy == Handoff {
		l.Size = 0
	}
	return &queue{stage: stage, ch: make(chan *Frame, l.Size), policy: l.Policy, obs: obs}
}

// push hands f to the consumer according to the policy. hard is the hard-stop
// context: once it is done a blocked push gives up and drops the frame.
func (q *queue) push(hard context.Context, f *Frame) {
	switch q.policy {
	case Latest:
		for {
			select {
			case q.ch <- f:
				return
			default:
			}
			select {
			case old := <-q.ch:
				q.drop(old, ReasonQueueFull)
			default:
			}
		}
	case DropNewest:
		select {
		case q.ch <- f:
		default:
			q.drop(f, ReasonQueueFull)
		}
	default: // Block, Handoff
		select {
		case q.ch <- f:
		case <-hard.Done():
			q.drop(f, ReasonShutdown)
		}
	}
}

func (q *queue) drop(f *Frame, reason string) {
	q.obs.Dropped(f.Stream, q.stage, reason)
	f.Release()
}

// recv implements inlet. A frame already queued wins over a fired stop.
func (q *queue) recv(stop <-chan time.Time) (*Frame, recvState) {
	select {
	case f, ok := <-q.ch:
		return recvResult(f, ok)
	default:
	}
	select {
	case f, ok := <-q.ch:
		return recvResult(f, ok)
	case <-stop: // nil: never
		return nil, recvTimeout
	}
}

func recvResult(f *Frame, ok bool) (*Frame, recvState) {
	if !ok {
		return nil, recvClosed
	}
	return f, recvOK
}

// close ends the queue: the consumer drains it, then gets recvClosed.
func (q *queue) close() { close(q.ch) }
