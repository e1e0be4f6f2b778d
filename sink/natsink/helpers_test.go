package natsink

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/testlog"
	"github.com/osprey-vision/osprey/stages"
)

// runServer starts an in-process nats-server with JetStream on opts.Port
// (-1: a free port) storing in opts.StoreDir (a new temp dir when empty).
func runServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts == nil {
		opts = &server.Options{}
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	opts.JetStream = true
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// testLogger logs to the test output, so warnings show up under -v.
func testLogger(t testing.TB) *slog.Logger { return testlog.New(t) }

// validate checks body against event/schema.json.
func validate(t testing.TB, body []byte) {
	t.Helper()
	if _, err := DecodeEvent(body); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
}

// sampleEvent returns a schema-valid event of type typ with the fields that
// type requires, as the analytics stage would fill them.
func sampleEvent(typ event.Type, pipeline, stream string, n int) event.Event {
	e := event.New(typ, pipeline, stream)
	occ := n % 5
	box := geom.Rect{X: 0.1, Y: 0.2, W: 0.3, H: 0.4}
	switch typ {
	case event.TrackStarted:
		e.TrackID, e.Label, e.Box, e.FrameSeq, e.Confidence = uint64(n+1), "person", &box, uint64(n+1), 0.9
	case event.TrackEnded:
		e.TrackID, e.Label, e.Dwell = uint64(n+1), "person", 3.5
	case event.ZoneEntered, event.ZoneLeft:
		e.TrackID, e.Zone, e.Occupancy = uint64(n+1), "entrance", &occ
	case event.Loitering:
		e.TrackID, e.Zone, e.Occupancy, e.Dwell = uint64(n+1), "entrance", &occ, 31
	case event.LineCrossed:
		e.TrackID, e.Line, e.Direction, e.Count = uint64(n+1), "gate", "in", n
	case event.SourceDown:
		e.Reason = "eof"
	case event.ClipReady:
		e.ClipOf, e.Clip, e.ClipDuration = event.NewID(time.Now()), stream+"/clip.mp4", 10
	}
	return e
}

// frameWith returns an events-only frame (no image), as the runner hands an
// EventSink.
func frameWith(stream string, evs ...event.Event) *stages.Frame {
	return &stages.Frame{Stream: stream, Events: evs}
}

// newSink builds and connects a sink, closing it at cleanup.
func newSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// streamIDs reads every message of a stream in stream order and returns the
// event IDs, checking each body against the schema and its Nats-Msg-Id.
func streamIDs(t testing.TB, url, stream string) []string {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
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
		t.Fatalf("stream info: %v", err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		var e event.Event
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if got := m.Header.Get(nats.MsgIdHdr); got != e.ID {
			t.Fatalf("message %d: Nats-Msg-Id %q, body id %q", seq, got, e.ID)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// checkExactlyOnce asserts stored == created, in order, none duplicated.
func checkExactlyOnce(t testing.TB, created, stored []string) {
	t.Helper()
	seen := make(map[string]int, len(stored))
	for i, id := range stored {
		if j, dup := seen[id]; dup {
			t.Fatalf("event %s stored twice (stream positions %d and %d)", id, j, i)
		}
		seen[id] = i
	}
	if len(created) != len(stored) {
		missing := 0
		for _, id := range created {
			if _, ok := seen[id]; !ok {
				missing++
			}
		}
		t.Fatalf("created %d events, stored %d (%d created events missing)", len(created), len(stored), missing)
	}
	for i := range created {
		if created[i] != stored[i] {
			t.Fatalf("stream position %d holds %s, want %s: events out of order", i, stored[i], created[i])
		}
	}
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		panic(fmt.Sprintf("bad %s=%q: use a Go duration like 30s", name, v))
	}
	return def
}
