package capture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/stages"
)

// rtspServer is scripts/rtsp-server.py (GStreamer's RTSP server) serving
// vtest.avi at rtsp://127.0.0.1:port/cam.
type rtspServer struct {
	cmd  *exec.Cmd
	port int
}

// startRTSP starts the test server on port and waits until it serves.
func startRTSP(t *testing.T, port int) *rtspServer {
	t.Helper()
	needFile(t, vtest)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3 for the GStreamer RTSP test server (see scripts/setup.sh)")
	}
	cmd := exec.Command("/usr/bin/python3", "../scripts/rtsp-server.py", "--port", fmt.Sprint(port), "--file", vtest)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &rtspServer{cmd: cmd, port: port}
	t.Cleanup(s.kill)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := sc.Scan() && sc.Text() == "ready"
		ready <- ok
		for sc.Scan() {
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			if strings.Contains(stderr.String(), "No module named 'gi'") || strings.Contains(stderr.String(), "Namespace GstRtspServer not available") {
				t.Skipf("GStreamer RTSP server bindings missing (see scripts/setup.sh): %s", stderr.String())
			}
			t.Fatalf("rtsp-server.py did not start: %s", stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("rtsp-server.py not ready after 15s: %s", stderr.String())
	}
	return s
}

func (s *rtspServer) url() string { return fmt.Sprintf("rtsp://127.0.0.1:%d/cam", s.port) }

// kill stops the server the hard way (a crash, no RTSP TEARDOWN).
func (s *rtspServer) kill() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// reader reads a source in the background, as the runner does, and records
// frames and state transitions.
type reader struct {
	mu     sync.Mutex
	frames int
	size   [2]int
	states chan State
	cancel context.CancelFunc
	done   chan error
}

func startReader(t *testing.T, cfg Config) (*reader, stages.Source) {
	t.Helper()
	r := &reader{states: make(chan State, 64), done: make(chan error, 1)}
	src := mustNew(t, cfg, func(s State) { r.states <- s })
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		for {
			f, err := src.Read(ctx)
			if err != nil {
				r.done <- err
				return
			}
			r.mu.Lock()
			r.frames++
			r.size = [2]int{f.Width, f.Height}
			r.mu.Unlock()
			f.Release()
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("reader did not stop 5s after cancel")
		}
		_ = src.Close(context.Background())
	})
	return r, src
}

func (r *reader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frames
}

// waitState waits for the next transition, which must be up == want.
func (r *reader) waitState(t *testing.T, want bool, within time.Duration) State {
	t.Helper()
	select {
	case s := <-r.states:
		if s.Up != want {
			t.Fatalf("state %+v, want up=%v", s, want)
		}
		return s
	case <-time.After(within):
		t.Fatalf("no up=%v state within %s", want, within)
	}
	return State{}
}

// waitFrames waits until n more frames than now arrived.
func (r *reader) waitFrames(t *testing.T, n int, within time.Duration) {
	t.Helper()
	want := r.count() + n
	deadline := time.Now().Add(within)
	for r.count() < want {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d frames within %s", r.count(), want, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func rtspConfig(url string) Config {
	return Config{ID: "cam", URL: url, TCP: true, StallTimeout: 2 * time.Second, OpenTimeout: 5 * time.Second,
		BackoffMin: 200 * time.Millisecond, BackoffMax: time.Second}
}

// TestRTSPKillRestart kills the RTSP server mid-stream and restarts it on the
// same port: the source must report down, then come back up by itself.
func TestRTSPKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("live RTSP server test (about 10 s)")
	}
	checkMats(t)
	port := freePort(t)
	srv := startRTSP(t, port)
	cfg := rtspConfig(srv.url())
	r, src := startReader(t, cfg)

	up := r.waitState(t, true, 15*time.Second)
	r.waitFrames(t, 20, 10*time.Second)
	r.mu.Lock()
	size := r.size
	r.mu.Unlock()
	if size != [2]int{768, 576} {
		t.Errorf("frame size %v, want 768x576", size)
	}
	if up.URL != srv.url() || up.Stream != "cam" {
		t.Errorf("up state %+v", up)
	}

	killed := time.Now()
	srv.kill()
	down := r.waitState(t, false, cfg.StallTimeout+3*time.Second)
	t.Logf("down %s after kill, reason %q", down.At.Sub(killed).Round(time.Millisecond), down.Reason)
	if down.Reason == "" {
		t.Error("down state without a reason")
	}

	restarted := time.Now()
	startRTSP(t, port)
	ready := time.Now()
	up = r.waitState(t, true, 20*time.Second)
	r.waitFrames(t, 20, 10*time.Second)
	t.Logf("up again %s after restarting the server (%s after it was ready)",
		up.At.Sub(restarted).Round(time.Millisecond), up.At.Sub(ready).Round(time.Millisecond))
	select {
	case s := <-r.states:
		t.Errorf("extra transition %+v", s)
	default:
	}
	_ = src
}

// TestRTSPStall freezes the server (SIGSTOP): the TCP connection stays open
// but no frame comes, which must count as lost after stall_timeout; after
// SIGCONT the source recovers by itself.
func TestRTSPStall(t *testing.T) {
	if testing.Short() {
		t.Skip("live RTSP server test (about 10 s)")
	}
	port := freePort(t)
	srv := startRTSP(t, port)
	cfg := rtspConfig(srv.url())
	r, _ := startReader(t, cfg)
	r.waitState(t, true, 15*time.Second)
	r.waitFrames(t, 10, 10*time.Second)

	stopped := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	down := r.waitState(t, false, cfg.StallTimeout+3*time.Second)
	t.Logf("down %s after SIGSTOP, reason %q", down.At.Sub(stopped).Round(time.Millisecond), down.Reason)
	if want := "no frame for 2s"; down.Reason != want {
		t.Errorf("reason %q, want %q", down.Reason, want)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, true, 20*time.Second)
	r.waitFrames(t, 10, 10*time.Second)
}

// TestRTSPNothingListening: a camera that is not there is down, retried with
// back-off (not in a busy loop), and Read stays cancellable.
func TestRTSPNothingListening(t *testing.T) {
	port := freePort(t)
	var states []State
	cfg := rtspConfig(fmt.Sprintf("rtsp://user:secret@127.0.0.1:%d/cam", port))
	src := mustNew(t, cfg, func(s State) { states = append(states, s) })
	defer src.Close(context.Background())
	err := src.Connect(context.Background())
	if !errors.Is(err, stages.ErrNotConnected) {
		t.Fatalf("Connect: %v, want ErrNotConnected", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := src.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read: %v, want deadline exceeded", err)
	}
	// Back-off 200ms doubling to 1s (jittered 50-100%): about 4-10 tries in 3s.
	tries := src.(*source).failures
	t.Logf("%d reconnect attempts in 3s", tries)
	if tries < 2 || tries > 15 {
		t.Errorf("%d reconnect attempts in 3s, want 2..15 (back-off 200ms..1s)", tries)
	}
	if len(states) != 1 || states[0].Up {
		t.Fatalf("states %+v, want exactly one down", states)
	}
	if want := fmt.Sprintf("rtsp://REDACTED@127.0.0.1:%d/cam", port); states[0].URL != want {
		t.Errorf("state URL %q, want %q", states[0].URL, want)
	}
}

// TestRTSPSilentServer: a server that accepts TCP but never answers must not
// hang Connect or Read: the open times out after stall_timeout.
func TestRTSPSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	cfg := rtspConfig(fmt.Sprintf("rtsp://%s/cam", l.Addr()))
	cfg.OpenTimeout = time.Second
	var states []State
	src := mustNew(t, cfg, func(s State) { states = append(states, s) })
	defer src.Close(context.Background())
	start := time.Now()
	err = src.Connect(context.Background())
	if !errors.Is(err, stages.ErrNotConnected) || !strings.Contains(err.Error(), "open timed out after 1s") {
		t.Fatalf("Connect: %v, want an open timeout wrapping ErrNotConnected", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Connect took %s with stall_timeout 1s", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if _, err := src.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read: %v, want deadline exceeded", err)
	}
	if len(states) != 1 || states[0].Up || states[0].Reason != "open timed out after 1s" {
		t.Errorf("states %+v, want one down (open timed out after 1s)", states)
	}
}
