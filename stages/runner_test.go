package stages

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/event"
)

// fakeSource yields n frames with real (small) Mats, optionally paced.
type fakeSource struct {
	stream   string
	n        int
	interval time.Duration
	seq      uint64
	closed   atomic.Int32
	// notConnected makes the first k Connect calls fail with ErrNotConnected.
	notConnected int
	connects     int
}

func (s *fakeSource) Connect(ctx context.Context) error {
	s.connects++
	if s.connects <= s.notConnected {
		return ErrNotConnected
	}
	return nil
}

func (s *fakeSource) Read(ctx context.Context) (*Frame, error) {
	if s.n >= 0 && int(s.seq) >= s.n {
		return nil, ErrEndOfStream
	}
	if s.interval > 0 && !sleepCtx(ctx, s.interval) {
		return nil, ctx.Err()
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	s.seq++
	return NewFrame(s.stream, s.seq, newTestImage()), nil
}

func (s *fakeSource) Close(context.Context) error { s.closed.Add(1); return nil }

// funcStage adapts a function to Stage.
type funcStage struct {
	fn     func(ctx context.Context, f *Frame) ([]*Frame, error)
	closed atomic.Int32
}

func (s *funcStage) Process(ctx context.Context, f *Frame) ([]*Frame, error) { return s.fn(ctx, f) }
func (s *funcStage) Close(context.Context) error                             { s.closed.Add(1); return nil }

func pass(d time.Duration) *funcStage {
	return &funcStage{fn: func(ctx context.Context, f *Frame) ([]*Frame, error) {
		if d > 0 {
			time.Sleep(d)
		}
		return []*Frame{f}, nil
	}}
}

// recordSink records what it was given.
type recordSink struct {
	mu         sync.Mutex
	seqs       map[string][]uint64
	events     []event.Event
	eventsOnly bool
	closed     atomic.Int32
}

func newRecordSink() *recordSink { return &recordSink{seqs: map[string][]uint64{}} }

func (s *recordSink) Connect(context.Context) error { return nil }
func (s *recordSink) Write(_ context.Context, f *Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seqs[f.Stream] = append(s.seqs[f.Stream], f.Seq)
	s.events = append(s.events, f.Events...)
	return nil
}
func (s *recordSink) Close(context.Context) error { s.closed.Add(1); return nil }

type eventSink struct{ *recordSink }

func (eventSink) EventsOnly() bool { return true }

// countObserver counts drops by reason.
type countObserver struct {
	NopObserver
	mu    sync.Mutex
	drops map[string]int
	e2e   []time.Duration
}

func newCountObserver() *countObserver { return &countObserver{drops: map[string]int{}} }

func (o *countObserver) Dropped(_, stage, reason string) {
	o.mu.Lock()
	o.drops[stage+"/"+reason]++
	o.mu.Unlock()
}

func (o *countObserver) EndToEnd(_ string, d time.Duration) {
	o.mu.Lock()
	o.e2e = append(o.e2e, d)
	o.mu.Unlock()
}

func TestRunnerBlockDeliversEveryFrameInOrder(t *testing.T) {
	imageLeaks(t)
	a, b := &fakeSource{stream: "a", n: 50}, &fakeSource{stream: "b", n: 30}
	st1, st2 := pass(0), pass(100*time.Microsecond)
	sink := newRecordSink()
	g := Graph{
		Sources:    []SourceSpec{{"a", a}, {"b", b}},
		Stages:     []StageSpec{{Name: "one", Stage: st1, In: Link{2, Block}}, {Name: "two", Stage: st2, In: Link{2, Block}}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{1, Block}}},
		SourceLink: Link{1, Block},
	}
	require.NoError(t, NewRunner(g, nil, nil).Run(context.Background()))
	require.Len(t, sink.seqs["a"], 50)
	require.Len(t, sink.seqs["b"], 30)
	for i, s := range sink.seqs["a"] {
		require.Equal(t, uint64(i+1), s, "frames of a stream stay in order")
	}
	require.EqualValues(t, 1, st1.closed.Load())
	require.EqualValues(t, 1, st2.closed.Load())
	require.EqualValues(t, 1, sink.closed.Load())
	require.EqualValues(t, 1, a.closed.Load())
}

func TestRunnerLatestDropsOldestWhenStageIsSlow(t *testing.T) {
	imageLeaks(t)
	src := &fakeSource{stream: "cam", n: 200}
	obs := newCountObserver()
	sink := newRecordSink()
	g := Graph{
		Sources:    []SourceSpec{{"cam", src}},
		Stages:     []StageSpec{{Name: "slow", Stage: pass(2 * time.Millisecond), In: Link{2, Latest}}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{4, Block}}},
		SourceLink: Link{2, Latest},
	}
	require.NoError(t, NewRunner(g, obs, nil).Run(context.Background()))
	got := len(sink.seqs["cam"])
	dropped := obs.drops["slow/queue_full"]
	require.Greater(t, dropped, 0, "an unthrottled source into a slow stage must drop")
	require.Equal(t, 200, got+dropped, "every frame is either delivered or counted as dropped")
	seqs := sink.seqs["cam"]
	require.Equal(t, uint64(200), seqs[len(seqs)-1], "latest keeps the newest frame")
}

func TestRunnerDropsStaleFramesPastTheBudget(t *testing.T) {
	imageLeaks(t)
	src := &fakeSource{stream: "cam", n: 40}
	obs := newCountObserver()
	sink := newRecordSink()
	g := Graph{
		Sources: []SourceSpec{{"cam", src}},
		Stages: []StageSpec{
			{Name: "slow", Stage: pass(5 * time.Millisecond), In: Link{64, Block}},
			{Name: "after", Stage: pass(0), In: Link{64, Block}},
		},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{4, Block}}},
		SourceLink: Link{64, Block},
		Budget:     20 * time.Millisecond,
	}
	require.NoError(t, NewRunner(g, obs, nil).Run(context.Background()))
	stale := obs.drops["slow/stale"] + obs.drops["after/stale"]
	require.Greater(t, stale, 0)
	require.Equal(t, 40, len(sink.seqs["cam"])+stale)
}

func TestRunnerDrainsInFlightFramesOnCancel(t *testing.T) {
	imageLeaks(t)
	src := &fakeSource{stream: "cam", n: -1, interval: time.Millisecond}
	sink := newRecordSink()
	var processed atomic.Int64
	st := &funcStage{fn: func(ctx context.Context, f *Frame) ([]*Frame, error) {
		processed.Add(1)
		time.Sleep(3 * time.Millisecond)
		return []*Frame{f}, nil
	}}
	g := Graph{
		Sources:    []SourceSpec{{"cam", src}},
		Stages:     []StageSpec{{Name: "s", Stage: st, In: Link{8, Block}}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{8, Block}}},
		SourceLink: Link{8, Block},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.NoError(t, NewRunner(g, nil, nil).Run(ctx))
	require.EqualValues(t, processed.Load(), len(sink.seqs["cam"]), "every processed frame reached the sink")
	require.Equal(t, int(src.seq), len(sink.seqs["cam"]), "every captured frame was drained, none lost")
}

func TestRunnerHardStopsAHungStage(t *testing.T) {
	src := &fakeSource{stream: "cam", n: -1, interval: time.Millisecond}
	release := make(chan struct{})
	st := &funcStage{fn: func(ctx context.Context, f *Frame) ([]*Frame, error) {
		<-release // a cgo call that never returns
		return []*Frame{f}, nil
	}}
	g := Graph{
		Sources:      []SourceSpec{{"cam", src}},
		Stages:       []StageSpec{{Name: "hung", Stage: st, In: Link{2, Block}}},
		Sinks:        []SinkSpec{{Name: "rec", Sink: newRecordSink(), In: Link{2, Block}}},
		SourceLink:   Link{2, Block},
		DrainTimeout: 200 * time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := NewRunner(g, nil, nil).Run(ctx)
	require.ErrorIs(t, err, ErrDrainTimeout)
	require.Less(t, time.Since(start), 5*time.Second, "stop is bounded")
	// Let the hung call return so its goroutines (and Mats) do not leak into
	// the next test.
	close(release)
	require.Eventually(t, func() bool { return !strings.Contains(allStacks(), "stages.(*Runner)") },
		5*time.Second, 10*time.Millisecond, "runner goroutines end once the hung call returns")
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

func TestRunnerEventSinksGetOnlyEventsAndEmit(t *testing.T) {
	imageLeaks(t)
	src := &fakeSource{stream: "cam", n: 20}
	tagger := &funcStage{fn: func(ctx context.Context, f *Frame) ([]*Frame, error) {
		if f.Seq%5 == 0 {
			f.Events = append(f.Events, event.New(event.TrackStarted, "p", f.Stream))
		}
		return []*Frame{f}, nil
	}}
	frames, events := newRecordSink(), eventSink{newRecordSink()}
	g := Graph{
		Sources:    []SourceSpec{{"cam", src}},
		Stages:     []StageSpec{{Name: "tag", Stage: tagger, In: Link{4, Block}}},
		Sinks:      []SinkSpec{{Name: "frames", Sink: frames, In: Link{4, Block}}, {Name: "events", Sink: events, In: Link{1, Latest}}},
		SourceLink: Link{4, Block},
	}
	r := NewRunner(g, nil, nil)
	require.NoError(t, r.Run(context.Background()))
	require.Len(t, frames.seqs["cam"], 20)
	require.Equal(t, []uint64{5, 10, 15, 20}, events.seqs["cam"], "event sinks see only frames with events, never dropped")
	require.Len(t, events.events, 4)
}

func TestRunnerRetriesUnreachableSource(t *testing.T) {
	imageLeaks(t)
	src := &fakeSource{stream: "cam", n: 3, notConnected: 2}
	sink := newRecordSink()
	g := Graph{
		Sources:    []SourceSpec{{"cam", src}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{4, Block}}},
		SourceLink: Link{4, Block},
		BackoffMin: time.Millisecond,
	}
	require.NoError(t, NewRunner(g, nil, nil).Run(context.Background()))
	require.Equal(t, 3, src.connects)
	require.Len(t, sink.seqs["cam"], 3)
}

// batchStage records batch sizes.
type batchStage struct {
	funcStage
	n     int
	sizes []int
}

func (b *batchStage) BatchSize() int { return b.n }
func (b *batchStage) ProcessBatch(ctx context.Context, fs []*Frame) ([]*Frame, error) {
	b.sizes = append(b.sizes, len(fs))
	return fs, nil
}

func TestRunnerBatchesAcrossStreams(t *testing.T) {
	imageLeaks(t)
	bs := &batchStage{n: 4}
	sink := newRecordSink()
	g := Graph{
		Sources:    []SourceSpec{{"a", &fakeSource{stream: "a", n: 16}}, {"b", &fakeSource{stream: "b", n: 16}}},
		Stages:     []StageSpec{{Name: "detect", Stage: bs, In: Link{16, Block}, BatchTimeout: 20 * time.Millisecond}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{4, Block}}},
		SourceLink: Link{16, Block},
	}
	require.NoError(t, NewRunner(g, nil, nil).Run(context.Background()))
	total, max := 0, 0
	for _, s := range bs.sizes {
		total += s
		if s > max {
			max = s
		}
	}
	require.Equal(t, 32, total)
	require.Equal(t, 4, max, "batches fill up to the batch size")
	require.Len(t, sink.seqs["a"], 16)
}

func TestRunnerFailsWhenASinkCannotConnect(t *testing.T) {
	g := Graph{
		Sources: []SourceSpec{{"cam", &fakeSource{stream: "cam", n: 1}}},
		Sinks:   []SinkSpec{{Name: "bad", Sink: failingSink{}}},
	}
	err := NewRunner(g, nil, nil).Run(context.Background())
	require.EqualError(t, err, "sink bad: connection refused")
}

type failingSink struct{}

func (failingSink) Connect(context.Context) error       { return errors.New("connection refused") }
func (failingSink) Write(context.Context, *Frame) error { return nil }
func (failingSink) Close(context.Context) error         { return nil }

func TestRunnerKeepStaleStageProcessesLateFrames(t *testing.T) {
	imageLeaks(t)
	src := &fakeSource{stream: "cam", n: 20}
	obs := newCountObserver()
	sink := newRecordSink()
	g := Graph{
		Sources: []SourceSpec{{"cam", src}},
		Stages: []StageSpec{
			{Name: "slow", Stage: pass(3 * time.Millisecond), In: Link{64, Block}, KeepStale: true},
			{Name: "cheap", Stage: pass(0), In: Link{64, Block}, KeepStale: true},
		},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{4, Block}}},
		SourceLink: Link{64, Block},
		Budget:     time.Millisecond,
	}
	require.NoError(t, NewRunner(g, obs, nil).Run(context.Background()))
	require.Len(t, sink.seqs["cam"], 20, "KeepStale stages drop nothing")
	require.Empty(t, obs.drops)
}

type imageEventSink struct {
	eventSink
	images int
}

func (s *imageEventSink) NeedsImages() bool { return true }
func (s *imageEventSink) Write(ctx context.Context, f *Frame) error {
	if f.Image != nil && f.Image.Cols() == 4 {
		s.images++
	}
	return s.eventSink.Write(ctx, f)
}

func TestRunnerGivesImagesToEventSinksThatNeedThem(t *testing.T) {
	imageLeaks(t)
	tagger := &funcStage{fn: func(ctx context.Context, f *Frame) ([]*Frame, error) {
		if f.Seq%2 == 0 {
			f.Events = append(f.Events, event.New(event.TrackStarted, "p", f.Stream))
		}
		return []*Frame{f}, nil
	}}
	snap := &imageEventSink{eventSink: eventSink{newRecordSink()}}
	g := Graph{
		Sources:    []SourceSpec{{"cam", &fakeSource{stream: "cam", n: 10}}},
		Stages:     []StageSpec{{Name: "tag", Stage: tagger, In: Link{4, Block}}},
		Sinks:      []SinkSpec{{Name: "snap", Sink: snap, In: Link{4, Block}}},
		SourceLink: Link{4, Block},
	}
	require.NoError(t, NewRunner(g, nil, nil).Run(context.Background()))
	require.Equal(t, 5, snap.images, "every event frame arrives with its image")
}

func TestRunnerParallelReplicasKeepOrder(t *testing.T) {
	imageLeaks(t)
	var used [3]atomic.Int32
	mk := func(i int) *funcStage {
		return &funcStage{fn: func(ctx context.Context, f *Frame) ([]*Frame, error) {
			used[i].Add(1)
			// Uneven work so replicas finish out of order.
			time.Sleep(time.Duration((f.Seq*7)%5) * time.Millisecond)
			return []*Frame{f}, nil
		}}
	}
	s0, s1, s2 := mk(0), mk(1), mk(2)
	sink := newRecordSink()
	g := Graph{
		Sources: []SourceSpec{{"a", &fakeSource{stream: "a", n: 60}}, {"b", &fakeSource{stream: "b", n: 40}}},
		Stages: []StageSpec{{Name: "par", Stage: s0, Replicas: []Stage{s1, s2}, In: Link{8, Block}},
			{Name: "next", Stage: pass(0), In: Link{8, Block}}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{8, Block}}},
		SourceLink: Link{8, Block},
	}
	require.NoError(t, NewRunner(g, nil, nil).Run(context.Background()))
	require.Len(t, sink.seqs["a"], 60)
	require.Len(t, sink.seqs["b"], 40)
	for _, stream := range []string{"a", "b"} {
		for i, s := range sink.seqs[stream] {
			require.Equal(t, uint64(i+1), s, "stream %s keeps its order across replicas", stream)
		}
	}
	for i := range used {
		require.Positive(t, used[i].Load(), "replica %d did work", i)
	}
	for _, s := range []*funcStage{s0, s1, s2} {
		require.EqualValues(t, 1, s.closed.Load())
	}
}

func TestRunnerBatchErrorDropsOnce(t *testing.T) {
	imageLeaks(t)
	obs := newCountObserver()
	bs := &failingBatch{n: 4}
	g := Graph{
		Sources:    []SourceSpec{{"cam", &fakeSource{stream: "cam", n: 8}}},
		Stages:     []StageSpec{{Name: "detect", Stage: bs, In: Link{8, Block}, BatchTimeout: 10 * time.Millisecond}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: newRecordSink(), In: Link{4, Block}}},
		SourceLink: Link{8, Block},
	}
	require.NoError(t, NewRunner(g, obs, nil).Run(context.Background()))
	require.Equal(t, 8, obs.drops["detect/error"], "a failed batch is dropped and counted frame by frame")
}

type failingBatch struct {
	funcStage
	n int
}

func (b *failingBatch) BatchSize() int { return b.n }
func (b *failingBatch) ProcessBatch(context.Context, []*Frame) ([]*Frame, error) {
	return nil, errors.New("inference failed")
}
