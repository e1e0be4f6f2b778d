package jsonl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/track"
)

func TestFileSinkAppendsValidEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	s := NewFile(path, false)
	require.True(t, s.EventsOnly())
	ctx := context.Background()
	require.NoError(t, s.Connect(ctx))
	e := event.New(event.TrackStarted, "lobby", "cam")
	e.TrackID, e.Label, e.FrameSeq, e.Confidence = 7, "person", 12, 0.9
	e.Box = &geom.Rect{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}
	require.NoError(t, s.Write(ctx, &stages.Frame{Stream: "cam", Events: []event.Event{e}}))

	// Flushed on Write: a reader sees it before Close.
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var got event.Event
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(data), &got))
	require.Equal(t, e.ID, got.ID)
	require.NoError(t, event.Validate(bytes.TrimSpace(data)))

	require.NoError(t, s.Close(ctx))
	require.NoError(t, s.Close(ctx), "close twice is safe")

	// Reopening appends.
	s2 := NewFile(path, false)
	require.NoError(t, s2.Connect(ctx))
	require.NoError(t, s2.Write(ctx, &stages.Frame{Stream: "cam", Events: []event.Event{e}}))
	require.NoError(t, s2.Close(ctx))
	data, _ = os.ReadFile(path)
	require.Equal(t, 2, bytes.Count(data, []byte("\n")))
}

func TestWriterSinkFrames(t *testing.T) {
	var buf bytes.Buffer
	s := NewWriter("stdout", &buf, true)
	require.False(t, s.EventsOnly())
	ctx := context.Background()
	require.NoError(t, s.Connect(ctx))
	f := &stages.Frame{Stream: "cam", Seq: 3, Width: 640, Height: 480, Inferred: true,
		Tracks: []track.Track{{ID: 1, Label: "person", Score: 0.8, Box: geom.Rect{X: 1, Y: 2, W: 3, H: 4}}}}
	require.NoError(t, s.Write(ctx, f))
	require.NoError(t, s.Close(ctx))
	sc := bufio.NewScanner(&buf)
	require.True(t, sc.Scan())
	var fl frameLine
	require.NoError(t, json.Unmarshal(sc.Bytes(), &fl))
	require.Equal(t, "frame", fl.Kind)
	require.Equal(t, uint64(3), fl.Seq)
	require.Equal(t, geom.Rect{X: 1, Y: 2, W: 3, H: 4}, fl.Tracks[0].Box)
}

func TestFileSinkErrors(t *testing.T) {
	s := NewFile("/nonexistent-dir/events.jsonl", false)
	err := s.Connect(context.Background())
	require.ErrorContains(t, err, "jsonl: cannot open /nonexistent-dir/events.jsonl for appending events")
	require.ErrorIs(t, s.Write(context.Background(), &stages.Frame{}), stages.ErrNotConnected)
}
