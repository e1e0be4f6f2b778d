package stages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/osprey-vision/osprey/event"
)

// ErrDrainTimeout is returned by Run when the pipeline did not stop within its
// drain timeout (for example a cgo call that hangs). Goroutine stacks have been
// written to the log's stderr; the caller should exit non-zero.
var ErrDrainTimeout = errors.New("stages: pipeline did not stop within the drain timeout")

// SourceSpec is one stream's source.
type SourceSpec struct {
	Stream string
	Source Source
}

// StageSpec is one stage and the queue in front of it.
type StageSpec struct {
	Name  string
	Stage Stage
	In    Link
	// BatchTimeout is how long a BatchStage waits to fill a batch after its
	// first frame arrives.
	BatchTimeout time.Duration
	// Replicas are more instances of the same stage (each with its own
	// model session, say) that process batches in parallel with Stage; the
	// runner puts their output back in input order. Each is closed once.
	Replicas []Stage
	// KeepStale makes the stage process frames past their deadline instead of
	// dropping them: for cheap stages whose state needs every frame that
	// reached them (the tracker must see every inferred frame).
	KeepStale bool
	// StreamWorkers > 1 runs the stage's Process on that many goroutines
	// at once, each on a different stream's frame: a stream's frames are
	// processed one at a time, in order, and passed on in order, so
	// per-stream state needs no lock of its own (the runner orders the
	// calls). For cheap per-frame stages whose streams are independent
	// (motion), which one goroutine cannot keep up with for many cameras.
	StreamWorkers int
}

// SinkSpec is one sink and the queue in front of it. Event sinks (EventSink
// with EventsOnly) always get a blocking queue: events are never dropped.
type SinkSpec struct {
	Name string
	Sink Sink
	In   Link
}

// Graph is a pipeline ready to run: sources feed the stages in order, the last
// stage feeds every sink.
type Graph struct {
	Pipeline string
	Sources  []SourceSpec
	Stages   []StageSpec
	Sinks    []SinkSpec
	// SourceLink is the queue between the sources and the first stage. With
	// the Latest policy it is per stream (Size frames each) and served in
	// round-robin, so every camera gets its share of the stages behind it.
	SourceLink Link
	// Weights are optional per-stream shares of a Latest source link: a
	// stream of weight 2 gets two frames per round to the others' one.
	// Unset streams weigh 1.
	Weights map[string]int
	// Budget is the latency budget: a frame older than this is dropped as stale
	// by the next stage that sees it. Zero disables deadlines.
	Budget time.Duration
	// DrainTimeout bounds a graceful stop; zero means 10 s.
	DrainTimeout time.Duration
	// Node is the fleet node's name, stamped on every event with the lease
	// of its frame ("" outside fleet mode).
	Node string
	// Standing keeps a reloadable pipeline running with no streams until
	// its context is done (fleet mode: streams come and go with leases, and
	// a stream that ends by itself does not end the pipeline).
	Standing bool
	// BackoffMin/Max bound the reconnect back-off for sources and sinks that
	// report ErrNotConnected; zero means 500 ms and 30 s.
	BackoffMin, BackoffMax time.Duration
}

// Runner owns every goroutine and queue of a Graph. Stages never see channels.
type Runner struct {
	g   Graph
	obs Observer
	log *slog.Logger

	evMu     sync.Mutex
	evClosed bool
	evQueues []*queue // queues of event sinks, for events not tied to a frame
	// leases are the running streams' leases (fleet mode), for Emit's events.
	leases sync.Map
}

// NewRunner returns a runner for g. obs may be nil (measurements discarded).
func NewRunner(g Graph, obs Observer, log *slog.Logger) *Runner {
	if obs == nil {
		obs = NopObserver{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if g.DrainTimeout <= 0 {
		g.DrainTimeout = 10 * time.Second
	}
	if g.BackoffMin <= 0 {
		g.BackoffMin = 500 * time.Millisecond
	}
	if g.BackoffMax <= 0 {
		g.BackoffMax = 30 * time.Second
	}
	return &Runner{g: g, obs: obs, log: log}
}

// Emit sends events that belong to no frame (source up/down) straight to the
// event sinks, losslessly. It is safe to call from any goroutine; events
// emitted after the sinks closed are logged and counted as dropped.
func (r *Runner) Emit(stream string, evs ...event.Event) {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	l := r.lease(stream)
	for i := range evs {
		r.obs.Event(evs[i].Type)
		r.stamp(&evs[i], l)
	}
	if r.evClosed {
		for _, e := range evs {
			r.log.Warn("event after shutdown not delivered", "type", e.Type, "stream", stream)
			r.obs.Dropped(stream, "events", ReasonShutdown)
		}
		return
	}
	for _, q := range r.evQueues {
		f := metaFrame(&Frame{Stream: stream, Captured: time.Now(), Events: evs})
		q.push(context.Background(), f)
	}
}

// SetLease sets the fleet lease stream runs under from its next start (0
// outside fleet mode): its frames carry it, and their events and the
// stream's own (source up/down) are stamped with it and Graph.Node.
func (r *Runner) SetLease(stream string, lease uint64) { r.leases.Store(stream, lease) }

func (r *Runner) lease(stream string) uint64 {
	v, _ := r.leases.Load(stream)
	l, _ := v.(uint64)
	return l
}

// stamp writes the fleet node and lease into e (fleet mode only).
func (r *Runner) stamp(e *event.Event, lease uint64) {
	if r.g.Node == "" {
		return
	}
	if e.Node == "" {
		e.Node = r.g.Node
	}
	if e.Lease == 0 {
		e.Lease = lease
	}
}

// metaFrame returns a frame carrying f's metadata and no image, with one
// reference: event sinks get these so a slow event sink never holds Mats.
func metaFrame(f *Frame) *Frame {
	m := &Frame{
		Stream: f.Stream, Seq: f.Seq, Captured: f.Captured, Media: f.Media, Deadline: f.Deadline,
		Width: f.Width, Height: f.Height, Inferred: f.Inferred, Focus: f.Focus,
		Detections: f.Detections, Tracks: f.Tracks, Events: f.Events, Lease: f.Lease,
	}
	m.refs.Store(1)
	return m
}

// Run connects the sinks, starts the sources and runs until every source has
// ended (finite files) or ctx is done. On ctx done it stops the sources and
// drains the queues in order: stages finish what they hold, sinks flush. It
// returns an error when a sink cannot connect at start, or ErrDrainTimeout.
func (r *Runner) Run(ctx context.Context) error {
	hard, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()

	// Sinks first: wire from the sinks back to the sources.
	type sinkRun struct {
		spec       SinkSpec
		q          *queue
		eventsOnly bool
		images     bool // an event sink that needs the frame's image
		events     bool // an EventSink: gets Emit's events too
	}
	sinks := make([]*sinkRun, 0, len(r.g.Sinks))
	for _, s := range r.g.Sinks {
		if err := s.Sink.Connect(ctx); err != nil {
			for _, prev := range sinks {
				_ = prev.spec.Sink.Close(hard)
			}
			return fmt.Errorf("sink %s: %w", s.Name, err)
		}
		sr := &sinkRun{spec: s}
		if es, ok := s.Sink.(EventSink); ok {
			// Event sinks get a blocking queue even when they take every frame
			// (per-frame detections on NATS): events ride on frames and must
			// not be dropped with them.
			sr.events = true
			sr.eventsOnly = es.EventsOnly()
			if is, ok := s.Sink.(ImageSink); ok {
				sr.images = is.NeedsImages()
			}
			s.In.Policy = Block
			if s.In.Size < 64 {
				s.In.Size = 64
			}
		}
		sr.q = newQueue(s.Name, s.In, r.obs)
		sinks = append(sinks, sr)
	}
	r.evMu.Lock()
	for _, s := range sinks {
		if s.events {
			r.evQueues = append(r.evQueues, s.q)
		}
	}
	r.evMu.Unlock()

	var wg sync.WaitGroup
	for _, s := range sinks {
		wg.Go(func() { r.runSink(hard, s.spec, s.q) })
	}

	// Stage chain: queue[i] feeds stage i; out feeds the fan-out to sinks.
	first := r.sourceQueue()
	var in inlet = first
	for i, st := range r.g.Stages {
		var out link
		if i+1 < len(r.g.Stages) {
			out = r.link(r.g.Stages[i+1].Name, r.g.Stages[i+1].In)
		} else {
			out = newQueue("sinks", Link{Size: 8, Policy: Block}, r.obs)
		}
		stageIn := in
		wg.Go(func() { r.runStage(hard, st, stageIn, out) })
		in = out
	}
	last, ok := in.(*queue)
	if !ok { // no stages: the sources feed the sinks through a plain queue
		last = newQueue("sinks", Link{Size: 8, Policy: Block}, r.obs)
		go func() {
			for {
				f, st := in.recv(nil)
				if st == recvClosed {
					close(last.ch)
					return
				}
				last.push(hard, f)
			}
		}()
	}
	wg.Go(func() {
		for f := range last.ch {
			r.obs.EndToEnd(f.Stream, time.Since(f.Captured))
			for i := range f.Events {
				r.obs.Event(f.Events[i].Type)
				r.stamp(&f.Events[i], f.Lease)
			}
			for _, s := range sinks {
				switch {
				case s.eventsOnly && len(f.Events) > 0 && s.images:
					f.Retain()
					s.q.push(hard, f)
				case s.eventsOnly && len(f.Events) > 0:
					s.q.push(hard, metaFrame(f))
				case !s.eventsOnly:
					f.Retain()
					s.q.push(hard, f)
				}
			}
			f.Release()
		}
		r.evMu.Lock()
		r.evClosed = true
		r.evMu.Unlock()
		for _, s := range sinks {
			close(s.q.ch)
		}
	})

	// Sources last. first is closed once every source goroutine has returned.
	var srcWG sync.WaitGroup
	for _, s := range r.g.Sources {
		srcWG.Go(func() { r.runSource(ctx, hard, s, first) })
	}
	go func() {
		srcWG.Wait()
		first.close()
	}()

	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()

	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	// Graceful stop: 3/4 of the budget to drain, then hard-stop, then give up.
	drain := r.g.DrainTimeout
	select {
	case <-done:
		return nil
	case <-time.After(drain * 3 / 4):
	}
	r.log.Warn("drain took too long, stopping hard", "after", drain*3/4)
	hardStop()
	select {
	case <-done:
		return nil
	case <-time.After(drain / 4):
	}
	r.log.Error("pipeline did not stop; dumping goroutines", "drain_timeout", drain)
	_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
	return ErrDrainTimeout
}

// link is a queue between two parts of the pipeline.
type link interface {
	inlet
	outlet
	close()
}

// sourceQueue is the queue between the sources and the first stage.
func (r *Runner) sourceQueue() link { return r.link(firstName(r.g.Stages), r.g.SourceLink) }

// link makes the queue in front of stage: for a Latest link the fair
// per-stream queue (each stream's newest frames, served in turn), a plain
// queue otherwise (offline, blocking producers take turns by themselves).
func (r *Runner) link(stage string, l Link) link {
	if l.Policy == Latest {
		return newFairQueue(stage, l, r.g.Weights, r.obs)
	}
	return newQueue(stage, l, r.obs)
}

func firstName(st []StageSpec) string {
	if len(st) == 0 {
		return "sinks"
	}
	return st[0].Name
}

// runSource reads one stream until it ends or ctx is done. A source that is
// unreachable is retried with capped exponential back-off; a source that fails
// for good is logged and stops alone: other streams keep running.
func (r *Runner) runSource(ctx, hard context.Context, s SourceSpec, out outlet) {
	log := r.log.With("stream", s.Stream)
	defer func() { _ = s.Source.Close(hard) }()
	lease := r.lease(s.Stream)
	backoff := r.g.BackoffMin
	connected := false
	for ctx.Err() == nil {
		if !connected {
			err := s.Source.Connect(ctx)
			switch {
			case err == nil:
				connected, backoff = true, r.g.BackoffMin
			case errors.Is(err, ErrNotConnected):
				log.Warn("source unreachable, retrying", "err", err, "in", backoff)
				if !sleepCtx(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, r.g.BackoffMax)
				continue
			default:
				if ctx.Err() == nil {
					log.Error("source failed; this stream stops, others continue", "err", err)
				}
				return
			}
		}
		f, err := s.Source.Read(ctx)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, ErrEndOfStream):
				return
			case errors.Is(err, ErrNotConnected):
				connected = false
				continue
			default:
				log.Warn("source read failed", "err", err)
				r.obs.Dropped(s.Stream, "capture", ReasonError)
				if !sleepCtx(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, r.g.BackoffMax)
				continue
			}
		}
		backoff = r.g.BackoffMin
		if lease != 0 { // the reload hub forwards frames its streams stamped
			f.Lease = lease
		}
		if r.g.Budget > 0 {
			f.Deadline = f.Captured.Add(r.g.Budget)
		}
		r.obs.Frame(s.Stream, "capture")
		out.push(hard, f)
	}
}

// runStage feeds frames from in through one stage to out, then closes out so
// the next stage drains in order.
func (r *Runner) runStage(ctx context.Context, st StageSpec, in inlet, out link) {
	defer out.close()
	defer func() {
		if err := st.Stage.Close(ctx); err != nil {
			r.log.Warn("stage close failed", "stage", st.Name, "err", err)
		}
	}()
	if len(st.Replicas) > 0 {
		r.runParallel(ctx, st, in, out)
		return
	}
	if st.StreamWorkers > 1 {
		r.runPerStream(ctx, st, in, out)
		return
	}
	if bs, ok := st.Stage.(BatchStage); ok && bs.BatchSize() > 1 {
		r.runBatchStage(ctx, st, bs, in, out)
		return
	}
	var est estimate // per unit of work (workUnits)
	for {
		f, state := in.recv(nil)
		if state == recvClosed {
			return
		}
		one := []*Frame{f}
		units := workUnits(one)
		if !st.KeepStale && r.late(f, est.value()*units) {
			in.drop(f, ReasonStale)
			continue
		}
		r.obs.Frame(f.Stream, st.Name)
		outs, took, _ := r.call(ctx, st, st.Stage, one)
		est.observeWork(took, units)
		for _, o := range outs {
			out.push(ctx, o)
		}
	}
}

func (r *Runner) runBatchStage(ctx context.Context, st StageSpec, bs BatchStage, in inlet, out link) {
	var est estimate // per unit of work (workUnits)
	b := newBatcher(in, bs.BatchSize(), st.BatchTimeout)
	var buf []*Frame
	for {
		batch := b.next(buf[:0])
		if batch == nil {
			return
		}
		buf = batch
		live := r.admit(st, in, batch, est.value()*workUnits(batch))
		if len(live) == 0 {
			continue
		}
		units := workUnits(live)
		outs, took, err := r.call(ctx, st, st.Stage, live)
		est.observeWork(took, units)
		if err != nil {
			r.failed(st, live, err)
			continue
		}
		for _, o := range outs {
			out.push(ctx, o)
		}
	}
}

// admit drops the frames of batch that would be stale by the time the stage,
// taking about est for the whole batch, is done with them, and counts the
// others in. It is called once the batch is collected and a stage instance
// is free to start on it, so collection and waiting are already behind the
// frames. It reuses batch's storage.
func (r *Runner) admit(st StageSpec, in inlet, batch []*Frame, est time.Duration) []*Frame {
	live := batch[:0]
	for _, f := range batch {
		if !st.KeepStale && r.late(f, est) {
			in.drop(f, ReasonStale)
			continue
		}
		r.obs.Frame(f.Stream, st.Name)
		live = append(live, f)
	}
	return live
}

// call runs one batch through stage (ProcessBatch for batch stages, Process
// frame by frame otherwise) and records its latency.
func (r *Runner) call(ctx context.Context, st StageSpec, stage Stage, fs []*Frame) ([]*Frame, time.Duration, error) {
	t0 := time.Now()
	var outs []*Frame
	var err error
	if bs, ok := stage.(BatchStage); ok && bs.BatchSize() > 1 {
		r.obs.BatchSize(len(fs))
		outs, err = bs.ProcessBatch(ctx, fs)
	} else {
		for i, f := range fs {
			o, ferr := stage.Process(ctx, f)
			if ferr != nil {
				// f and the frames not yet processed are the runner's to drop.
				r.failed(st, fs[i:i+1], ferr)
				for _, g := range fs[i+1:] {
					r.obs.Dropped(g.Stream, st.Name, ReasonError)
					g.Release()
				}
				break
			}
			if len(o) == 0 {
				r.obs.Dropped(f.Stream, st.Name, ReasonFiltered)
			}
			outs = append(outs, o...)
		}
	}
	took := time.Since(t0)
	r.obs.StageLatency(st.Name, took)
	return outs, took, err
}

// failed logs a stage error once and drops the frames it was working on.
func (r *Runner) failed(st StageSpec, fs []*Frame, err error) {
	r.log.Warn("stage failed", "stage", st.Name, "frames", len(fs), "err", err)
	for _, f := range fs {
		r.obs.Dropped(f.Stream, st.Name, ReasonError)
		f.Release()
	}
}

// batcher collects frames from a queue into batches of up to n units of
// work (workUnits), waiting at most timeout after the first frame (or, with
// no timeout, taking only what is already queued).
type batcher struct {
	in      inlet
	n       int
	timeout time.Duration
	timer   *time.Timer
	closed  bool
}

func newBatcher(in inlet, n int, timeout time.Duration) *batcher {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &batcher{in: in, n: max(n, 1), timeout: timeout, timer: t}
}

// next appends the next batch to buf and returns it; nil once the queue is
// closed and drained.
func (b *batcher) next(buf []*Frame) []*Frame {
	if b.closed {
		return nil
	}
	f, state := b.in.recv(nil)
	if state == recvClosed {
		b.closed = true
		return nil
	}
	buf = append(buf, f)
	units := int(workUnits(buf))
	stop := closedStop // no timeout: take only what is already queued
	if b.timeout > 0 && units < b.n {
		b.timer.Reset(b.timeout)
		defer b.timer.Stop()
		stop = b.timer.C
	}
	// A batch is n units of work: n whole frames, or fewer frames with
	// motion regions (each region is one detector input), plus any frames
	// the gate skipped, which cost nothing; 4n frames at most.
	for units < b.n && len(buf) < 4*b.n {
		g, state := b.in.recv(stop)
		switch state {
		case recvTimeout:
			return buf
		case recvClosed:
			b.closed = true
			return buf
		}
		buf = append(buf, g)
		units += int(workUnits(buf[len(buf)-1:]))
	}
	return buf
}

// late reports whether f would miss its deadline if the stage, which
// typically takes about est, started on it now. When the stage alone takes
// longer than the whole budget no frame could make it; then only frames
// already past their deadline are dropped, so the stage never starves.
func (r *Runner) late(f *Frame, est time.Duration) bool {
	if f.Deadline.IsZero() {
		return false
	}
	if est >= r.g.Budget {
		est = 0
	}
	return time.Now().Add(est).After(f.Deadline)
}

// estimate is how long a stage call takes, used to drop frames that would
// finish past their deadline: an exponentially weighted mean plus twice the
// mean deviation (as TCP estimates a retransmit timeout), so a stage whose
// calls vary (a batch slowed by the decoders sharing its cores) is judged by
// its slow calls, not its typical ones; the mean alone let a tenth of the
// frames of a batching detector finish past the budget.
type estimate struct{ avg, dev time.Duration }

func (e *estimate) observe(d time.Duration) {
	if e.avg == 0 {
		e.avg, e.dev = d, d/2
		return
	}
	diff := d - e.avg
	e.avg += diff / 8
	e.dev += (diff.Abs() - e.dev) / 4
}

func (e *estimate) value() time.Duration { return e.avg + 2*e.dev }

// observeWork records a call that did units of work (workUnits); a call with
// none (every frame skipped by motion gating) says nothing about the cost.
func (e *estimate) observeWork(took, units time.Duration) {
	if units > 0 {
		e.observe(took / units)
	}
}

// workUnits is how much work frames are for a stage, in the units its
// estimate counts: one per motion region the detector will run, one for a
// whole frame, none for a frame the gate skipped. A batch of 4 frames with
// 3 regions each is 12 runs, and judging it as 4 let frames in that then
// finished past the budget.
func workUnits(fs []*Frame) time.Duration {
	var n time.Duration
	for _, f := range fs {
		switch {
		case f.Focus.Skip:
		case len(f.Focus.Regions) > 0:
			n += time.Duration(len(f.Focus.Regions))
		default:
			n++
		}
	}
	return n
}

// runSink writes frames to one sink until its queue closes, then closes it.
// Event sinks are retried on ErrNotConnected until the hard stop: events are
// not dropped while the sink is merely down.
func (r *Runner) runSink(ctx context.Context, s SinkSpec, q *queue) {
	defer func() {
		if err := s.Sink.Close(ctx); err != nil {
			r.log.Warn("sink close failed", "sink", s.Name, "err", err)
		}
	}()
	_, lossless := s.Sink.(EventSink)
	for f := range q.ch {
		backoff := r.g.BackoffMin
		for {
			t0 := time.Now()
			err := s.Sink.Write(ctx, f)
			r.obs.StageLatency("sink:"+s.Name, time.Since(t0))
			if err == nil {
				break
			}
			if lossless && errors.Is(err, ErrNotConnected) && ctx.Err() == nil {
				r.log.Warn("sink down, retrying", "sink", s.Name, "err", err, "in", backoff)
				if sleepCtx(ctx, backoff) {
					backoff = min(backoff*2, r.g.BackoffMax)
					_ = s.Sink.Connect(ctx)
					continue
				}
			}
			r.log.Warn("sink write failed", "sink", s.Name, "stream", f.Stream, "err", err)
			r.obs.Dropped(f.Stream, "sink:"+s.Name, ReasonError)
			break
		}
		f.Release()
	}
}

// sleepCtx sleeps for d or until ctx is done; it reports whether it slept fully.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
