package stages

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func (s *recordSink) count(stream string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seqs[stream])
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReloadFiniteSourcesStillEndThePipeline(t *testing.T) {
	imageLeaks(t)
	a, b := &fakeSource{stream: "a", n: 40}, &fakeSource{stream: "b", n: 25}
	sink := newRecordSink()
	r := NewRunner(Graph{
		Sources:    []SourceSpec{{"a", a}, {"b", b}},
		Stages:     []StageSpec{{Name: "one", Stage: pass(0), In: Link{2, Block}}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{1, Block}}},
		SourceLink: Link{1, Block},
	}, nil, nil)
	r.EnableReload()
	require.ElementsMatch(t, []string{"a", "b"}, r.Streams())
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("reloadable pipeline of finite files did not end")
	}
	require.Equal(t, 40, sink.count("a"))
	require.Equal(t, 25, sink.count("b"))
	for i, s := range sink.seqs["a"] {
		require.Equal(t, uint64(i+1), s, "stream a out of order")
	}
	require.EqualValues(t, 1, a.closed.Load())
}

func TestReloadAddAndRemoveStreamsWhileRunning(t *testing.T) {
	imageLeaks(t)
	a := &fakeSource{stream: "a", n: -1, interval: 2 * time.Millisecond}
	sink := newRecordSink()
	r := NewRunner(Graph{
		Sources:    []SourceSpec{{"a", a}},
		Stages:     []StageSpec{{Name: "one", Stage: pass(0), In: Link{2, Latest}}},
		Sinks:      []SinkSpec{{Name: "rec", Sink: sink, In: Link{4, Block}}},
		SourceLink: Link{2, Latest},
	}, nil, nil)
	require.ErrorIs(t, NewRunner(Graph{}, nil, nil).AddSource(SourceSpec{"x", a}), ErrReloadNotEnabled)
	r.EnableReload()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitUntil(t, 5*time.Second, "frames of a", func() bool { return sink.count("a") > 10 })

	b := &fakeSource{stream: "b", n: -1, interval: 2 * time.Millisecond}
	require.NoError(t, r.AddSource(SourceSpec{"b", b}))
	require.ErrorContains(t, r.AddSource(SourceSpec{"b", b}), `add stream "b": it is already running`)
	waitUntil(t, 5*time.Second, "frames of added b", func() bool { return sink.count("b") > 10 })
	require.ElementsMatch(t, []string{"a", "b"}, r.Streams())

	require.NoError(t, r.RemoveSource("a"))
	require.EqualValues(t, 1, a.closed.Load(), "removed source closed once")
	require.ErrorContains(t, r.RemoveSource("a"), "no such stream")
	time.Sleep(50 * time.Millisecond) // frames already queued drain
	na, nb := sink.count("a"), sink.count("b")
	waitUntil(t, 5*time.Second, "b to keep going after a was removed", func() bool { return sink.count("b") > nb+10 })
	require.Equal(t, na, sink.count("a"), "a removed but still producing")
	require.Equal(t, []string{"b"}, r.Streams())

	// Removing every stream does not end the pipeline: one can be added again.
	require.NoError(t, r.RemoveSource("b"))
	a2 := &fakeSource{stream: "a", n: -1, interval: 2 * time.Millisecond}
	require.NoError(t, r.AddSource(SourceSpec{"a", a2}))
	waitUntil(t, 5*time.Second, "re-added a", func() bool { return sink.count("a") > na+5 })

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	require.EqualValues(t, 1, a2.closed.Load())
	require.True(t, errors.Is(r.AddSource(SourceSpec{"c", a}), ErrPipelineEnded))
}
