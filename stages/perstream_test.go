package stages

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// streamStage checks the StreamWorkers contract from inside the stage: no
// two calls for one stream at once, each stream's frames in order. It keeps
// per-stream state without a lock of its own, as the motion stage does, so
// the race detector sees whether the runner orders the calls.
type streamStage struct {
	mu      sync.Mutex
	state   map[string]*streamSeen // made under mu; each entry touched unlocked
	running atomic.Int32
	most    atomic.Int32
	bad     atomic.Value // string: the first violation
	closed  atomic.Int32
}

type streamSeen struct {
	busy bool
	last uint64
	n    int
}

func newStreamStage() *streamStage { return &streamStage{state: map[string]*streamSeen{}} }

func (s *streamStage) Process(_ context.Context, f *Frame) ([]*Frame, error) {
	s.mu.Lock()
	st := s.state[f.Stream]
	if st == nil {
		st = &streamSeen{}
		s.state[f.Stream] = st
	}
	s.mu.Unlock()
	if st.busy {
		s.bad.CompareAndSwap(nil, fmt.Sprintf("stream %s: two frames at once", f.Stream))
	}
	if f.Seq <= st.last {
		s.bad.CompareAndSwap(nil, fmt.Sprintf("stream %s: frame %d after %d", f.Stream, f.Seq, st.last))
	}
	st.busy, st.last = true, f.Seq
	n := s.running.Add(1)
	for {
		m := s.most.Load()
		if n <= m || s.most.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(500 * time.Microsecond)
	s.running.Add(-1)
	st.n++
	st.busy = false
	return []*Frame{f}, nil
}

func (s *streamStage) Close(context.Context) error { s.closed.Add(1); return nil }

func (s *streamStage) violation() string {
	v, _ := s.bad.Load().(string)
	return v
}

// TestRunnerStreamWorkersKeepPerStreamOrder runs a stage on three
// goroutines, live (the fair queue, frames dropped when the stage falls
// behind) and offline (a blocking queue, every frame): streams are worked
// on at once, a stream's frames one at a time and in order, and they leave
// in order.
func TestRunnerStreamWorkersKeepPerStreamOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		link Link
		n    int
	}{
		{"live", Link{Size: 2, Policy: Latest}, 300},
		{"offline", Link{Size: 4, Policy: Block}, 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imageLeaks(t)
			var srcs []SourceSpec
			for i := range 5 {
				id := fmt.Sprintf("cam%d", i)
				srcs = append(srcs, SourceSpec{Stream: id, Source: &fakeSource{stream: id, n: tc.n}})
			}
			st := newStreamStage()
			obs := newCountObserver()
			sink := newRecordSink()
			g := Graph{
				Sources:    srcs,
				SourceLink: tc.link,
				Stages: []StageSpec{{Name: "motion", Stage: st, StreamWorkers: 3},
					{Name: "next", Stage: pass(0), In: Link{Size: 1, Policy: Block}}},
				Sinks: []SinkSpec{{Name: "rec", Sink: sink, In: Link{Size: 64, Policy: Block}}},
			}
			require.NoError(t, NewRunner(g, obs, nil).Run(context.Background()))
			require.Empty(t, st.violation())
			require.EqualValues(t, 1, st.closed.Load())
			require.GreaterOrEqual(t, st.most.Load(), int32(2), "streams were worked on at once")
			require.LessOrEqual(t, st.most.Load(), int32(3), "at most StreamWorkers at once")
			for _, s := range srcs {
				seqs := sink.seqs[s.Stream]
				require.NotEmpty(t, seqs, s.Stream)
				for i := 1; i < len(seqs); i++ {
					require.Less(t, seqs[i-1], seqs[i], "stream %s leaves in order", s.Stream)
				}
				if tc.link.Policy == Block {
					require.Len(t, seqs, tc.n, "offline: every frame of %s", s.Stream)
				}
			}
			total := 0
			for _, s := range srcs {
				total += len(sink.seqs[s.Stream])
			}
			require.Equal(t, 5*tc.n, total+obs.drops["motion/queue_full"], "every frame delivered or counted as dropped")
		})
	}
}

// TestFairQueueClaimHoldsAStreamUntilRelease: a claimed stream's next frame
// waits for the release, other streams' frames do not, and frames left in a
// held stream when the queue closes still come out after the release.
func TestFairQueueClaimHoldsAStreamUntilRelease(t *testing.T) {
	imageLeaks(t)
	q := newFairQueue("motion", Link{Size: 4, Policy: Latest}, nil, NopObserver{})
	push := func(stream string, seq uint64) { q.push(context.Background(), NewFrame(stream, seq, newTestImage())) }
	push("a", 1)
	push("a", 2)
	push("b", 1)
	f, st := q.recvClaim()
	require.Equal(t, recvOK, st)
	require.Equal(t, "a1", fmt.Sprintf("%s%d", f.Stream, f.Seq))
	f.Release()
	g, _ := q.recvClaim()
	require.Equal(t, "b1", fmt.Sprintf("%s%d", g.Stream, g.Seq), "a is held: b's frame comes first")
	g.Release()

	got := make(chan string, 1)
	go func() {
		f, st := q.recvClaim()
		if st != recvOK {
			got <- "closed"
			return
		}
		name := fmt.Sprintf("%s%d", f.Stream, f.Seq)
		f.Release() // before the send: the test may end as soon as it reads
		got <- name
	}()
	select {
	case s := <-got:
		t.Fatalf("got %s while a and b were held", s)
	case <-time.After(20 * time.Millisecond):
	}
	q.release("b") // b has nothing queued: the waiter keeps waiting
	push("b", 2)
	require.Equal(t, "b2", <-got, "b's new frame goes to the waiter")
	q.release("b")
	q.close()
	// a's frame left at close is not lost: a's holder takes it after its
	// release, while a consumer holding nothing is told the queue closed.
	go func() {
		if _, st := q.recvClaim(); st == recvClosed {
			got <- "closed"
			return
		}
		got <- "a frame"
	}()
	require.Equal(t, "closed", <-got)
	q.release("a")
	f, st = q.recvClaim()
	require.Equal(t, recvOK, st)
	require.Equal(t, "a2", fmt.Sprintf("%s%d", f.Stream, f.Seq))
	f.Release()
	q.release("a")
	_, st = q.recvClaim()
	require.Equal(t, recvClosed, st)
}
