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
	runs := a.Metrics.CounterByStream("osprey_inferences_total")
	t.Logf("detector inputs per stream over %d frames: %v; gate decisions %v", n, runs, decisions(a))
	ran := uint64(0)
	for k, v := range decisions(a) {
		if strings.HasSuffix(k, "/idle/") && !strings.HasPrefix(k, "skip/") {
			ran += v
		}
	}
	require.LessOrEqual(t, float64(ran), 0.05*n, "an idle camera runs the detector on at most 5%% of its frames")
	require.Greater(t, float64(runs["busy"]), 0.5*n, "a busy camera keeps its detector")
	require.Greater(t, a.Counts()["busy"].Tracks["person"], 2, "people are still tracked under gating")
}

// decisions returns the motion gate's decisions by "mode/reason/stream/".
func decisions(a *App) map[string]uint64 {
	return a.Metrics.CounterBy("osprey_motion_decisions_total", func(l map[string]string) string {
		return l["mode"] + "/" + l["reason"] + "/" + l["stream"] + "/"
	})
}
