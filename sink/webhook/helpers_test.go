package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/testlog"
	"github.com/osprey-vision/osprey/stages"
)

// hang is a status a receiver's mode returns to hold the request until the
// client gives up.
const hang = -1

// receiver is a webhook endpoint on loopback. It checks every request the
// way a real receiver would (signature, headers, schema) and records the
// events it accepted, in arrival order.
type receiver struct {
	t   testing.TB
	srv *httptest.Server
	key []byte // HMAC key to verify; nil: expect no signature

	mu       sync.Mutex
	accepted []event.Event
	attempts map[string]int // requests per event ID
	mode     func(n int, id string) int
	n        int // requests so far
}

// newReceiver starts an endpoint; mode (nil: accept all) returns the status
// to answer request n (from 0) for event id with, 0 meaning accept (200).
func newReceiver(t testing.TB, key []byte, mode func(n int, id string) int) *receiver {
	r := &receiver{t: t, key: key, attempts: map[string]int{}, mode: mode}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Errorf("receiver: read body: %v", err)
		return
	}
	id := req.Header.Get("Idempotency-Key")
	switch {
	case req.Method != http.MethodPost:
		r.t.Errorf("receiver: method %s, want POST", req.Method)
	case req.Header.Get("Content-Type") != "application/json":
		r.t.Errorf("receiver: Content-Type %q", req.Header.Get("Content-Type"))
	case id == "" || req.Header.Get("X-Osprey-Event-Id") != id:
		r.t.Errorf("receiver: Idempotency-Key %q, X-Osprey-Event-Id %q", id, req.Header.Get("X-Osprey-Event-Id"))
	}
	if err := event.Validate(body); err != nil {
		r.t.Errorf("receiver: %v\n%s", err, body)
	}
	var ev event.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != id {
		r.t.Errorf("receiver: body id %q (err %v), header %q", ev.ID, err, id)
	}
	if string(ev.Type) != req.Header.Get("X-Osprey-Event-Type") {
		r.t.Errorf("receiver: X-Osprey-Event-Type %q, body type %q", req.Header.Get("X-Osprey-Event-Type"), ev.Type)
	}
	sig := req.Header.Get(DefaultSignatureHeader)
	if r.key != nil {
		m := hmac.New(sha256.New, r.key)
		m.Write(body)
		if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); !hmac.Equal([]byte(sig), []byte(want)) {
			r.t.Errorf("receiver: signature %q, want %q", sig, want)
		}
	} else if sig != "" {
		r.t.Errorf("receiver: unexpected signature %q", sig)
	}

	r.mu.Lock()
	n := r.n
	r.n++
	r.attempts[id]++
	mode := r.mode
	r.mu.Unlock()
	code := 0
	if mode != nil {
		code = mode(n, id)
	}
	switch code {
	case 0:
		r.mu.Lock()
		r.accepted = append(r.accepted, ev)
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	case hang:
		select {
		case <-req.Context().Done():
		case <-time.After(10 * time.Second):
			r.t.Errorf("receiver: client never gave up on a hung request")
		}
	default:
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, "test says "+http.StatusText(code), code)
	}
}

func (r *receiver) setMode(mode func(n int, id string) int) {
	r.mu.Lock()
	r.mode = mode
	r.mu.Unlock()
}

// ids returns the IDs of the accepted events, in arrival order.
func (r *receiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.accepted))
	for i, e := range r.accepted {
		out[i] = e.ID
	}
	return out
}

// events returns the accepted events, in arrival order.
func (r *receiver) events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.accepted)
}

// attemptsFor returns how many requests carried event id.
func (r *receiver) attemptsFor(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[id]
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.accepted)
}

func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// sampleEvent returns a schema-valid event, as the analytics stage makes them.
func sampleEvent(stream string, n int) event.Event {
	box := geom.Rect{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}
	switch n % 3 {
	case 0:
		e := event.New(event.TrackStarted, "", stream)
		e.TrackID, e.Label, e.Box, e.FrameSeq, e.Confidence = uint64(n+1), "person", &box, uint64(n+1), 0.9
		return e
	case 1:
		e := event.New(event.LineCrossed, "", stream)
		e.TrackID, e.Line, e.Direction, e.Count = uint64(n+1), "gate", "in", n
		return e
	}
	e := event.New(event.TrackEnded, "", stream)
	e.TrackID, e.Label, e.Dwell = uint64(n+1), "person", 3.5
	return e
}

// writeEvents writes n events in frames of up to three and returns their IDs
// in order.
func writeEvents(t testing.TB, s *Sink, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; {
		f := &stages.Frame{Stream: "door-cam", Seq: uint64(i + 1)}
		for k := 0; k < 3 && i < n; k, i = k+1, i+1 {
			e := sampleEvent("door-cam", i)
			f.Events = append(f.Events, e)
			ids = append(ids, e.ID)
		}
		if err := s.Write(context.Background(), f); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	return ids
}

// testConfig is a valid configuration for urls with fast retries.
func testConfig(t testing.TB, urls ...string) Config {
	c := Defaults()
	c.URLs = urls
	c.Timeout = 2 * time.Second
	c.Retry = RetryConfig{MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	c.Spool.Dir = t.TempDir()
	c.CloseTimeout = 2 * time.Second
	return c
}

// newSink builds and connects a sink, closing it at cleanup.
func newSink(t testing.TB, cfg Config, log *slog.Logger) *Sink {
	t.Helper()
	if log == nil {
		log = testLogger(t)
	}
	s, err := New(cfg, "lobby", nil, log)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// testLogger logs to the test output, so warnings show up under -v.
func testLogger(t testing.TB) *slog.Logger { return testlog.New(t) }

// logBuf collects log lines, for tests that check what was logged.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// equalIDs fails unless got is want, in order, naming the first difference.
func equalIDs(t testing.TB, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("%s: %d events, want %d; first difference at %d: %s, want %s", what, len(got), len(want), i, got[i], want[i])
		}
	}
	t.Fatalf("%s: %d events, want %d (one is a prefix of the other)", what, len(got), len(want))
}

// checkNoLeaks fails when the goroutine count does not return to base.
func checkNoLeaks(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func urlStats(s *Sink, i int) URLStats { return s.Stats().URLs[i] }

func describe(st Stats) string { return fmt.Sprintf("%+v", st) }
