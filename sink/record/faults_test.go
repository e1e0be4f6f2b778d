package record

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/rtsptest"
	"github.com/osprey-vision/osprey/internal/syncbuf"
	"github.com/osprey-vision/osprey/stages"
)

// TestKilledFFmpegRestarts kills the copy-mode ffmpeg child mid-run: it is
// restarted, recording goes on, the lost video is counted in
// osprey_record_gap_seconds_total, and a clip across the kill is still cut.
// Then the stream is removed from the pipeline (hot reload): the child
// stops, and the stream's next frame would start a recorder afresh.
func TestKilledFFmpegRestarts(t *testing.T) {
	srv := rtsptest.Start(t, rtsptest.FreePort(t), vtest)
	cfg := testConfig(t.TempDir())
	var mu sync.Mutex
	url := srv.URL()
	s, em, _ := newTestSink(t, cfg, nil)
	s.res.StreamURL = func(string) string { mu.Lock(); defer mu.Unlock(); return url }
	// The stream's first frame starts its recorder.
	if err := s.Write(context.Background(), &stages.Frame{Stream: "door"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "a segment", func() bool { return segments(s, "door") >= 1 })
	rec := s.recs["door"]
	p := rec.child.Load()
	if p == nil {
		t.Fatal("no ffmpeg child")
	}
	killed := time.Now()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	before := segments(s, "door")
	cross := crossing("door", killed)
	if err := s.Write(context.Background(), &stages.Frame{Stream: "door", Events: []event.Event{cross}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "restart and a new segment", func() bool {
		return value(s.stats.restarts.WithLabelValues("door")) == 1 && segments(s, "door") >= before+1
	})
	gap := value(s.stats.gaps.WithLabelValues("door"))
	since := time.Since(killed)
	t.Logf("ffmpeg restarted %v after the kill; gap counted: %.2fs", since.Round(100*time.Millisecond), gap)
	if gap <= 0 || gap > since.Seconds()+cfg.Segment.Seconds() {
		t.Fatalf("osprey_record_gap_seconds_total = %v, want the seconds lost to the restart", gap)
	}
	ev := em.next(t, 20*time.Second)
	if ev.ClipOf != cross.ID || ev.ClipError != "" {
		t.Fatalf("clip across the restart: %+v", ev)
	}
	checkClip(t, clipPath(cfg, ev))

	p = rec.child.Load()
	mu.Lock()
	url = ""
	mu.Unlock()
	waitFor(t, 10*time.Second, "recorder of the removed stream forgotten", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.recs["door"] == nil
	})
	if p == nil || p.Signal(syscall.Signal(0)) == nil {
		t.Fatal("the ffmpeg child of the removed stream still runs")
	}
	if got := value(s.stats.restarts.WithLabelValues("door")); got != 1 {
		t.Fatalf("%v restarts, want only the one after the kill", got)
	}
}

// TestMJPEGCameraIsEncoded points the recorder at a camera that sends MJPEG:
// it logs that it re-encodes and records the frames the pipeline decoded.
func TestMJPEGCameraIsEncoded(t *testing.T) {
	matcheck.Leaks(t)
	srv := rtsptest.StartCodec(t, rtsptest.FreePort(t), vtest, "mjpeg")
	var logs syncbuf.Buffer
	cfg := testConfig(t.TempDir())
	s, _, _ := newTestSinkLog(t, cfg, map[string]string{"door": srv.URL()}, slog.New(slog.NewTextHandler(&logs, nil)))
	src, err := capture.New(capture.Config{ID: "door", URL: srv.URL(), TCP: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	end := time.Now().Add(20 * time.Second)
	for segments(s, "door") < 1 {
		if time.Now().After(end) {
			t.Fatalf("no encoded segments; log:\n%s", logs.String())
		}
		f, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		f.Release()
	}
	if !strings.Contains(logs.String(), "the camera sends mjpeg, not H.264/H.265: recording re-encodes") {
		t.Fatalf("no fallback log line:\n%s", logs.String())
	}
	segs := s.ring.Covering("door", time.Time{}, time.Now().Add(time.Hour))
	p, _ := ffprobe(t, segs[0].Path)
	if p.Streams[0].CodecName != "h264" {
		t.Fatalf("segment codec %q, want h264 (re-encoded)", p.Streams[0].CodecName)
	}
	if p := s.recs["door"].child.Load(); p != nil {
		t.Fatal("an ffmpeg copy child runs for an MJPEG camera")
	}
}

// TestDiskFull records onto a small tmpfs (mounted for the test: needs
// root) filled but for 300 KB: recording stops with a clear error, Write
// never fails or blocks, and recording resumes once the space is freed.
func TestDiskFull(t *testing.T) {
	matcheck.Leaks(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		realpart.Missing(t, realpart.Root, fmt.Sprintf("mount -t tmpfs: %v: %s", err, strings.TrimSpace(string(out))))
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, int64(st.Bavail)*st.Bsize-300<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	cfg := testConfig(dir)
	cfg.Continuous = true
	s, _, _ := newTestSinkLog(t, cfg, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	src := pattern(t, 640, 480)
	t0 := time.Now()
	k := 0
	feed := func(n int) {
		for range n {
			f, err := src.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			f.Captured = t0.Add(time.Duration(k) * 50 * time.Millisecond)
			k++
			start := time.Now()
			if err := s.Write(context.Background(), f); err != nil {
				t.Fatalf("Write failed with the disk full: %v", err)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Fatalf("Write took %v", d)
			}
			f.Release()
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := 0; value(s.stats.full.WithLabelValues("cam")) == 0; i++ {
		if i > 40 {
			t.Fatalf("the disk never filled; log:\n%s", logs.String())
		}
		feed(20)
	}
	if value(s.stats.up.WithLabelValues("cam")) != 0 || !strings.Contains(logs.String(), "record: disk full: recording of this stream stopped") {
		t.Fatalf("no clear disk-full state; log:\n%s", logs.String())
	}
	full := segments(s, "cam")
	feed(40) // still full: nothing recorded, nothing blocks
	if got := segments(s, "cam"); got != full {
		t.Fatalf("%d segments written with the disk full", got-full)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := 0; segments(s, "cam") < full+2; i++ {
		if i > 20 {
			t.Fatalf("recording did not resume; log:\n%s", logs.String())
		}
		feed(20)
	}
	if value(s.stats.up.WithLabelValues("cam")) != 1 || !strings.Contains(logs.String(), "recording resumes") {
		t.Fatalf("not recording after space returned; log:\n%s", logs.String())
	}
	t.Logf("disk full after %d segments; resumed once the filler was removed; %.0f frames dropped meanwhile",
		full, value(s.stats.drops.WithLabelValues("cam")))
}

// TestCredentialsRedacted points the recorder at a camera that refuses the
// connection, with credentials in the URL: the retries are logged, and the
// password appears nowhere in the log.
func TestCredentialsRedacted(t *testing.T) {
	port := rtsptest.FreePort(t)
	raw := fmt.Sprintf("rtsp://admin:hunter2@127.0.0.1:%d/cam?token=s3cret", port)
	var logs syncbuf.Buffer
	s, _, _ := newTestSinkLog(t, testConfig(t.TempDir()), map[string]string{"door": raw}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := s.Write(context.Background(), &stages.Frame{Stream: "door"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a retry logged", func() bool {
		return strings.Contains(logs.String(), "record: cannot read the camera's stream, retrying")
	})
	_ = s.Close(context.Background())
	out := logs.String()
	if strings.Contains(out, "hunter2") || strings.Contains(out, "s3cret") || !strings.Contains(out, "REDACTED@127.0.0.1") {
		t.Fatalf("credentials not redacted:\n%s", out)
	}
	t.Logf("%s", strings.TrimSpace(out))
}

// TestStderrSummary feeds ffmpeg-like stderr through the summary: one line
// logged per 30 s, the rest counted, credentials redacted, the start-up
// noise of every RTSP copy kept out of the warnings.
func TestStderrSummary(t *testing.T) {
	var logs syncbuf.Buffer
	s := &Sink{log: slog.New(slog.NewTextHandler(&logs, nil))}
	r := newRecorder(s, "door")
	raw := "rtsp://admin:hunter2@cam/stream"
	sum := newStderrSummary(r, raw)
	sum.read(strings.NewReader("[segment @ 0x1] Timestamps are unset in a packet for stream 0.\n" +
		"[rtsp @ 0x2] method DESCRIBE failed: 401 Unauthorized " + raw + "\n" +
		"[rtsp @ 0x2] again\n[rtsp @ 0x2] and again\n"))
	out := logs.String()
	if strings.Contains(out, "hunter2") || strings.Count(out, "level=WARN") != 1 || strings.Contains(out, "Timestamps") {
		t.Fatalf("summary log:\n%s", out)
	}
	err := sum.err(fmt.Errorf("exit status 1"))
	if want := "exit status 1 (4 lines on stderr, last: [rtsp @ 0x2] and again)"; err.Error() != want {
		t.Fatalf("err %q, want %q", err, want)
	}
}
