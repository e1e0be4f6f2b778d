package record

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/rtsptest"
)

// cpuEnv opts into TestCPUCopyVersusEncode (about a minute).
const cpuEnv = "OSPREY_RECORD_CPU"

// selfCPU is this process's CPU time so far (user + system).
func selfCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCPUCopyVersusEncode measures what recording a 720p RTSP camera costs
// in copy mode (the ffmpeg child's CPU time) against re-encoding the frames
// the pipeline decodes anyway (this process's CPU time with the encoder on,
// minus the same time spent decoding alone), in one run on one camera.
// Opt-in: OSPREY_RECORD_CPU=1 (OSPREY_RECORD_CPU=30s sets each phase's length).
func TestCPUCopyVersusEncode(t *testing.T) {
	v := os.Getenv(cpuEnv)
	if v == "" {
		t.Skipf("opt-in measurement: set %s=1 (or a phase length such as 30s)", cpuEnv)
	}
	phase := 20 * time.Second
	if d, err := time.ParseDuration(v); err == nil {
		phase = d
	}
	realpart.Command(t, realpart.FFmpeg, "ffmpeg")
	clip := filepath.Join(t.TempDir(), "vtest720.mkv")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", vtest, "-vf", "scale=1280:720", "-c:v", "libx264",
		"-preset", "ultrafast", "-crf", "18", clip).CombinedOutput(); err != nil {
		t.Fatalf("make a 720p clip: %v: %s", err, out)
	}
	srv := rtsptest.Start(t, rtsptest.FreePort(t), clip)

	run := func(mode string) (self, child time.Duration, frames int, bytes int64) {
		cfg := testConfig(t.TempDir())
		cfg.Mode = mode
		cfg.Segment = 2 * time.Second
		cfg.Continuous = true // keep every segment: the bytes are the whole run's
		s, _, _ := newTestSink(t, cfg, map[string]string{"cam": srv.URL()})
		src, err := capture.New(capture.Config{ID: "cam", URL: srv.URL(), TCP: true}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Warm up: connections made, encoder open.
		read := func(d time.Duration) int {
			n := 0
			for end := time.Now().Add(d); time.Now().Before(end); n++ {
				f, err := src.Read(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if f.Width != 1280 {
					t.Fatalf("frame %dx%d, want 1280x720", f.Width, f.Height)
				}
				if err := s.Write(context.Background(), f); err != nil {
					t.Fatal(err)
				}
				f.Release()
			}
			return n
		}
		read(3 * time.Second)
		runtime.GC()
		c0 := selfCPU(t)
		frames = read(phase)
		self = selfCPU(t) - c0
		_ = src.Close(context.Background())
		_ = s.Close(context.Background())
		for _, v := range s.ring.Usage() {
			bytes += v[1]
		}
		child = time.Duration(value(s.stats.cpu.WithLabelValues("cam")) * float64(time.Second))
		return self, child, frames, bytes
	}
	copySelf, copyChild, nCopy, bCopy := run(ModeAuto)
	encSelf, encChild, nEnc, bEnc := run(ModeEncode)
	if copyChild == 0 || encChild != 0 {
		t.Fatalf("copy child CPU %v, encode child CPU %v: the modes did not run as asked", copyChild, encChild)
	}
	// Copy mode's own process only decoded (for detection); the child
	// includes its warm-up seconds, so scale it to the phase.
	copyCost := copyChild
	encCost := encSelf - copySelf*time.Duration(nEnc)/time.Duration(max(nCopy, 1))
	t.Logf("720p RTSP, %v per phase, %d/%d frames: copy = ffmpeg %v CPU (%.1f%% of a core, incl. 3 s warm-up and start), %d bytes; "+
		"encode = %v CPU over decoding alone (%.1f%% of a core), %d bytes; decode alone %v; ratio encode/copy %.1fx",
		phase, nCopy, nEnc, copyCost.Round(time.Millisecond), 100*copyCost.Seconds()/(phase+3*time.Second).Seconds(), bCopy,
		encCost.Round(time.Millisecond), 100*encCost.Seconds()/phase.Seconds(), bEnc, copySelf.Round(time.Millisecond),
		encCost.Seconds()/(copyCost.Seconds()*phase.Seconds()/(phase+3*time.Second).Seconds()))
}
