package stages

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/event"
)

// leaseSink records each frame's lease and events.
type leaseSink struct {
	mu     sync.Mutex
	leases []uint64
	events []event.Event
}

func (s *leaseSink) Connect(context.Context) error { return nil }
func (s *leaseSink) Close(context.Context) error   { return nil }
func (s *leaseSink) EventsOnly() bool              { return false }
func (s *leaseSink) Write(_ context.Context, f *Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Image != nil {
		s.leases = append(s.leases, f.Lease)
	}
	s.events = append(s.events, f.Events...)
	return nil
}

// TestLeaseStamped: in fleet mode frames carry their stream's lease through
// the reload hub, events get the node and that lease, and a standing
// pipeline outlives its streams.
func TestLeaseStamped(t *testing.T) {
	sink := &leaseSink{}
	tag := &funcStage{fn: func(_ context.Context, f *Frame) ([]*Frame, error) {
		f.Events = append(f.Events, event.New(event.TrackStarted, "p", f.Stream))
		return []*Frame{f}, nil
	}}
	r := NewRunner(Graph{Node: "n1", Standing: true, Stages: []StageSpec{{Name: "tag", Stage: tag, In: Link{Size: 4, Policy: Block}}},
		Sinks: []SinkSpec{{Name: "rec", Sink: sink, In: Link{Size: 4, Policy: Block}}}}, nil, nil)
	r.EnableReload()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	r.SetLease("cam", 42)
	require.NoError(t, r.AddSource(SourceSpec{Stream: "cam", Source: &fakeSource{stream: "cam", n: 3}}))
	deadline := time.Now().Add(5 * time.Second)
	for {
		sink.mu.Lock()
		n := len(sink.events)
		sink.mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Emit("cam", event.New(event.SourceDown, "p", "cam"))
	time.Sleep(100 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("a standing pipeline ended when its only stream did")
	default:
	}
	cancel()
	require.NoError(t, <-done)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.Len(t, sink.leases, 3)
	for _, l := range sink.leases {
		require.Equal(t, uint64(42), l)
	}
	require.Len(t, sink.events, 4)
	for _, e := range sink.events {
		require.Equal(t, "n1", e.Node)
		require.Equal(t, uint64(42), e.Lease)
	}
}
