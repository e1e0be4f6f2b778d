package main

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/internal/realpart"
)

// A short mixed run of the cameras-per-box benchmark on the real parts: the
// idle clip is made with ffmpeg, one busy and one idle camera run gated, and
// the report carries what the benchmark exists to show.
func TestBenchCamerasGatedRun(t *testing.T) {
	const model = "../../models/ssd_mobilenet_v2_coco.onnx"
	realpart.File(t, realpart.SSDModel, model)
	realpart.File(t, realpart.SampleVideo, vtestPath)
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		realpart.Missing(t, realpart.FFmpeg, err)
	}
	idle, err := makeIdleClip(t.TempDir(), 10*time.Second)
	require.NoError(t, err)
	floor, err := decodeCost(context.Background(), idle, 1, 2*time.Second)
	require.NoError(t, err)
	require.Positive(t, floor, "decoding costs CPU")

	b := &cameraBench{Model: model, Budget: 2 * time.Second, Duration: 6 * time.Second, Workers: 1, Idle: idle}
	r, err := b.run(context.Background(), true, 1, 1, nil)
	if err != nil {
		realpart.Missing(t, realpart.ORT, err)
	}
	require.Len(t, r.Streams, 2)
	require.Positive(t, r.Cores)
	byKind := map[string]benchStream{}
	for _, s := range r.Streams {
		byKind[s.Kind] = s
	}
	busy, still := byKind["busy"], byKind["idle"]
	require.Positive(t, busy.In)
	require.Greater(t, busy.Runs, still.Runs, "the busy camera runs the detector more than the idle one: %+v", r.Streams)
	require.Less(t, float64(still.Runs), 0.2*float64(still.In), "the idle camera is gated: %+v", still)
	require.Zero(t, still.Events, "no object events on the idle camera after its start")
}
