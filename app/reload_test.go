package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/syncbuf"
	"github.com/osprey-vision/osprey/stages"
)

const vtestAVI = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// trackSink records, per stream, the frames seen and the track IDs on them.
type trackSink struct {
	mu     sync.Mutex
	frames map[string]int
	ids    map[string]map[uint64]time.Time // first time each ID was seen
	last   map[string][]uint64             // IDs on the stream's latest frame
	mark   time.Time                       // frames captured after it fill after
	after  map[uint64]bool
}

func newTrackSink() *trackSink {
	return &trackSink{frames: map[string]int{}, ids: map[string]map[uint64]time.Time{}, last: map[string][]uint64{}, after: map[uint64]bool{}}
}
func (s *trackSink) Connect(context.Context) error { return nil }
func (s *trackSink) Close(context.Context) error   { return nil }
func (s *trackSink) Write(_ context.Context, f *stages.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames[f.Stream]++
	if s.ids[f.Stream] == nil {
		s.ids[f.Stream] = map[uint64]time.Time{}
	}
	s.last[f.Stream] = s.last[f.Stream][:0]
	for _, tr := range f.Tracks {
		s.last[f.Stream] = append(s.last[f.Stream], tr.ID)
		if f.Stream == "plaza" && !s.mark.IsZero() && f.Captured.After(s.mark) {
			s.after[tr.ID] = true
		}
		if _, ok := s.ids[f.Stream][tr.ID]; !ok {
			s.ids[f.Stream][tr.ID] = time.Now()
		}
	}
	return nil
}
func (s *trackSink) count(stream string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames[stream]
}
func (s *trackSink) maxID(stream string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m uint64
	for id := range s.ids[stream] {
		m = max(m, id)
	}
	return m
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pipelineYAML is a live pipeline: vtest.avi paced as a camera, plus extra.
func pipelineYAML(t *testing.T, extraStreams, zoneY string) string {
	model, err := filepath.Abs("../models/ssd_mobilenet_v2_coco.onnx")
	require.NoError(t, err)
	realpart.File(t, realpart.SSDModel, model)
	realpart.File(t, realpart.SampleVideo, vtestAVI)
	return fmt.Sprintf(`name: reload
latency_budget: 1s
streams:
  - id: plaza
    url: file://%s
    loop: true
    realtime: true
%s
model: { path: %s, format: ssd, labels: coco, providers: [cpu], threads: 1 }
detect: { confidence: 0.4, classes: [person] }
zones:
  - { name: road, stream: plaza, polygon: [[0.3,%s],[0.75,%s],[0.75,0.7],[0.3,0.7]] }
`, vtestAVI, extraStreams, model, zoneY, zoneY)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(s), 0o644))
}

// TestReloadAddRemoveKeepTrackIDs runs a real pipeline (vtest.avi through the
// COCO SSD) and reloads it three times: a stream added, zones changed and the
// stream removed, then an invalid file. The unchanged stream never restarts:
// its track IDs keep counting up from where they were (a restarted tracker
// would start again at 1) and its frames keep flowing.
func TestReloadAddRemoveKeepTrackIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the detector for about 20 s")
	}
	matcheck.Leaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "reload.yaml")
	writeFile(t, path, pipelineYAML(t, "", "0.38"))
	cfg, err := config.Load(path, components.Builtin())
	require.NoError(t, err)
	var logBuf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	sink := newTrackSink()
	a, err := New(cfg, log, Options{ExtraSinks: []stages.SinkSpec{{Name: "rec", Sink: sink, In: stages.Link{Size: 4, Policy: stages.Latest}}}})
	require.NoError(t, err)
	a.EnableReload()
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	stopped := make(chan struct{})
	go func() { runErr = a.Run(ctx); close(stopped) }()
	// Registered after matcheck.Leaks, so it runs first: stop before counting.
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
		}
	})

	// Wait until tracks 1 and 2 are gone: a restarted tracker would hand
	// out 1 again, a kept one never does.
	waitFor(t, 90*time.Second, "a plaza frame whose tracks all have IDs >= 3", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		l := sink.last["plaza"]
		return len(l) > 0 && slices.Min(l) >= 3
	})
	sink.mu.Lock()
	sink.mark = time.Now()
	sink.mu.Unlock()
	before := sink.maxID("plaza")

	// 1. Add a stream.
	writeFile(t, path, pipelineYAML(t, "  - { id: pattern, url: \"test://?fps=15&w=320&h=240\" }", "0.38"))
	res, err := a.ReloadFile(path)
	require.NoError(t, err)
	require.Equal(t, []string{"pattern"}, res.Added)
	require.Empty(t, res.Restarted)
	waitFor(t, 30*time.Second, "frames of the added stream", func() bool { return sink.count("pattern") > 10 })
	require.ElementsMatch(t, []string{"plaza", "pattern"}, a.runner.Streams())

	// 2. Move the zone and remove the stream again.
	writeFile(t, path, pipelineYAML(t, "", "0.40"))
	res, err = a.ReloadFile(path)
	require.NoError(t, err)
	require.Equal(t, []string{"pattern"}, res.Removed)
	require.Equal(t, []string{"plaza"}, res.Analytics)
	n := sink.count("pattern")
	time.Sleep(500 * time.Millisecond)
	require.LessOrEqual(t, sink.count("pattern")-n, 4, "removed stream still producing (beyond frames in flight)")
	require.Equal(t, []string{"plaza"}, a.runner.Streams())

	// 3. An invalid file is rejected with its position; nothing changes.
	writeFile(t, path, pipelineYAML(t, "", "0.40")+"detect: { confidence: high }\n")
	_, err = a.ReloadFile(path)
	require.Error(t, err)
	require.Contains(t, err.Error(), path+":")
	require.Contains(t, logBuf.String(), "reload rejected, the pipeline keeps running unchanged")
	require.Equal(t, []string{"plaza"}, a.runner.Streams())

	// The unchanged stream kept running and kept its tracker.
	fr := sink.count("plaza")
	waitFor(t, 60*time.Second, "new frames and tracks on plaza after the reloads", func() bool {
		return sink.maxID("plaza") > before && sink.count("plaza") > fr+10
	})
	sink.mu.Lock()
	var after []uint64
	for id := range sink.after {
		after = append(after, id)
	}
	sink.mu.Unlock()
	require.NotEmpty(t, after)
	require.GreaterOrEqual(t, slices.Min(after), uint64(3), "plaza's tracker restarted: IDs %v after the reloads", after)

	cancel()
	select {
	case <-stopped:
		require.NoError(t, runErr)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	require.NotContains(t, logBuf.String(), "level=ERROR msg=\"reload failed")
	require.True(t, strings.Contains(logBuf.String(), "reload applied"))
}
