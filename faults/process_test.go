//go:build faults

package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/osprey-vision/osprey/app"
	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/syncbuf"
)

// TestSinkBlockedForever adds a frame sink whose Write never returns on its
// own: the pipeline keeps delivering to the other sinks, the blocked sink's
// queue drops are counted, and the hard stop bounds shutdown.
func TestSinkBlockedForever(t *testing.T) {
	matcheck.Leaks(t)
	dir := t.TempDir()
	path := writeYAML(t, twoStreams(t, dir, `drain_timeout: 2s`))
	stuck := newFrameLog()
	stuck.block = make(chan struct{}) // never closed
	r2 := startWith(t, path, stuck, newFrameLog())
	ok := r2.sinks[1]
	waitFor(t, 30*time.Second, "frames at the healthy sink", func() bool { return ok.count("pattern") > 20 })
	n := ok.count("pattern")
	time.Sleep(phase(3 * time.Second))
	if ok.count("pattern") <= n+10 {
		t.Fatalf("healthy sink stalled behind the blocked one: %d -> %d frames", n, ok.count("pattern"))
	}
	drops := r2.app.Metrics.Snapshot().Streams["pattern"].Drops
	took, err := r2.wait(t, 10*time.Second)
	t.Logf("healthy sink %d frames; drops %v; stop took %s (drain_timeout 2s); Run: %v", ok.count("pattern"), drops, took.Round(10*time.Millisecond), err)
	if err != nil && !errors.Is(err, errDrainTimeout()) {
		t.Fatalf("Run: %v", err)
	}
	if took > 3*time.Second {
		t.Errorf("stop took %s, more than drain_timeout 2s + 1s", took)
	}
	var dropped uint64
	for k, v := range drops {
		if strings.Contains(k, "queue_full") {
			dropped += v
		}
	}
	if dropped == 0 {
		t.Errorf("no queue_full drops counted for the blocked sink: %v", drops)
	}
}

// TestSecretsNeverLogged runs a pipeline whose NATS URL, token and RTSP URL
// carry credentials, with both endpoints down so every error path logs, at
// debug level: no secret may appear in the log or the events.
func TestSecretsNeverLogged(t *testing.T) {
	matcheck.Leaks(t)
	dir := t.TempDir()
	dead := freePort(t)
	path := writeYAML(t, fmt.Sprintf(`name: secrets
streams:
  - { id: cam, url: "rtsp://admin:CamPass-77@127.0.0.1:%d/stream1", open_timeout: 1s, backoff_max: 1s }
  - { id: cam2, url: "rtsp://viewer:Rtsp-Secret-2@127.0.0.1:%d/x?token=QueryTok-3", open_timeout: 1s, backoff_max: 1s }
%s
sinks:
  jsonl: { path: %s }
  nats: { url: "nats://osprey:NatsPw-55@127.0.0.1:%d", connect_timeout: 500ms, spool: { dir: %s } }
`, dead, dead, modelYAML(t), filepath.Join(dir, "events.jsonl"), dead, filepath.Join(dir, "spool")))
	r := start(t, path, nil)
	time.Sleep(phase(4 * time.Second))
	if _, err := r.wait(t, 15*time.Second); err != nil {
		t.Logf("Run: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	all := r.log.String() + string(b)
	for _, secret := range []string{"CamPass-77", "Rtsp-Secret-2", "NatsPw-55"} {
		if strings.Contains(all, secret) {
			i := strings.Index(all, secret)
			t.Errorf("secret %q leaked: ...%s...", secret, all[max(0, i-120):min(len(all), i+40)])
		}
	}
	if !strings.Contains(r.log.String(), "stream down") {
		t.Error("expected the dead streams to be logged (the check above would be vacuous)")
	}
	t.Logf("%d log lines checked, %d bytes of events", strings.Count(r.log.String(), "\n"), len(b))
	t.Run("query token", func(t *testing.T) {
		// Found by this suite, then fixed: capture.Redact also hides
		// credential query parameters.
		if strings.Contains(all, "QueryTok-3") {
			t.Error("a ?token= query value was logged")
		}
	})
}

// TestBadModelFailsClearly: a corrupt model file fails at start with an
// error naming the file, not a panic or a hang.
func TestBadModelFailsClearly(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "broken.onnx")
	if err := os.WriteFile(bad, []byte("this is not an onnx model"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := writeYAML(t, fmt.Sprintf(`name: badmodel
streams:
  - { id: p, url: "test://?fps=5" }
model: { path: %s, format: ssd, providers: [cpu] }
`, bad))
	cfg, err := config.Load(path, components.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	_, err = app.New(cfg, nil, app.Options{})
	t.Logf("app.New: %v", err)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("want an error naming %s, got %v", bad, err)
	}
}

// --- the real binary ---

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func pipelineBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "osprey-faults-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "pipeline")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/pipeline")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type proc struct {
	cmd    *exec.Cmd
	stderr syncbuf.Buffer
	done   chan struct{}
}

func runBinary(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(pipelineBinary(t), args...), done: make(chan struct{})}
	p.cmd.Dir = repoRoot(t)
	p.cmd.Stderr = &p.stderr
	p.cmd.Env = append(os.Environ(), "ORT_LIB="+filepath.Join(repoRoot(t), "third_party/lib/libonnxruntime.so"))
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// TestSIGTERMUnderLoad runs the real binary on three 60 fps streams (far
// more than the detector takes), sends SIGTERM, and checks it exits 0 within
// drain_timeout with a complete events file (every line parses, each stream's
// source.down "stopped" is there).
func TestSIGTERMUnderLoad(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	path := writeYAML(t, fmt.Sprintf(`name: sigterm
drain_timeout: 5s
latency_budget: 300ms
streams:
  - { id: a, url: "test://?fps=60&w=640&h=480" }
  - { id: b, url: "test://?fps=60&w=640&h=480" }
  - { id: c, url: "file://%s", loop: true }
%s
sinks:
  jsonl: { path: %s }
`, vtest, modelYAML(t), events))
	p := runBinary(t, "run", "--status", "off", path)
	time.Sleep(phase(6 * time.Second))
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit 10s after SIGTERM (drain_timeout 5s); stderr:\n%s", tail(p.stderr.String(), 30))
	}
	took := time.Since(t0)
	code := p.cmd.ProcessState.ExitCode()
	evs := readEvents(t, events)
	t.Logf("exit %d after %s; %d events; summary:\n%s", code, took.Round(10*time.Millisecond), len(evs), tail(p.stderr.String(), 8))
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if took > 5*time.Second {
		t.Errorf("exit took %s, more than drain_timeout 5s", took)
	}
	for _, s := range []string{"a", "b", "c"} {
		if countEvents(evs, "source.down", s) < 1 {
			t.Errorf("stream %s: its final source.down was not flushed", s)
		}
	}
}

// natsServer runs an in-process nats-server with JetStream on a fixed port
// and store, so it can be stopped and started again (an outage).
func natsServer(t *testing.T, port int, store string) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: store, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// storedIDs returns the event IDs in a JetStream stream.
func storedIDs(t *testing.T, url, stream string) map[string]bool {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		var e jsonlEvent
		if json.Unmarshal(m.Data, &e) == nil {
			ids[e.ID] = true
		}
	}
	return ids
}

func natsPipeline(t *testing.T, dir string, port int) string {
	return writeYAML(t, fmt.Sprintf(`name: natsfault
latency_budget: 1s
streams:
  - { id: plaza, url: "file://%s", loop: true, realtime: true }
  - { id: pattern, url: "test://?fps=10&w=320&h=240" }
%s
sinks:
  jsonl: { path: %s }
  nats: { url: "nats://127.0.0.1:%d", connect_timeout: 1s, publish_timeout: 1s, close_timeout: 10s, jetstream: { stream: FAULTS, create: true }, spool: { dir: %s } }
`, vtest, modelYAML(t), filepath.Join(dir, "events.jsonl"), port, filepath.Join(dir, "spool")))
}

// TestNATSDownAndUp stops the NATS server mid-run and starts it again: the
// events created meanwhile are spooled and arrive afterwards; every event
// in the JSONL file (the reference) is stored in JetStream exactly once.
func TestNATSDownAndUp(t *testing.T) {
	matcheck.Leaks(t)
	dir, store := t.TempDir(), t.TempDir()
	port := freePort(t)
	srv := natsServer(t, port, store)
	r := start(t, natsPipeline(t, dir, port), nil)
	waitFor(t, 60*time.Second, "first track events", func() bool {
		return countEvents(readEvents(t, filepath.Join(dir, "events.jsonl")), "track.started", "") > 0
	})
	srv.Shutdown()
	srv.WaitForShutdown()
	down := len(readEvents(t, filepath.Join(dir, "events.jsonl")))
	time.Sleep(phase(8 * time.Second))
	during := len(readEvents(t, filepath.Join(dir, "events.jsonl"))) - down
	srv = natsServer(t, port, store)
	time.Sleep(phase(4 * time.Second))
	if _, err := r.wait(t, 30*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	created := readEvents(t, filepath.Join(dir, "events.jsonl"))
	stored := storedIDs(t, srv.ClientURL(), "FAULTS")
	missing := 0
	for _, e := range created {
		if !stored[e.ID] {
			missing++
		}
	}
	t.Logf("created %d events (%d during the outage), stored %d, missing %d", len(created), during, len(stored), missing)
	if during == 0 {
		t.Error("no events were created during the outage: the test proves nothing")
	}
	if missing != 0 || len(stored) != len(created) {
		t.Errorf("created %d != stored %d (%d missing)", len(created), len(stored), missing)
	}
}

// TestSIGKILLAndRestartKeepsSpool runs the binary with NATS down so events
// spool on disk, kills it with SIGKILL, then starts NATS and the pipeline
// again on the same spool: the events of the killed run that were spooled
// (all those written to the JSONL file up to a second before the kill) reach
// JetStream.
func TestSIGKILLAndRestartKeepsSpool(t *testing.T) {
	dir, store := t.TempDir(), t.TempDir()
	port := freePort(t)
	path := natsPipeline(t, dir, port)
	p := runBinary(t, "run", "--status", "off", path)
	waitFor(t, 90*time.Second, "events spooled while NATS is down", func() bool {
		return countEvents(readEvents(t, filepath.Join(dir, "events.jsonl")), "track.started", "") >= 3
	})
	time.Sleep(phase(3 * time.Second))
	cut := time.Now().Add(-time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	var before []jsonlEvent
	for _, e := range readEvents(t, filepath.Join(dir, "events.jsonl")) {
		if at, err := time.Parse(time.RFC3339Nano, e.Time); err == nil && at.Before(cut) {
			before = append(before, e)
		}
	}
	srv := natsServer(t, port, store)
	p2 := runBinary(t, "run", "--status", "off", path)
	time.Sleep(phase(6 * time.Second))
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p2.done:
	case <-time.After(30 * time.Second):
		t.Fatal("restarted pipeline did not stop")
	}
	stored := storedIDs(t, srv.ClientURL(), "FAULTS")
	missing := 0
	for _, e := range before {
		if !stored[e.ID] {
			missing++
		}
	}
	t.Logf("killed run: %d events written before the kill (minus 1 s); stored after restart: %d (incl. the second run's); missing %d", len(before), len(stored), missing)
	if len(before) == 0 {
		t.Fatal("no events before the kill: the test proves nothing")
	}
	if missing != 0 {
		t.Errorf("%d spooled events lost across SIGKILL", missing)
	}
}

// TestSIGHUPReload drives hot reload through the real binary: SIGHUP after
// adding a stream starts it (source.up in the events file) without touching
// the other; SIGHUP after breaking the file logs the file:line:col error and
// the pipeline keeps running; SIGTERM still exits 0.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	body := func(extra string) string {
		return fmt.Sprintf(`name: hup
streams:
  - { id: first, url: "test://?fps=10&w=320&h=240" }
%s
%s
sinks:
  jsonl: { path: %s }
`, extra, modelYAML(t), events)
	}
	path := writeYAML(t, body(""))
	p := runBinary(t, "run", "--status", "off", path)
	waitFor(t, 30*time.Second, "first stream up", func() bool { return countEvents(readEvents(t, events), "source.up", "first") > 0 })

	if err := os.WriteFile(path, []byte(body(`  - { id: second, url: "test://?fps=10&w=320&h=240" }`)), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 30*time.Second, "added stream up after SIGHUP", func() bool { return countEvents(readEvents(t, events), "source.up", "second") > 0 })

	if err := os.WriteFile(path, []byte(body("")+"detect: { every: often }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 30*time.Second, "rejection logged", func() bool { return strings.Contains(p.stderr.String(), "reload rejected") })
	time.Sleep(time.Second)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	evs := readEvents(t, events)
	t.Logf("exit %d; first: %d up / %d down, second: %d up; rejection: %s", p.cmd.ProcessState.ExitCode(),
		countEvents(evs, "source.up", "first"), countEvents(evs, "source.down", "first"), countEvents(evs, "source.up", "second"), firstLine(p.stderr.String(), "reload rejected"))
	if p.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("exit code %d", p.cmd.ProcessState.ExitCode())
	}
	if countEvents(evs, "source.up", "first") != 1 || countEvents(evs, "source.down", "first") != 1 {
		t.Error("the unchanged stream was restarted by a reload")
	}
	if !strings.Contains(p.stderr.String(), path+":") {
		t.Errorf("rejection does not name %s with a position:\n%s", path, tail(p.stderr.String(), 10))
	}
}
