package record

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/modroot"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// TestClipPlaysInChromium records vtest.avi (encoded path), cuts a clip of
// a crossing and plays it in Debian's headless Chromium from an HTTP server:
// the browser decodes it and plays through two seconds. Opt-in (it takes
// about 10 s, and the always-on tests must stay under a minute):
// OSPREY_RECORD_CHROMIUM=1, or OSPREY_RECORD_SCREENSHOT=path, which also
// keeps the screenshot there.
func TestClipPlaysInChromium(t *testing.T) {
	if os.Getenv("OSPREY_RECORD_CHROMIUM") == "" && os.Getenv("OSPREY_RECORD_SCREENSHOT") == "" {
		t.Skip("opt-in: set OSPREY_RECORD_CHROMIUM=1 (or OSPREY_RECORD_SCREENSHOT=out.png)")
	}
	realpart.File(t, realpart.Chromium, "/usr/bin/chromium")
	node := realpart.Command(t, realpart.Node, "node")
	root, err := modroot.FromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	driver := filepath.Join(root, "tools", "browser-test")
	realpart.File(t, realpart.BrowserDriver, filepath.Join(driver, "node_modules", "playwright-core"))
	realpart.File(t, realpart.SampleVideo, vtest)
	matcheck.Leaks(t)

	cfg := testConfig(t.TempDir())
	cfg.PreCapture, cfg.PostCapture = 2*time.Second, 2*time.Second
	s, em, _ := newTestSink(t, cfg, nil)
	src, err := capture.New(capture.Config{ID: "plaza", URL: "file://" + vtest}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	t0 := time.Now().Add(-6 * time.Second)
	var cross event.Event
	for k := range 60 {
		f, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f.Captured = t0.Add(time.Duration(k) * 100 * time.Millisecond)
		if k == 30 {
			cross = crossing("plaza", f.Captured)
			f.Events = []event.Event{cross}
		}
		if err := s.Write(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		f.Release()
		time.Sleep(5 * time.Millisecond)
	}
	ev := em.next(t, 15*time.Second)
	if ev.ClipOf != cross.ID || ev.Clip == "" {
		t.Fatalf("no clip: %+v", ev)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(cfg.Dir)))
	defer srv.Close()
	shot := os.Getenv("OSPREY_RECORD_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "clip.png")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "clip.mjs", "--url", srv.URL+"/"+ev.Clip, "--seconds", "2", "--screenshot", shot)
	cmd.Dir = driver
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("clip.mjs: %v: %s", err, out)
	}
	var r struct {
		CurrentTime, Duration   float64
		VideoWidth, VideoHeight int
		FramesDecoded           int
		Error                   string
		Console                 []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("clip.mjs printed %q: %v", out, err)
	}
	t.Logf("chromium played %.2fs of %.2fs, %dx%d, %d frames decoded", r.CurrentTime, r.Duration, r.VideoWidth, r.VideoHeight, r.FramesDecoded)
	if r.Error != "" || r.CurrentTime < 2 || r.VideoWidth != 768 || r.VideoHeight != 576 {
		t.Fatalf("chromium did not play the clip: %+v", r)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
}
