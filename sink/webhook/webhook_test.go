package webhook

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/stages"
)

func TestDeliversInOrderSignedWithHeaders(t *testing.T) {
	key := []byte("s3cret-key")
	keyFile := filepath.Join(t.TempDir(), "hmac.key")
	if err := os.WriteFile(keyFile, append(key, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	var auth atomic.Value
	r := newReceiver(t, key, nil)
	inner := r.srv.Config.Handler
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		auth.Store(req.Header.Get("Authorization"))
		inner.ServeHTTP(w, req)
	})
	cfg := testConfig(t, r.srv.URL+"/hook")
	cfg.Headers = map[string]string{"Authorization": "Bearer abc"}
	cfg.HMAC = &HMACConfig{SecretFile: keyFile}
	s := newSink(t, cfg, nil)

	want := writeEvents(t, s, 40)
	waitFor(t, 10*time.Second, "40 events at the receiver", func() bool { return r.count() == 40 })
	waitFor(t, 5*time.Second, "the spool to empty", func() bool { return s.Stats().Pending == 0 })
	equalIDs(t, "received", r.ids(), want)
	if r.requests() != 40 {
		t.Fatalf("%d requests for 40 events: something was sent twice", r.requests())
	}
	for _, e := range r.events() {
		if e.Pipeline != "lobby" {
			t.Fatalf("event pipeline %q, want lobby (filled by the sink)", e.Pipeline)
		}
	}
	if got := auth.Load(); got != "Bearer abc" {
		t.Fatalf("Authorization %q: configured headers not sent", got)
	}
	if st := s.Stats(); st.Delivered != 40 || st.URLs[0].Delivered != 40 || st.URLs[0].Retries != 0 || st.URLs[0].Failed != 0 {
		t.Fatalf("stats %s", describe(st))
	}
}

func TestServerFailsThenRecoversLosesNothing(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	r := newReceiver(t, nil, func(n int, _ string) int {
		if failing.Load() {
			// A mix of what a struggling server answers.
			return []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusRequestTimeout}[n%5]
		}
		return 0
	})
	s := newSink(t, testConfig(t, r.srv.URL), nil)
	want := writeEvents(t, s, 10)
	waitFor(t, 10*time.Second, "10 failed attempts", func() bool { return r.requests() >= 10 })
	if r.count() != 0 {
		t.Fatalf("receiver accepted %d events while failing", r.count())
	}
	if p := s.Stats().Pending; p != 10 {
		t.Fatalf("pending %d during the outage, want 10", p)
	}
	// More events arrive during the outage.
	want = append(want, writeEvents(t, s, 15)...)
	failing.Store(false)
	waitFor(t, 10*time.Second, "25 events after recovery", func() bool { return r.count() == 25 })
	equalIDs(t, "received", r.ids(), want)
	waitFor(t, 5*time.Second, "the spool to empty", func() bool { return s.Stats().Pending == 0 })
	if st := urlStats(s, 0); st.Retries < 10 || st.Delivered != 25 || st.Failed != 0 {
		t.Fatalf("stats %+v: want >= 10 retries, 25 delivered", st)
	}
}

func TestTimeoutIsRetriedThenDelivered(t *testing.T) {
	r := newReceiver(t, nil, func(n int, _ string) int {
		if n < 2 {
			return hang // past the sink's timeout, twice
		}
		return 0
	})
	cfg := testConfig(t, r.srv.URL)
	cfg.Timeout = 150 * time.Millisecond
	var logs logBuf
	s := newSink(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	start := time.Now()
	want := writeEvents(t, s, 5)
	waitFor(t, 10*time.Second, "5 events", func() bool { return r.count() == 5 })
	if took := time.Since(start); took < 2*cfg.Timeout {
		t.Fatalf("delivered after %v: the two hung requests did not wait for the timeout", took)
	}
	equalIDs(t, "received", r.ids(), want)
	if st := urlStats(s, 0); st.Retries != 2 || st.Delivered != 5 {
		t.Fatalf("stats %+v: want 2 retries, 5 delivered", st)
	}
	if !strings.Contains(logs.String(), "no answer within timeout 150ms") {
		t.Fatalf("the time-out was not logged:\n%s", logs.String())
	}
}

func TestRestartReplaysUndelivered(t *testing.T) {
	const firstRun = 7
	r := newReceiver(t, nil, func(n int, _ string) int {
		if n >= firstRun {
			return http.StatusInternalServerError
		}
		return 0
	})
	cfg := testConfig(t, r.srv.URL)
	cfg.CloseTimeout = 100 * time.Millisecond
	cfg.Spool.Fsync = "never" // a process restart keeps the page cache
	s1, err := New(cfg, "lobby", nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := writeEvents(t, s1, 20)
	waitFor(t, 10*time.Second, "the outage", func() bool { return urlStats(s1, 0).Retries > 2 })
	if err := s1.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	first := r.ids()
	equalIDs(t, "first run", first, want[:firstRun])
	if p := s1.Stats().Pending; p != 20-firstRun {
		t.Fatalf("pending after close %d, want %d", p, 20-firstRun)
	}

	// Next start: same spool, the endpoint works again.
	r.setMode(nil)
	s2, err := New(cfg, "lobby", nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close(context.Background()) })
	if p := s2.Stats().Pending; p != 20-firstRun {
		t.Fatalf("reopened spool holds %d events, want %d", p, 20-firstRun)
	}
	if err := s2.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the replay", func() bool { return r.count() == 20 })
	// Exactly the undelivered events, in order: none lost, none sent again.
	equalIDs(t, "second run", r.ids()[firstRun:], want[firstRun:])
	equalIDs(t, "both runs", r.ids(), want)
	waitFor(t, 5*time.Second, "the spool to empty", func() bool { return s2.Stats().Pending == 0 })
}

func TestPermanentRejectionIsSkipped(t *testing.T) {
	var bad atomic.Value
	bad.Store("")
	r := newReceiver(t, nil, func(_ int, id string) int {
		if id == bad.Load() {
			return http.StatusUnprocessableEntity
		}
		return 0
	})
	var logs logBuf
	s := newSink(t, testConfig(t, r.srv.URL), slog.New(slog.NewTextHandler(&logs, nil)))
	f := &stages.Frame{Stream: "door-cam"}
	for i := range 5 {
		f.Events = append(f.Events, sampleEvent("door-cam", i))
	}
	bad.Store(f.Events[2].ID)
	if err := s.Write(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the spool to empty", func() bool { return s.Stats().Pending == 0 })
	want := []string{f.Events[0].ID, f.Events[1].ID, f.Events[3].ID, f.Events[4].ID}
	equalIDs(t, "received", r.ids(), want)
	if r.attemptsFor(f.Events[2].ID) != 1 {
		t.Fatalf("the rejected event was sent %d times, want once", r.attemptsFor(f.Events[2].ID))
	}
	if st := urlStats(s, 0); st.Failed != 1 || st.Delivered != 4 || st.Retries != 0 {
		t.Fatalf("stats %+v: want 1 failed, 4 delivered, 0 retries", st)
	}
	if l := logs.String(); !strings.Contains(l, "permanent failure") || !strings.Contains(l, "status=422") || !strings.Contains(l, f.Events[2].ID) {
		t.Fatalf("the rejection was not logged with its status and event id:\n%s", l)
	}
}

func TestEveryURLGetsEveryEventOnce(t *testing.T) {
	good := newReceiver(t, nil, nil)
	var failing atomic.Bool
	failing.Store(true)
	flaky := newReceiver(t, nil, func(int, string) int {
		if failing.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	s := newSink(t, testConfig(t, good.srv.URL, flaky.srv.URL), nil)
	want := writeEvents(t, s, 12)
	waitFor(t, 10*time.Second, "retries at the flaky URL", func() bool { return urlStats(s, 1).Retries >= 3 })
	// One cursor: the good URL has the head event only; the rest wait.
	if got := good.ids(); len(got) != 1 || got[0] != want[0] {
		t.Fatalf("good URL got %v while the other was down, want only the first event", got)
	}
	failing.Store(false)
	waitFor(t, 10*time.Second, "both URLs to have 12 events", func() bool { return good.count() == 12 && flaky.count() == 12 })
	equalIDs(t, "good URL", good.ids(), want)
	equalIDs(t, "flaky URL", flaky.ids(), want)
	if good.requests() != 12 {
		t.Fatalf("good URL got %d requests for 12 events: retries of the other URL were sent to it", good.requests())
	}
}

func TestCloseIsBoundedAndKeepsTheRest(t *testing.T) {
	r := newReceiver(t, nil, func(int, string) int { return hang })
	cfg := testConfig(t, r.srv.URL)
	cfg.Timeout = time.Minute
	cfg.CloseTimeout = 200 * time.Millisecond
	s, err := New(cfg, "lobby", nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	writeEvents(t, s, 3)
	waitFor(t, 5*time.Second, "a request in flight", func() bool { return r.requests() == 1 })
	start := time.Now()
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("close took %v with close_timeout 200ms", took)
	}
	if p := s.Stats().Pending; p != 3 {
		t.Fatalf("pending %d after close, want 3 left in the spool", p)
	}
}

func TestCloseTwiceNoLeaks(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		r := newReceiver(t, nil, nil)
		defer r.srv.Close()
		s, err := New(testConfig(t, r.srv.URL), "lobby", nil, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Connect(context.Background()); err != nil {
			t.Fatalf("second connect: %v", err)
		}
		writeEvents(t, s, 6)
		waitFor(t, 10*time.Second, "6 events", func() bool { return r.count() == 6 })
		for i := range 2 {
			if err := s.Close(context.Background()); err != nil {
				t.Fatalf("close %d: %v", i+1, err)
			}
		}
		if err := s.Write(context.Background(), &stages.Frame{Events: []event.Event{sampleEvent("x", 0)}}); err != ErrClosed {
			t.Fatalf("write after close: %v, want ErrClosed", err)
		}
		if err := s.Connect(context.Background()); err != ErrClosed {
			t.Fatalf("connect after close: %v, want ErrClosed", err)
		}

		// Built but never connected: Close still releases the spool.
		s2, err := New(testConfig(t, r.srv.URL), "lobby", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		writeEvents(t, s2, 2)
		if err := s2.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s2.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}()
	checkNoLeaks(t, base)
}

func TestCredentialsNeverLogged(t *testing.T) {
	// A port nothing listens on: every attempt fails with a network error
	// whose text would include the URL.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	raw := "http://alice:hunter2@" + addr + "/hook?token=tok-secret&x=1"
	var logs logBuf
	cfg := testConfig(t, raw)
	cfg.CloseTimeout = 50 * time.Millisecond
	s := newSink(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	writeEvents(t, s, 1)
	waitFor(t, 5*time.Second, "a failed attempt", func() bool { return urlStats(s, 0).Retries > 0 })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, secret := range []string{"alice", "hunter2", "tok-secret"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains %q:\n%s", secret, out)
		}
	}
	if want := "http://***@" + addr + "/hook?token=***&x=***"; !strings.Contains(out, want) || s.Stats().URLs[0].URL != want {
		t.Fatalf("want the URL logged as %s, got:\n%s", want, out)
	}
}
