//go:build faults

package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/syncbuf"
	"github.com/osprey-vision/osprey/sink/natsink"
	"github.com/osprey-vision/osprey/stages"
)

// tinyDisk mounts a 64 KiB tmpfs (needs root) and unmounts it at cleanup.
func tinyDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		realpart.Missing(t, realpart.Root, fmt.Sprintf("mount -t tmpfs: %v: %s", err, strings.TrimSpace(string(out))))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestSpoolDiskFull spools events while NATS is down onto a 64 KiB disk until
// it fills. Write must never hang or panic: an event is either accepted
// (durable) or refused with an error the runner counts. When NATS comes back
// every accepted event arrives.
func TestSpoolDiskFull(t *testing.T) {
	spoolDir := tinyDisk(t)
	port := freePort(t)
	cfg := natsink.DefaultConfig()
	cfg.URL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	cfg.Pipeline = "diskfull"
	cfg.ConnectTimeout, cfg.PublishTimeout = 500*time.Millisecond, time.Second
	cfg.JetStream = &natsink.JetStreamConfig{Stream: "DISKFULL", Create: true}
	cfg.Spool.Dir = spoolDir
	var logs syncbuf.Buffer
	s, err := natsink.New(cfg, newLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Logf("connect with NATS down: %v", err)
	}
	defer s.Close(context.Background())

	accepted := map[string]bool{}
	var refused int
	var firstErr error
	var slowest time.Duration
	for i := range 1500 {
		e := event.New(event.TrackStarted, "diskfull", "cam")
		e.TrackID, e.Label = uint64(i+1), "person"
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.Write(ctx, &stages.Frame{Stream: "cam", Events: []event.Event{e}})
		cancel()
		slowest = max(slowest, time.Since(t0))
		if err != nil {
			refused++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		accepted[e.ID] = true
	}
	st := s.Stats()
	t.Logf("64 KiB spool: %d accepted, %d refused, stats %+v, slowest Write %s, first error: %v", len(accepted), refused, st, slowest.Round(time.Millisecond), firstErr)
	if slowest > 5*time.Second {
		t.Errorf("a Write took %s on a full disk", slowest)
	}
	if refused == 0 && st.Dropped == 0 {
		t.Errorf("1500 events fit in 64 KiB? nothing refused or dropped: the disk never filled")
	}
	if firstErr != nil && !strings.HasPrefix(firstErr.Error(), "natsink") {
		t.Errorf("refusal without the package prefix: %v", firstErr)
	}

	srv := natsServer(t, port, t.TempDir())
	waitFor(t, 60*time.Second, "spool drained after NATS came back", func() bool { return s.Stats().Pending == 0 })
	stored := storedIDs(t, srv.ClientURL(), "DISKFULL")
	missing := 0
	for id := range accepted {
		if !stored[id] {
			missing++
		}
	}
	t.Logf("after NATS came back: stored %d, accepted-but-missing %d, dropped (spool full, counted) %d", len(stored), missing, s.Stats().Dropped)
	if uint64(missing) > s.Stats().Dropped {
		t.Errorf("%d accepted events lost beyond the %d counted drops", missing, s.Stats().Dropped)
	}
	if err := os.WriteFile(filepath.Join(spoolDir, "probe"), []byte("x"), 0o644); err != nil {
		t.Logf("disk still full after drain: %v", err)
	}
}

// TestGovernorVariantFailsToLoad makes the governor step down at once to a
// level whose model variant is corrupt: ONNX Runtime cannot create that
// session, the detect stage logs it and keeps the base model, and frames keep
// flowing through inference.
func TestGovernorVariantFailsToLoad(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "variant.onnx")
	if err := os.WriteFile(bad, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(repoRoot(t), "models/ssd_mobilenet_v2_coco.onnx")
	realpart.File(t, realpart.SSDModel, model)
	path := writeYAML(t, fmt.Sprintf(`name: governor
streams:
  - { id: pattern, url: "test://?fps=15&w=320&h=240" }
model: { path: %s, format: ssd, labels: coco, providers: [cpu], threads: 1 }
detect:
  confidence: 0.4
  governor:
    target_p99: 1ms
    window: 5
    levels:
      - { name: full }
      - { name: small, variant: %s }
`, model, bad))
	sink := newFrameLog()
	r := start(t, path, sink)
	waitFor(t, 60*time.Second, "the variant failure to be logged", func() bool {
		return strings.Contains(r.log.String(), "governor: cannot open model variant, keeping the base model")
	})
	n := sink.count("pattern")
	waitFor(t, 20*time.Second, "frames after the failed switch", func() bool { return sink.count("pattern") > n+10 })
	if _, err := r.wait(t, 15*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("%s", firstLine(r.log.String(), "cannot open model variant"))
	if !strings.Contains(r.log.String(), bad) {
		t.Errorf("log does not name the variant %s", bad)
	}
}
