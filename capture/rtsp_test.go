package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/rtsptest"
	"github.com/osprey-vision/osprey/stages"
)

// startRTSP starts scripts/rtsp-server.py serving vtest.avi on port.
func startRTSP(t *testing.T, port int) *rtsptest.Server { return rtsptest.Start(t, port, vtest) }

func freePort(t *testing.T) int { return rtsptest.FreePort(t) }

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
	matcheck.Leaks(t)
	port := freePort(t)
	srv := startRTSP(t, port)
	cfg := rtspConfig(srv.URL())
	r, src := startReader(t, cfg)

	up := r.waitState(t, true, 15*time.Second)
	r.waitFrames(t, 20, 10*time.Second)
	r.mu.Lock()
	size := r.size
	r.mu.Unlock()
	if size != [2]int{768, 576} {
		t.Errorf("frame size %v, want 768x576", size)
	}
	if up.URL != srv.URL() || up.Stream != "cam" {
		t.Errorf("up state %+v", up)
	}

	killed := time.Now()
	srv.Kill()
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
	cfg := rtspConfig(srv.URL())
	r, _ := startReader(t, cfg)
	r.waitState(t, true, 15*time.Second)
	r.waitFrames(t, 10, 10*time.Second)

	stopped := time.Now()
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	down := r.waitState(t, false, cfg.StallTimeout+3*time.Second)
	t.Logf("down %s after SIGSTOP, reason %q", down.At.Sub(stopped).Round(time.Millisecond), down.Reason)
	if want := "no frame for 2s"; down.Reason != want {
		t.Errorf("reason %q, want %q", down.Reason, want)
	}
	if err := srv.Signal(syscall.SIGCONT); err != nil {
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
