package stages

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/geom"
)

func drain(q *fairQueue) []string {
	var got []string
	for {
		f, st := q.recv(closedStop)
		if st != recvOK {
			return got
		}
		got = append(got, fmt.Sprintf("%s%d", f.Stream, f.Seq))
		f.Release()
	}
}

func TestFairQueueServesStreamsInTurn(t *testing.T) {
	imageLeaks(t)
	q := newFairQueue("detect", Link{Size: 8, Policy: Latest}, nil, NopObserver{})
	for i := uint64(1); i <= 4; i++ {
		q.push(context.Background(), NewFrame("a", i, newTestImage()))
	}
	q.push(context.Background(), NewFrame("b", 1, newTestImage()))
	q.push(context.Background(), NewFrame("c", 1, newTestImage()))
	q.push(context.Background(), NewFrame("c", 2, newTestImage()))
	// A stream that floods the queue gets one turn per round like the others;
	// each stream's frames stay in order.
	require.Equal(t, []string{"a1", "b1", "c1", "a2", "c2", "a3", "a4"}, drain(q))
}

func TestFairQueueWeights(t *testing.T) {
	imageLeaks(t)
	q := newFairQueue("detect", Link{Size: 8, Policy: Latest}, map[string]int{"a": 2}, NopObserver{})
	for i := uint64(1); i <= 4; i++ {
		q.push(context.Background(), NewFrame("a", i, newTestImage()))
		q.push(context.Background(), NewFrame("b", i, newTestImage()))
	}
	require.Equal(t, []string{"a1", "a2", "b1", "a3", "a4", "b2", "b3", "b4"}, drain(q))
}

func TestFairQueueKeepsTheNewestFramesOfEachStream(t *testing.T) {
	imageLeaks(t)
	obs := newCountObserver()
	q := newFairQueue("detect", Link{Size: 2, Policy: Latest}, nil, obs)
	for i := uint64(1); i <= 5; i++ {
		q.push(context.Background(), NewFrame("a", i, newTestImage()))
	}
	q.push(context.Background(), NewFrame("b", 1, newTestImage()))
	// a's oldest three were dropped to make room; b, which pushed once, lost nothing.
	require.Equal(t, 3, obs.drops["detect/queue_full"])
	require.Equal(t, []string{"a4", "b1", "a5"}, drain(q))
}

func TestFairQueueSkippedFramesNeverPushOutARun(t *testing.T) {
	imageLeaks(t)
	obs := newCountObserver()
	q := newFairQueue("detect", Link{Size: 1, Policy: Latest}, nil, obs)
	frame := func(seq uint64, skip bool) *Frame {
		f := NewFrame("a", seq, newTestImage())
		f.Focus.Skip = skip
		return f
	}
	// A full-frame run waits for a detector; the gate skips the next six
	// frames. The run stays, and the newest skipHeld skipped frames wait
	// behind it in order.
	q.push(context.Background(), frame(1, false))
	for i := uint64(2); i <= 7; i++ {
		q.push(context.Background(), frame(i, true))
	}
	require.Equal(t, 2, obs.drops["detect/queue_full"], "only the skipped frames past skipHeld")
	require.Equal(t, []string{"a1", "a4", "a5", "a6", "a7"}, drain(q))

	// Two runs in a row: the newer replaces the older (Size 1), the
	// skipped frame between them stays.
	q.push(context.Background(), frame(8, false))
	q.push(context.Background(), frame(9, true))
	q.push(context.Background(), frame(10, false))
	require.Equal(t, 3, obs.drops["detect/queue_full"])
	require.Equal(t, []string{"a9", "a10"}, drain(q))
}

func TestFairQueueCloseDrainsThenEnds(t *testing.T) {
	imageLeaks(t)
	obs := newCountObserver()
	q := newFairQueue("detect", Link{Size: 2, Policy: Latest}, nil, obs)
	q.push(context.Background(), NewFrame("a", 1, newTestImage()))
	got := make(chan []string)
	go func() {
		var seen []string
		for {
			f, st := q.recv(nil)
			if st == recvClosed {
				got <- seen
				return
			}
			seen = append(seen, f.Stream)
			f.Release()
		}
	}()
	q.push(context.Background(), NewFrame("b", 1, newTestImage()))
	q.close()
	q.push(context.Background(), NewFrame("c", 1, newTestImage())) // after close: dropped
	select {
	case seen := <-got:
		require.ElementsMatch(t, []string{"a", "b"}, seen)
	case <-time.After(5 * time.Second):
		t.Fatal("recv did not end after close")
	}
	require.Equal(t, 1, obs.drops["detect/shutdown"])
}

func TestFairQueueRecvTimesOut(t *testing.T) {
	q := newFairQueue("detect", Link{Size: 2, Policy: Latest}, nil, NopObserver{})
	_, st := q.recv(closedStop)
	require.Equal(t, recvTimeout, st)
	_, st = q.recv(time.After(10 * time.Millisecond))
	require.Equal(t, recvTimeout, st)
}

// TestRunnerServesEqualStreamsFairly runs six equal paced streams into a stage
// that can take only a fraction of their frames: each stream gets its share.
func TestRunnerServesEqualStreamsFairly(t *testing.T) {
	imageLeaks(t)
	var srcs []SourceSpec
	for i := range 6 {
		srcs = append(srcs, SourceSpec{Stream: fmt.Sprintf("cam%d", i), Source: &fakeSource{stream: fmt.Sprintf("cam%d", i), n: -1, interval: time.Millisecond}})
	}
	sink := newRecordSink()
	g := Graph{
		Sources:    srcs,
		SourceLink: Link{Size: 2, Policy: Latest},
		Stages:     []StageSpec{{Name: "slow", Stage: pass(2 * time.Millisecond), In: Link{1, Block}}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{64, Block}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	require.NoError(t, NewRunner(g, nil, nil).Run(ctx))
	lo, hi := 1<<30, 0
	for _, s := range srcs {
		n := len(sink.seqs[s.Stream])
		lo, hi = min(lo, n), max(hi, n)
	}
	require.Positive(t, lo, "a stream got nothing: %v", sink.seqs)
	// Round-robin gives equal turns; one frame either side is the run's edges.
	require.LessOrEqual(t, hi-lo, 2, "frames out per stream: min %d max %d", lo, hi)
}

// gateStage blocks every call until released, and counts calls in flight.
type gateStage struct {
	release  chan struct{}
	inFlight atomic.Int32
}

func (s *gateStage) Process(ctx context.Context, f *Frame) ([]*Frame, error) {
	s.inFlight.Add(1)
	<-s.release
	return []*Frame{f}, nil
}
func (*gateStage) Close(context.Context) error { return nil }

// chanSource yields the frames sent on its channel.
type chanSource struct {
	stream string
	ch     chan uint64
}

func (s *chanSource) Connect(context.Context) error { return nil }
func (s *chanSource) Read(ctx context.Context) (*Frame, error) {
	select {
	case seq, ok := <-s.ch:
		if !ok {
			return nil, ErrEndOfStream
		}
		return NewFrame(s.stream, seq, newTestImage()), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
func (*chanSource) Close(context.Context) error { return nil }

// TestParallelStageTakesNoFrameWhileEveryInstanceIsBusy checks the admission
// point: while both instances are busy the dispatcher holds no frame, so
// the frames waiting are the newest ones in the per-stream slots, not one
// taken early that ages behind the busy instances.
func TestParallelStageTakesNoFrameWhileEveryInstanceIsBusy(t *testing.T) {
	imageLeaks(t)
	release := make(chan struct{})
	a, b := &gateStage{release: release}, &gateStage{release: release}
	src := &chanSource{stream: "cam", ch: make(chan uint64)}
	obs := newCountObserver()
	sink := newRecordSink()
	g := Graph{
		Sources:    []SourceSpec{{Stream: "cam", Source: src}},
		SourceLink: Link{Size: 2, Policy: Latest},
		Stages:     []StageSpec{{Name: "det", Stage: a, Replicas: []Stage{b}, In: Link{1, Block}}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{64, Block}}},
	}
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, NewRunner(g, obs, nil).Run(context.Background())) })
	src.ch <- 1
	src.ch <- 2
	require.Eventually(t, func() bool { return a.inFlight.Load()+b.inFlight.Load() == 2 }, 5*time.Second, time.Millisecond)
	for seq := uint64(3); seq <= 10; seq++ {
		src.ch <- seq
	}
	// Read returns frame 10 before the runner has pushed it: wait for the
	// six oldest of 3..10 to be dropped, leaving 9 and 10.
	require.Eventually(t, func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.drops["det/queue_full"] == 6
	}, 5*time.Second, time.Millisecond)
	close(src.ch)
	close(release)
	wg.Wait()
	require.Equal(t, []uint64{1, 2, 9, 10}, sink.seqs["cam"])
}

// A batch is n detector inputs: frames with motion regions count one per
// region, frames the gate skipped count nothing.
func TestBatcherFillsByWorkUnits(t *testing.T) {
	imageLeaks(t)
	q := newQueue("det", Link{Size: 16, Policy: Block}, NopObserver{})
	frame := func(seq uint64, focus Focus) {
		f := NewFrame("cam", seq, newTestImage())
		f.Focus = focus
		q.push(context.Background(), f)
	}
	two := []geom.Rect{{W: 1, H: 1}, {X: 2, W: 1, H: 1}}
	frame(1, Focus{Regions: two})     // 2 inputs
	frame(2, Focus{Skip: true})       // none
	frame(3, Focus{Regions: two[:1]}) // 1
	frame(4, Focus{})                 // the whole frame: 1 -> 4 in all
	frame(5, Focus{})                 // next batch
	frame(6, Focus{})
	q.close()
	b := newBatcher(q, 4, 0)
	var sizes []int
	for {
		batch := b.next(nil)
		if batch == nil {
			break
		}
		sizes = append(sizes, len(batch))
		for _, f := range batch {
			f.Release()
		}
	}
	require.Equal(t, []int{4, 2}, sizes)
}
