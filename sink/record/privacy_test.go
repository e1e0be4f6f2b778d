package record

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/testlog"
	"github.com/osprey-vision/osprey/stages"
)

// An RTSP camera whose pictures the privacy stage redacts is recorded from
// its redacted frames, never copied from the camera's own stream.
func TestRedactedRTSPStreamIsEncoded(t *testing.T) {
	realpart.Command(t, realpart.FFmpeg, "ffmpeg")
	matcheck.Leaks(t)
	cfg := testConfig(t.TempDir())
	sh := &stages.Shared{}
	sh.ProvideRedaction(func(stream string) bool { return stream == "cam" })
	res := &stages.Resources{Pipeline: "test", Log: testlog.New(t), Metrics: prometheus.NewRegistry(),
		Emit: newEmitted().emit, Shared: sh, StreamURL: func(string) string { return "rtsp://127.0.0.1:9/cam" }}
	sk, err := Plugin().Build(&cfg, res)
	if err != nil {
		t.Fatal(err)
	}
	s := sk.(*Sink)
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	f, err := pattern(t, 64, 48).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	f.Release()
	r, err := s.recorder("cam")
	if err != nil {
		t.Fatal(err)
	}
	if !r.encoding.Load() {
		t.Fatal("the redacted RTSP stream is copied from the camera, not encoded from its redacted frames")
	}
}
