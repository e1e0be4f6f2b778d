package preview

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/browsertest"
)

// TestChromiumEndToEnd opens the page in Debian's headless Chromium, which
// connects over WHEP, decodes the video and draws boxes from the metadata.
// OSPREY_PREVIEW_SECONDS sets how long it watches (default 8; use 30 to
// measure latency), OSPREY_PREVIEW_SCREENSHOT where the screenshot goes and
// OSPREY_PREVIEW_CODEC the codec (h264 by default, or vp8), and
// OSPREY_PREVIEW_GSTREAMER a GStreamer encoder to use instead of libx264/libvpx.
func TestChromiumEndToEnd(t *testing.T) {
	browser := browsertest.Need(t)
	seconds := 8
	if v, err := strconv.Atoi(os.Getenv("OSPREY_PREVIEW_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	shot := os.Getenv("OSPREY_PREVIEW_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "preview.png")
	}

	c := loadClip(t)
	cfg := testConfig()
	cfg.Token = "e2e-token"
	if codec := os.Getenv("OSPREY_PREVIEW_CODEC"); codec != "" {
		cfg.Codec = codec
	}
	cfg.GStreamerEncoder = os.Getenv("OSPREY_PREVIEW_GSTREAMER")
	s, base := startSink(t, cfg)
	_ = s.SetOverlays("lobby",
		[]Zone{{Name: "entrance", Polygon: []geom.Point{{X: 0.05, Y: 0.55}, {X: 0.45, Y: 0.55}, {X: 0.45, Y: 0.95}, {X: 0.05, Y: 0.95}}}},
		[]Line{{Name: "gate", From: geom.Point{X: 0.1, Y: 0.45}, To: geom.Point{X: 0.9, Y: 0.45}}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.feed(ctx, s, "lobby", 25) })
	defer func() { cancel(); wg.Wait() }()
	waitFor(t, 5*time.Second, "stream", func() bool { return s.lookup("lobby") != nil })

	r, err := browser.Watch(base+"/?token="+cfg.Token+"&stream=lobby", seconds, 100, shot)
	if err != nil {
		t.Fatal(err)
	}
	st := s.lookup("lobby").snapshot()
	t.Logf("chromium: decoded %d frames, %d metadata messages, %d/%d frames matched by RTP timestamp, %d boxes drawn",
		r.FramesDecoded, r.MetaMessages, r.Matched, r.FramesSeen, r.BoxesDrawn)
	t.Logf("capture -> browser decode latency over %d frames: p50 %.1f ms, p99 %.1f ms", r.LatencySamples, r.LatencyP50Ms, r.LatencyP99Ms)
	t.Logf("sink: %+v", st)
	if r.Error != "" {
		t.Fatalf("page error: %s (console: %v)", r.Error, r.Console)
	}
	if !r.Connected || r.FramesDecoded <= 100 {
		t.Fatalf("page connected=%v framesDecoded=%d, want > 100 (console: %v)", r.Connected, r.FramesDecoded, r.Console)
	}
	if r.MetaMessages < 100 || !r.Overlays {
		t.Fatalf("metadata messages %d (want >= 100), overlays received %v", r.MetaMessages, r.Overlays)
	}
	if r.Matched < r.FramesSeen/2 || r.BoxesDrawn == 0 {
		t.Fatalf("only %d of %d frames matched metadata by RTP timestamp, %d boxes drawn", r.Matched, r.FramesSeen, r.BoxesDrawn)
	}
	if r.VideoWidth != 768 {
		t.Fatalf("video width %d, want 768", r.VideoWidth)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
}
