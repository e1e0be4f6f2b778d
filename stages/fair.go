package stages

import (
	"context"
	"slices"
	"sync"
	"time"
)

// inlet is what a stage loop reads frames from: a plain queue between two
// stages, or the fair queue in front of a live pipeline's first stage.
type inlet interface {
	// recv returns the next frame. stop nil waits as long as it takes; a
	// fired or closed stop returns recvTimeout when no frame is ready (a
	// closed channel makes recv non-blocking).
	recv(stop <-chan time.Time) (*Frame, recvState)
	// drop releases f and counts it against the consuming stage.
	drop(f *Frame, reason string)
}

// outlet is what a producer (a source, a stage) hands frames to.
type outlet interface {
	push(hard context.Context, f *Frame)
}

type recvState int

const (
	recvOK      recvState = iota
	recvTimeout           // stop fired first
	recvClosed            // closed and drained
)

// closedStop is a stop channel that has always fired: recv never waits.
var closedStop = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()

// fairQueue is every Latest link of a pipeline (live: at capture and in
// front of the detector): one small slot ring per stream, served in
// weighted round-robin.
//
// A single shared latest queue is not fair: when six cameras at the same
// rate push into it and the detector takes a sixth of their frames, which
// camera's frame is newest when the detector pulls depends on how the
// captures are phased against it, and two of six cameras got a third of the
// frames the best one got. Per-stream slots served in turn give each camera
// its share whatever the phase, and each stream still keeps only its newest
// frames (the oldest of a full ring is dropped as queue_full), so latency
// stays bounded per camera. DeepStream's muxer does the same in spirit: one
// frame per source per batch.
type fairQueue struct {
	stage string // the consumer, for drop accounting
	size  int    // frames kept per stream
	obs   Observer

	mu      sync.Mutex
	streams []*fairSlot // in order of first frame
	byID    map[string]*fairSlot
	weights map[string]int
	cursor  int // the stream whose turn it is
	held    int // frames held, all streams
	closed  bool
	ready   chan struct{} // one token: a frame arrived (closed on close)
}

// fairSlot is one stream's ring: frames oldest first, and how many of its
// turn (its weight) it has used.
type fairSlot struct {
	id     string
	frames []*Frame
	weight int
	used   int
	// busy is set while a claiming consumer (recvClaim) works on one of
	// this stream's frames: the stream's next frame waits for release.
	busy bool
}

func newFairQueue(stage string, l Link, weights map[string]int, obs Observer) *fairQueue {
	return &fairQueue{
		stage: stage, size: max(l.Size, 1), obs: obs,
		byID: map[string]*fairSlot{}, weights: weights, ready: make(chan struct{}, 1),
	}
}

// push puts f in its stream's ring, dropping that stream's oldest frame when
// the ring is full. It never blocks: a live source must not wait for the
// detector.
func (q *fairQueue) push(_ context.Context, f *Frame) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.drop(f, ReasonShutdown)
		return
	}
	s := q.byID[f.Stream]
	if s == nil {
		s = &fairSlot{id: f.Stream, weight: max(q.weights[f.Stream], 1)}
		q.byID[f.Stream] = s
		q.streams = append(q.streams, s)
	}
	old := s.evictFor(f, q.size)
	if old != nil {
		q.held--
	}
	s.frames = append(s.frames, f)
	q.held++
	q.signal()
	q.mu.Unlock()
	if old != nil {
		q.drop(old, ReasonQueueFull)
	}
}

// skipHeld is how many frames the motion gate skipped a stream's ring
// keeps behind frames that wait for the detector.
const skipHeld = 4

// evictFor makes room for f in the ring and returns the frame it pushed
// out, if any. Frames the motion gate skipped (Focus.Skip) and frames that
// need the detector are bounded apart, each kind losing its own oldest: a
// skipped frame needs no detector time, and when it pushed out the one frame
// waiting for a detector (a refresh, a light change on every camera at once)
// that run was lost, asked for again and lost again, and idle cameras
// dropped frames with the detector half idle (docs/motion.md). Skipped
// frames wait behind the run in stream order until it is done.
func (s *fairSlot) evictFor(f *Frame, size int) *Frame {
	limit := size
	if f.Focus.Skip {
		limit = max(size, skipHeld)
	}
	n, first := 0, -1
	for i, g := range s.frames {
		if g.Focus.Skip == f.Focus.Skip {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	if n < limit {
		return nil
	}
	old := s.frames[first]
	s.frames = slices.Delete(s.frames, first, first+1)
	return old
}

func (s *fairSlot) popFront() *Frame {
	f := s.frames[0]
	copy(s.frames, s.frames[1:])
	s.frames[len(s.frames)-1] = nil
	s.frames = s.frames[:len(s.frames)-1]
	return f
}

// signal leaves the ready token; q.mu is held, so it never races close.
func (q *fairQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// recv implements inlet: the oldest frame of the stream whose turn it is.
func (q *fairQueue) recv(stop <-chan time.Time) (*Frame, recvState) {
	return q.take(stop, false)
}

// recvClaim implements claimInlet: like recv(nil), but only from streams
// no other claiming consumer holds, and the frame's stream is held until
// release. Several consumers calling it get frames of different streams;
// each stream's frames still come out one at a time, in order.
func (q *fairQueue) recvClaim() (*Frame, recvState) { return q.take(nil, true) }

// release implements claimInlet: stream's next frame may be claimed.
func (q *fairQueue) release(stream string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := q.byID[stream]; s != nil && s.busy {
		s.busy = false
		if len(s.frames) > 0 && !q.closed {
			q.signal()
		}
	}
}

// take is recv and recvClaim.
func (q *fairQueue) take(stop <-chan time.Time, claim bool) (*Frame, recvState) {
	for {
		q.mu.Lock()
		f := q.pick(claim)
		closed := q.closed
		if f != nil && q.held > 0 && !closed {
			q.signal() // another consumer may be waiting on the token we took
		}
		q.mu.Unlock()
		if f != nil {
			return f, recvOK
		}
		if closed {
			// With claims, frames may be left in streams another consumer
			// holds: that consumer takes them after its release.
			return nil, recvClosed
		}
		if stop == nil {
			<-q.ready
			continue
		}
		select {
		case <-q.ready:
		case <-stop:
			// A frame may have come with the stop: take it rather than time out.
			q.mu.Lock()
			f := q.pick(claim)
			q.mu.Unlock()
			if f != nil {
				return f, recvOK
			}
			return nil, recvTimeout
		}
	}
}

// pick takes the next frame in weighted round-robin order; q.mu is held. A
// stream gets up to its weight of consecutive frames per round, and a stream
// with nothing queued loses its turn, as does, when claim is set, a stream
// a claiming consumer holds; claim then holds the picked frame's stream.
func (q *fairQueue) pick(claim bool) *Frame {
	if q.held == 0 {
		return nil
	}
	for range 2*len(q.streams) + 1 {
		s := q.streams[q.cursor]
		if len(s.frames) > 0 && s.used < s.weight && !(claim && s.busy) {
			f := s.popFront()
			s.used++
			q.held--
			s.busy = s.busy || claim
			return f
		}
		s.used = 0
		q.cursor = (q.cursor + 1) % len(q.streams)
	}
	return nil
}

func (q *fairQueue) drop(f *Frame, reason string) {
	q.obs.Dropped(f.Stream, q.stage, reason)
	f.Release()
}

// close ends the queue once every source has returned: the consumer drains
// what is held, then gets recvClosed.
func (q *fairQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	close(q.ready)
}
