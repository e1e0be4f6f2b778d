package capture

import (
	"testing"
	"time"

	"github.com/osprey-vision/osprey/capture/capturetest"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/rtsptest"
	"github.com/osprey-vision/osprey/stages"
)

// The Source conformance suite (capture/capturetest) on every backend that
// can run here; v4l2 needs a device (see the capturetest package doc).

// mustNew builds a source or fails the test.
func mustNew(t *testing.T, cfg Config, onState func(State)) stages.Source {
	t.Helper()
	src, err := New(cfg, nil, onState)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// newFunc returns a capturetest constructor for cfg.
func newFunc(cfg Config) func(*testing.T) stages.Source {
	return func(t *testing.T) stages.Source { return mustNew(t, cfg, nil) }
}

func TestConformanceTestPattern(t *testing.T) {
	capturetest.Run(t, newFunc(Config{ID: "t", URL: "test://?w=320&h=240&fps=2&frames=4"}),
		capturetest.Options{Finite: true, MaxFrames: 4, Paced: true})
}

func TestConformanceFile(t *testing.T) {
	realpart.File(t, realpart.SampleVideo, vtest)
	capturetest.Run(t, newFunc(Config{ID: "v", URL: "file://" + vtest}),
		capturetest.Options{Finite: true, MaxFrames: 2000})
}

func TestConformanceRealtimeFile(t *testing.T) {
	realpart.File(t, realpart.SampleVideo, vtest)
	capturetest.Run(t, newFunc(Config{ID: "v", URL: vtest, Realtime: true, Loop: true}),
		capturetest.Options{Paced: true})
}

// TestConformanceRTSP runs the suite against the GStreamer RTSP server; its
// reconnect check kills the server and restarts it on the same port.
func TestConformanceRTSP(t *testing.T) {
	if testing.Short() {
		t.Skip("live RTSP server test (about 20 s)")
	}
	port := rtsptest.FreePort(t)
	srv := startRTSP(t, port)
	cfg := rtspConfig(srv.URL())
	capturetest.Run(t, newFunc(cfg), capturetest.Options{
		Interrupt: func(*testing.T) func() {
			srv.Kill()
			return func() { srv = startRTSP(t, port) }
		},
		Outage: cfg.StallTimeout + 2*time.Second,
	})
}
