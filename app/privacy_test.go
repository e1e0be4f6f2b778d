package app

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/internal/browsertest"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// TestChromiumRedactedPreview runs BlazeFace on Megamind.avi (paced live,
// looped) with `privacy: {redact: [face]}` and watches the preview in
// Debian's headless Chromium: the privacy stage runs on every frame after
// the tracker and the page shows the redacted video (the pixel figures are
// in package privacy's tests). OSPREY_PRIVACY_METHOD picks the method
// (default blur); OSPREY_PRIVACY_SCREENSHOT keeps the screenshot (relative
// to the repository root, e.g. docs/preview-privacy.png).
func TestChromiumRedactedPreview(t *testing.T) {
	model, _ := filepath.Abs("../third_party/blazeface/ONNX/face_detection_front_128x128_barracuda.onnx")
	realpart.File(t, realpart.BlazeFace, model)
	megamind := "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
	realpart.File(t, realpart.SampleVideo, megamind)
	browser := browsertest.Need(t)
	matcheck.Leaks(t)
	method := os.Getenv("OSPREY_PRIVACY_METHOD")
	if method == "" {
		method = "blur"
	}
	shot := os.Getenv("OSPREY_PRIVACY_SCREENSHOT")
	switch {
	case shot == "":
		shot = filepath.Join(t.TempDir(), "privacy.png")
	case !filepath.IsAbs(shot):
		shot = filepath.Join("..", shot)
	}
	shot, _ = filepath.Abs(shot)
	cfg := parse(t, fmt.Sprintf(`name: privacy
latency_budget: 500ms
streams:
  - {id: megamind, url: "file://%s", loop: true, realtime: true}
model: {path: %s, format: blazeface, providers: [cpu], threads: 1}
detect: {confidence: 0.6}
privacy: {redact: [face], method: %s}
sinks:
  preview: {listen: "127.0.0.1:0"}
`, megamind, model, method))
	a, err := New(cfg, quietLog(), Options{})
	require.NoError(t, err)
	_, stop := runApp(t, a)
	base := waitPreview(t, a, "megamind", 30*time.Second)
	r, err := browser.Watch(base+"/?stream=megamind", 6, 30, shot)
	require.NoError(t, err)
	require.NoError(t, stop())
	snap := a.Metrics.Snapshot()
	st := snap.Stages["privacy"]
	t.Logf("chromium decoded %d frames, %d boxes drawn; privacy stage: %d frames, mean %.2f ms, p99 %.2f ms; detect mean %.2f ms; screenshot %s",
		r.FramesDecoded, r.BoxesDrawn, st.Count, st.Mean, st.P99, snap.Stages["detect"].Mean, shot)
	require.Empty(t, r.Error, "page error (console: %v)", r.Console)
	require.Greater(t, r.FramesDecoded, 30, "frames decoded in Chromium (console: %v)", r.Console)
	require.Positive(t, r.BoxesDrawn, "the page drew the face boxes")
	require.Positive(t, st.Count, "the privacy stage ran")
}
