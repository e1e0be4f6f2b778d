//go:build faults

package faults

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// twoStreams is a live pipeline: a test:// pattern at 15 fps (the stream
// that must not notice) and a second stream under test.
func twoStreams(t *testing.T, dir, second string) string {
	return fmt.Sprintf(`name: faults
latency_budget: 1s
streams:
  - { id: pattern, url: "test://?fps=15&w=320&h=240" }
%s
%s
sinks:
  jsonl: { path: %s }
metrics: { listen: "127.0.0.1:0" }
`, second, modelYAML(t), filepath.Join(dir, "events.jsonl"))
}

// TestRTSPKilledAndRestarted kills the GStreamer RTSP server mid-run and
// restarts it: the pattern stream keeps its frame rate during the outage, the
// RTSP stream comes back by itself within the back-off cap, the outage is in
// the events file (source.down, source.up) and in osprey_source_up (1, 0, 1).
func TestRTSPKilledAndRestarted(t *testing.T) {
	matcheck.Leaks(t)
	port := freePort(t)
	srv := startRTSP(t, port)
	dir := t.TempDir()
	const backoffMax = 2 * time.Second
	path := writeYAML(t, twoStreams(t, dir, fmt.Sprintf(
		"  - { id: cam, url: %q, tcp: true, stall_timeout: 2s, open_timeout: 5s, backoff_min: 200ms, backoff_max: %s }",
		fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port), backoffMax)))
	sink := newFrameLog()
	r := start(t, path, sink)
	waitFor(t, 30*time.Second, "metrics server", func() bool { return r.app.MetricsAddr() != nil })
	up := watchSourceUp(t, r.app.MetricsAddr(), "cam")
	waitFor(t, 30*time.Second, "RTSP frames", func() bool { return sink.count("cam") > 10 })

	// Baseline: the pattern stream's rate with both streams up.
	base := phase(5 * time.Second)
	t0 := time.Now()
	time.Sleep(base)
	before := sink.fps("pattern", t0, time.Now())

	srv.Kill()
	killed := time.Now()
	outage := phase(6 * time.Second)
	time.Sleep(outage)
	// The pattern's rate over the outage, after the stall timeout noticed it.
	during := sink.fps("pattern", killed, time.Now())
	camDuring := sink.fps("cam", killed.Add(3*time.Second), time.Now())

	srv = startRTSP(t, port)
	restarted := time.Now()
	n := sink.count("cam")
	// Back-off cap + open + first keyframe, with slack for 2 busy cores.
	recovered := waitFor(t, backoffMax+15*time.Second, "RTSP stream back after restart", func() bool { return sink.count("cam") > n+5 })
	_ = restarted
	elapsed, err := r.wait(t, 15*time.Second)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	evs := readEvents(t, filepath.Join(dir, "events.jsonl"))
	downs, ups := countEvents(evs, "source.down", "cam"), countEvents(evs, "source.up", "cam")
	seq := up.seq()
	t.Logf("pattern fps before %.1f, during outage %.1f (ratio %.2f); cam fps during outage %.1f; recovered %s after restart; events: %d down, %d up; osprey_source_up %v; stop took %s",
		before, during, during/before, camDuring, recovered.Round(100*time.Millisecond), downs, ups, seq, elapsed.Round(10*time.Millisecond))
	if before <= 0 || during/before < 0.9 {
		t.Errorf("pattern stream slowed during the outage: %.1f -> %.1f fps", before, during)
	}
	if camDuring > 0.5 {
		t.Errorf("cam still delivering %.1f fps while its server was dead", camDuring)
	}
	if downs < 1 || ups < 2 {
		t.Errorf("events: %d source.down, %d source.up for cam; want >= 1 and >= 2 (start, recovery)", downs, ups)
	}
	if !containsRun(seq, []float64{1, 0, 1}) {
		t.Errorf("osprey_source_up{stream=cam} went %v, want 1 then 0 then 1", seq)
	}
}

// containsRun reports whether want appears in order (not necessarily adjacent) in got.
func containsRun(got, want []float64) bool {
	i := 0
	for _, v := range got {
		if i < len(want) && v == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestServerAcceptsButSendsNothing points a stream at a TCP server that
// accepts and stays silent: the open times out, the stream is reported down
// with a reason and retried with back-off, while FFmpeg's hung open is not
// multiplied (connections stay bounded); the pattern stream is unaffected and
// shutdown is not held up by the hanging connection.
func TestServerAcceptsButSendsNothing(t *testing.T) {
	matcheck.Leaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // hold it open, never answer
		}
	}()
	defer func() {
		for len(accepted) > 0 {
			(<-accepted).Close()
		}
	}()
	dir := t.TempDir()
	path := writeYAML(t, twoStreams(t, dir, fmt.Sprintf(
		"  - { id: mute, url: \"rtsp://%s/cam\", tcp: true, stall_timeout: 2s, open_timeout: 2s, backoff_min: 200ms, backoff_max: 1s }", ln.Addr())))
	sink := newFrameLog()
	r := start(t, path, sink)
	took := waitFor(t, 30*time.Second, "source.down for the mute stream", func() bool {
		return countEvents(readEvents(t, filepath.Join(dir, "events.jsonl")), "source.down", "mute") > 0
	})
	waitFor(t, 20*time.Second, "retries with back-off", func() bool { return strings.Count(r.log.String(), "source unreachable, retrying\" stream=mute") >= 2 })
	t0 := time.Now()
	time.Sleep(phase(3 * time.Second))
	fps := sink.fps("pattern", t0, time.Now())
	elapsed, err := r.wait(t, 15*time.Second)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	evs := readEvents(t, filepath.Join(dir, "events.jsonl"))
	var reason string
	for _, e := range evs {
		if e.Type == "source.down" && e.Stream == "mute" {
			reason = e.Reason
			break
		}
	}
	t.Logf("down after %s (reason %q), %d connections accepted, pattern %.1f fps meanwhile, stop took %s", took.Round(100*time.Millisecond), reason, len(accepted), fps, elapsed.Round(10*time.Millisecond))
	if len(accepted) > 2 {
		t.Errorf("%d connections held open: hung opens pile up", len(accepted))
	}
	if sink.count("mute") != 0 {
		t.Errorf("mute stream produced %d frames", sink.count("mute"))
	}
	if reason == "" {
		t.Error("source.down without a reason")
	}
	if fps < 5 {
		t.Errorf("pattern stream at %.1f fps while the other stream hung", fps)
	}
}

// TestSourceDownAtStartComesUpLater starts with nothing listening on the
// RTSP port; the server appears later and the stream comes up by itself.
func TestSourceDownAtStartComesUpLater(t *testing.T) {
	matcheck.Leaks(t)
	port := freePort(t)
	dir := t.TempDir()
	const backoffMax = 2 * time.Second
	path := writeYAML(t, twoStreams(t, dir, fmt.Sprintf(
		"  - { id: late, url: \"rtsp://127.0.0.1:%d/cam\", tcp: true, open_timeout: 5s, backoff_min: 200ms, backoff_max: %s }", port, backoffMax)))
	sink := newFrameLog()
	r := start(t, path, sink)
	waitFor(t, 30*time.Second, "source.down for the missing stream", func() bool {
		return countEvents(readEvents(t, filepath.Join(dir, "events.jsonl")), "source.down", "late") > 0
	})
	time.Sleep(phase(3 * time.Second))
	startRTSP(t, port)
	took := waitFor(t, backoffMax+20*time.Second, "frames after the server appeared", func() bool { return sink.count("late") > 5 })
	if _, err := r.wait(t, 15*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	evs := readEvents(t, filepath.Join(dir, "events.jsonl"))
	t.Logf("frames %s after the server appeared; events: %d down, %d up", took.Round(100*time.Millisecond), countEvents(evs, "source.down", "late"), countEvents(evs, "source.up", "late"))
	if countEvents(evs, "source.up", "late") < 1 {
		t.Error("no source.up event for the late stream")
	}
}

// TestCorruptAndTruncatedFiles runs the damaged Megamind_bugy.avi and a
// vtest.avi cut at 40 % through the whole pipeline offline: both streams
// end normally, decode what can be decoded, and no Mat leaks.
func TestCorruptAndTruncatedFiles(t *testing.T) {
	matcheck.Leaks(t)
	realpart.File(t, realpart.SampleVideo, megabugy)
	realpart.File(t, realpart.SampleVideo, vtest)
	dir := t.TempDir()
	cut := filepath.Join(dir, "vtest-cut.avi")
	src, err := os.Open(vtest)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := src.Stat()
	dst, err := os.Create(cut)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(dst, src, st.Size()*4/10); err != nil {
		t.Fatal(err)
	}
	src.Close()
	dst.Close()
	path := writeYAML(t, fmt.Sprintf(`name: damaged
streams:
  - { id: bugy, url: "file://%s" }
  - { id: cut, url: "file://%s" }
%s
sinks:
  jsonl: { path: %s }
`, megabugy, cut, modelYAML(t), filepath.Join(dir, "events.jsonl")))
	sink := newFrameLog()
	r := start(t, path, sink)
	select {
	case <-r.done:
	case <-time.After(phase(180 * time.Second)):
		t.Fatal("damaged files did not finish")
	}
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	snap := r.app.Metrics.Snapshot()
	t.Logf("bugy: %d frames in, %d out; cut: %d in, %d out; log warnings: %d", snap.Streams["bugy"].In, snap.Streams["bugy"].Out,
		snap.Streams["cut"].In, snap.Streams["cut"].Out, strings.Count(r.log.String(), "level=WARN"))
	for _, id := range []string{"bugy", "cut"} {
		if snap.Streams[id].In == 0 {
			t.Errorf("%s: no frames decoded", id)
		}
	}
	if !slices.ContainsFunc(readEvents(t, filepath.Join(dir, "events.jsonl")), func(e jsonlEvent) bool { return e.Type == "source.down" && e.Stream == "cut" }) {
		t.Error("no source.down for the truncated file at its end")
	}
}

// TestOversizedFramesRejected feeds 4K frames to a stream limited to 1080p:
// the stream goes down with a reason naming both sizes and the fix; the
// other stream carries on.
func TestOversizedFramesRejected(t *testing.T) {
	matcheck.Leaks(t)
	dir := t.TempDir()
	path := writeYAML(t, twoStreams(t, dir, `  - { id: uhd, url: "test://?fps=5&w=3840&h=2160", max_width: 1920, max_height: 1080 }`))
	sink := newFrameLog()
	r := start(t, path, sink)
	waitFor(t, 30*time.Second, "source.down for the 4K stream", func() bool {
		return countEvents(readEvents(t, filepath.Join(dir, "events.jsonl")), "source.down", "uhd") > 0
	})
	n := sink.count("pattern")
	waitFor(t, 10*time.Second, "pattern frames", func() bool { return sink.count("pattern") > n+10 })
	if _, err := r.wait(t, 15*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var reason string
	for _, e := range readEvents(t, filepath.Join(dir, "events.jsonl")) {
		if e.Type == "source.down" && e.Stream == "uhd" {
			reason = e.Reason
			break
		}
	}
	t.Logf("4K stream down: %q; log: %s", reason, firstLine(r.log.String(), "uhd"))
	if !strings.Contains(reason, "3840x2160 exceeds max_width x max_height 1920x1080") {
		t.Errorf("reason %q does not name the sizes", reason)
	}
	if sink.count("uhd") != 0 {
		t.Errorf("%d oversized frames got through", sink.count("uhd"))
	}
	if !strings.Contains(r.log.String(), "raise max_width/max_height") {
		t.Error("log does not say how to fix it")
	}
}

func firstLine(log, substr string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, substr) && (strings.Contains(l, "WARN") || strings.Contains(l, "ERROR")) {
			return l
		}
	}
	return ""
}
