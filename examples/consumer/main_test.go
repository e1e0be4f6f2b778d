package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/sink/natsink"
	"github.com/osprey-vision/osprey/stages"
)

// TestConsumer publishes line crossings through the real sink into an
// in-process server and checks the example consumer counts them, then that a
// restart of the durable consumer resumes after what it acknowledged.
func TestConsumer(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server did not start")
	}
	defer srv.Shutdown()

	sink, err := natsink.New(natsink.Config{URL: srv.ClientURL(), Pipeline: "lobby",
		JetStream: &natsink.JetStreamConfig{Stream: "OSPREY", Create: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		e := event.New(event.LineCrossed, "lobby", "door-cam")
		e.TrackID, e.Line, e.Direction, e.Count = uint64(i+1), "gate", []string{"in", "out"}[i%2], i/2+1
		if err := sink.Write(context.Background(), &stages.Frame{Stream: "door-cam", Events: []event.Event{e}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	var out strings.Builder
	args := []string{"--url", srv.ClientURL(), "--durable", "test", "--count", "4"}
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "line gate: out (in 2, out 2)") {
		t.Fatalf("first run output:\n%s", out.String())
	}
	// Restarted, the durable consumer gets only the two not yet acknowledged.
	out.Reset()
	args[len(args)-1] = "2"
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(out.String(), "\n"); lines != 2 || !strings.Contains(out.String(), "line gate: out (in 1, out 1)") {
		t.Fatalf("after restart want the 2 remaining crossings, got:\n%s", out.String())
	}
}
