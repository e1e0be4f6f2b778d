package stages

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestParallelStageHoldsAStreamOnlyBehindItsOwnBatches checks that a slow
// batch of one camera does not hold back the frames of another camera that
// a second instance finished meanwhile: they would wait out of sight of the
// deadline check that admitted them.
func TestParallelStageHoldsAStreamOnlyBehindItsOwnBatches(t *testing.T) {
	imageLeaks(t)
	release := make(chan struct{})
	mk := func() *funcStage {
		return &funcStage{fn: func(ctx context.Context, f *Frame) ([]*Frame, error) {
			if f.Stream == "slow" {
				<-release
			}
			return []*Frame{f}, nil
		}}
	}
	slow := &chanSource{stream: "slow", ch: make(chan uint64)}
	fast := &chanSource{stream: "fast", ch: make(chan uint64)}
	sink := newRecordSink()
	g := Graph{
		Sources:    []SourceSpec{{Stream: "slow", Source: slow}, {Stream: "fast", Source: fast}},
		SourceLink: Link{Size: 8, Policy: Block},
		Stages:     []StageSpec{{Name: "det", Stage: mk(), Replicas: []Stage{mk()}, In: Link{1, Block}}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{64, Block}}},
	}
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, NewRunner(g, nil, nil).Run(context.Background())) })
	slow.ch <- 1
	for seq := uint64(1); seq <= 5; seq++ {
		fast.ch <- seq
	}
	require.Eventually(t, func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.seqs["fast"]) == 5
	}, 5*time.Second, time.Millisecond, "the fast camera's frames go on while the slow batch runs")
	sink.mu.Lock()
	require.Empty(t, sink.seqs["slow"])
	sink.mu.Unlock()
	slow.ch <- 2
	close(release)
	close(slow.ch)
	close(fast.ch)
	wg.Wait()
	require.Equal(t, []uint64{1, 2}, sink.seqs["slow"])
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, sink.seqs["fast"])
}

func TestStreamOrderReleasesEachStreamInBatchOrder(t *testing.T) {
	frame := func(stream string, seq uint64) *Frame { return &Frame{Stream: stream, Seq: seq} }
	seqs := func(fs []*Frame) (got []string) {
		for _, f := range fs {
			got = append(got, f.Stream+":"+string(rune('0'+f.Seq)))
		}
		return got
	}
	o := newStreamOrder()
	b0 := []*Frame{frame("a", 1), frame("b", 1), frame("a", 2)}
	b1 := []*Frame{frame("c", 1)}
	b2 := []*Frame{frame("a", 3)}
	s0, s1, s2 := o.add(0, b0), o.add(1, b1), o.add(2, b2)
	require.Equal(t, []string{"a", "b"}, s0, "each stream once, in order of first appearance")

	require.Equal(t, []string{"c:1"}, seqs(o.done(1, s1, b1, nil)), "c waits for no earlier batch")
	require.Empty(t, o.done(2, s2, b2, nil), "a's batch 2 waits for batch 0")
	made := frame("z", 9) // a frame of a stream the batch did not hold goes on at once
	got := o.done(0, s0, append(b0, made), nil)
	require.Equal(t, []string{"z:9", "a:1", "a:2", "a:3", "b:1"}, seqs(got),
		"batch 0 frees its own frames and batch 2's, each stream in order")
	require.Empty(t, o.waiting, "nothing left waiting")
	require.Empty(t, o.finished, "nothing left held")
}
