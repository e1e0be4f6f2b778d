package stages

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors of the runtime source set (EnableReload, AddSource, RemoveSource).
var (
	// ErrReloadNotEnabled is returned by AddSource and RemoveSource on a
	// runner that was not prepared with EnableReload before Run.
	ErrReloadNotEnabled = errors.New("stages: sources cannot change at runtime: call EnableReload before Run")
	// ErrPipelineEnded is returned by AddSource once the pipeline has stopped.
	ErrPipelineEnded = errors.New("stages: the pipeline has stopped")
)

// removeTimeout bounds how long RemoveSource waits for a source to close.
const removeTimeout = 10 * time.Second

// EnableReload lets sources be added and removed while the runner runs. Call
// it once, before Run. The graph's sources then run under one hub source, so
// the queue into the first stage stays open while the set of streams changes:
// it is closed only when the pipeline stops (ctx done) or when every source
// ended by itself (finite files), as without reload. Each stream keeps its own
// goroutine, reconnect back-off and metrics.
func (r *Runner) EnableReload() {
	if r.hub() != nil {
		return
	}
	h := &hub{
		r:       r,
		q:       newQueue(firstName(r.g.Stages), Link{Size: 1, Policy: Block}, r.obs),
		pending: r.g.Sources,
		running: map[string]*hubSource{},
		ended:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	// The hub's own reads are not a stream: keep them out of the metrics.
	r.obs = hubObserver{r.obs}
	h.q.obs = r.obs
	r.g.Sources = []SourceSpec{{Stream: "", Source: h}}
}

// AddSource starts a new stream while the pipeline runs (or queues it to
// start with the others when Run has not started it yet). The stream ID must
// not be running already.
func (r *Runner) AddSource(s SourceSpec) error {
	h := r.hub()
	if h == nil {
		return ErrReloadNotEnabled
	}
	return h.add(s)
}

// RemoveSource stops one stream and waits (bounded) until its source is
// closed; frames it already produced continue through the pipeline. The
// other streams are not touched.
func (r *Runner) RemoveSource(stream string) error {
	h := r.hub()
	if h == nil {
		return ErrReloadNotEnabled
	}
	return h.remove(stream)
}

// Streams returns the IDs of the streams running (or about to) under a
// reloadable runner, in no particular order.
func (r *Runner) Streams() []string {
	h := r.hub()
	if h == nil {
		ids := make([]string, 0, len(r.g.Sources))
		for _, s := range r.g.Sources {
			ids = append(ids, s.Stream)
		}
		return ids
	}
	return h.streams()
}

// hub returns the runner's hub source once EnableReload replaced the graph's
// sources with it, or nil.
func (r *Runner) hub() *hub {
	if len(r.g.Sources) != 1 {
		return nil
	}
	h, _ := r.g.Sources[0].Source.(*hub)
	return h
}

type hubObserver struct{ Observer }

func (o hubObserver) Frame(stream, stage string) {
	if stream == "" && stage == "capture" {
		return
	}
	o.Observer.Frame(stream, stage)
}

// hub is the one Source the runner sees when reload is enabled; it runs each
// stream's source with the runner's own runSource and forwards their frames.
type hub struct {
	r *Runner
	q *queue

	mu         sync.Mutex
	ctx        context.Context // Run's source context, once connected
	hard       context.Context
	hardCancel context.CancelFunc
	pending    []SourceSpec
	running    map[string]*hubSource
	closed     bool
	endedOnce  sync.Once
	ended      chan struct{} // closed when every source ended by itself
	done       chan struct{} // closed by Close: unblocks Read
	wg         sync.WaitGroup
}

type hubSource struct {
	cancel  context.CancelFunc
	done    chan struct{}
	removed bool
}

func (h *hub) Connect(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("stages: reload hub: connect after close: %w", ErrNotConnected)
	}
	if h.ctx != nil {
		return nil
	}
	h.ctx = ctx
	h.hard, h.hardCancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, s := range h.pending {
		h.startLocked(s)
	}
	h.pending = nil
	if len(h.running) == 0 && !h.r.g.Standing {
		// Nothing to run: behave like a runner without sources would.
		h.endedOnce.Do(func() { close(h.ended) })
	}
	return nil
}

func (h *hub) startLocked(s SourceSpec) {
	ctx, cancel := context.WithCancel(h.ctx)
	hs := &hubSource{cancel: cancel, done: make(chan struct{})}
	h.running[s.Stream] = hs
	h.wg.Go(func() {
		defer close(hs.done)
		h.r.runSource(ctx, h.hard, s, h.q)
		cancel()
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.running[s.Stream] == hs {
			delete(h.running, s.Stream)
		}
		// A stream that ended by itself (end of file, fatal error) counts
		// towards the pipeline's end; a removed one does not.
		if !hs.removed && len(h.running) == 0 && !h.closed && !h.r.g.Standing {
			h.endedOnce.Do(func() { close(h.ended) })
		}
	})
}

func (h *hub) add(s SourceSpec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.isEnded() || (h.ctx != nil && h.ctx.Err() != nil) {
		return fmt.Errorf("stages: add stream %q: %w", s.Stream, ErrPipelineEnded)
	}
	if _, ok := h.running[s.Stream]; ok {
		return fmt.Errorf("stages: add stream %q: it is already running; remove it first", s.Stream)
	}
	if h.ctx == nil {
		for _, p := range h.pending {
			if p.Stream == s.Stream {
				return fmt.Errorf("stages: add stream %q: it is already configured; remove it first", s.Stream)
			}
		}
		h.pending = append(h.pending, s)
		return nil
	}
	h.startLocked(s)
	return nil
}

func (h *hub) isEnded() bool {
	select {
	case <-h.ended:
		return true
	default:
		return false
	}
}

func (h *hub) remove(stream string) error {
	h.mu.Lock()
	if h.ctx == nil {
		defer h.mu.Unlock()
		for i, p := range h.pending {
			if p.Stream == stream {
				h.pending = append(h.pending[:i], h.pending[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("stages: remove stream %q: no such stream", stream)
	}
	hs, ok := h.running[stream]
	if ok {
		hs.removed = true
		delete(h.running, stream)
	}
	h.mu.Unlock()
	if !ok {
		return fmt.Errorf("stages: remove stream %q: no such stream running", stream)
	}
	hs.cancel()
	select {
	case <-hs.done:
		return nil
	case <-time.After(removeTimeout):
		return fmt.Errorf("stages: remove stream %q: its source did not close within %s", stream, removeTimeout)
	}
}

func (h *hub) streams() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.running)+len(h.pending))
	for id := range h.running {
		ids = append(ids, id)
	}
	for _, p := range h.pending {
		ids = append(ids, p.Stream)
	}
	return ids
}

// Read forwards the next frame of any stream. It returns ErrEndOfStream once
// every stream ended by itself and their frames are forwarded, and
// ErrNotConnected once Close was called (also to a Read it unblocks).
func (h *hub) Read(ctx context.Context) (*Frame, error) {
	// A done context or a closed hub wins over a frame that is ready.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-h.done:
		return nil, fmt.Errorf("stages: reload hub: read after close: %w", ErrNotConnected)
	default:
	}
	select {
	case f := <-h.q.ch:
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.done:
		return nil, fmt.Errorf("stages: reload hub: closed: %w", ErrNotConnected)
	case <-h.ended:
		select {
		case f := <-h.q.ch:
			return f, nil
		default:
			return nil, ErrEndOfStream
		}
	}
}

// Close stops every stream (their contexts derive from Run's, so they are
// usually stopping already), waits for them and releases unforwarded frames.
func (h *hub) Close(context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.done)
	for _, hs := range h.running {
		hs.cancel()
	}
	cancel := h.hardCancel
	h.mu.Unlock()
	if cancel != nil {
		// Unblock pushes waiting for a reader that is gone.
		cancel()
	}
	h.wg.Wait()
	for {
		select {
		case f := <-h.q.ch:
			h.q.drop(f, ReasonShutdown)
		default:
			return nil
		}
	}
}
