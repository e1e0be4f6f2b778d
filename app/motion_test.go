package app

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// idleClip makes a still scene with temporal sensor noise from vtest.avi's
// first frame: a camera watching an empty street.
func idleClip(t *testing.T, frames int) string {
	t.Helper()
	ffmpeg := realpart.Command(t, realpart.FFmpeg, "ffmpeg")
	out := filepath.Join(t.TempDir(), "idle.avi")
	cmd := exec.Command(ffmpeg, "-v", "error", "-i", vtest, "-vf",
		fmt.Sprintf("select=eq(n\\,0),loop=loop=%d:size=1,noise=alls=6:allf=t", frames),
		"-frames:v", fmt.Sprint(frames), "-c:v", "mjpeg", "-q:v", "3", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg idle clip: %v: %s", err, b)
	}
	return out
}

// Motion gating on real video: the busy camera (vtest.avi, people walking)
// keeps its detector and its tracks; the idle camera (a still frame with
// sensor noise) runs the detector only at its start and refreshes, while
// every frame still reaches the end of the pipeline and no Mat leaks.
func TestMotionGatingSkipsIdleCamera(t *testing.T) {
	model := needModel(t)
	realpart.File(t, realpart.SampleVideo, vtest)
	matcheck.Leaks(t)
	const n = 120
	idle := idleClip(t, n)
	cfg := parse(t, fmt.Sprintf(`name: gated
streams:
  - {id: busy, url: "file://%s"}
  - {id: idle, url: "file://%s"}
model: {path: %s, threads: 2}
detect: {confidence: 0.5, classes: [person], batch: 2, batch_timeout: 2ms}
motion: {enabled: true, refresh: 5s}
`, vtest, idle, model))
	a, err := New(cfg, quietLog(), Options{MaxFrames: n})
	require.NoError(t, err)
	require.NoError(t, a.Run(context.Background()))

	snap := a.Metrics.Snapshot()
	for _, s := range []string{"busy", "idle"} {
		require.EqualValues(t, n, snap.Streams[s].Out, "%s: every frame comes out, inferred or not", s)
	}
	runs := counterByStream(t, a, "osprey_inferences_total")
	t.Logf("detector inputs per stream over %d frames: %v; gate decisions %v", n, runs, decisions(t, a))
	ran := 0.0
	for k, v := range decisions(t, a) {
		if strings.HasSuffix(k, "/idle/") && !strings.HasPrefix(k, "skip/") {
			ran += v
		}
	}
	require.LessOrEqual(t, ran, 0.05*n, "an idle camera runs the detector on at most 5%% of its frames")
	require.Greater(t, runs["busy"], 0.5*n, "a busy camera keeps its detector")
	require.Greater(t, a.Counts()["busy"].Tracks["person"], 2, "people are still tracked under gating")
}

// decisions returns the motion gate's decisions by "mode/reason/stream/".
func decisions(t *testing.T, a *App) map[string]float64 {
	t.Helper()
	mfs, err := a.Metrics.Registry().Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "osprey_motion_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["mode"]+"/"+labels["reason"]+"/"+labels["stream"]+"/"] += m.GetCounter().GetValue()
		}
	}
	return out
}

// counterByStream sums a counter family by its stream label.
func counterByStream(t *testing.T, a *App, name string) map[string]float64 {
	t.Helper()
	mfs, err := a.Metrics.Registry().Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stream" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
