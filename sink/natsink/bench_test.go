package natsink

import (
	"context"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/event"
)

// BenchmarkSink measures end to end throughput: Write b.N events (one per
// frame) and wait until the server acknowledged all of them.
func BenchmarkSink(b *testing.B) {
	srv := runServer(b, nil)
	for _, mode := range []struct {
		name  string
		js    bool
		spool bool
		fsync string
	}{
		{"jetstream/spool-fsync-always", true, true, "always"},
		{"jetstream/spool-fsync-interval", true, true, "interval"},
		{"jetstream/memory", true, false, ""},
		{"core/spool-fsync-always", false, true, "always"},
		{"core/spool-fsync-interval", false, true, "interval"},
		{"core/memory", false, false, ""},
	} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := Config{URL: srv.ClientURL(), Pipeline: "bench"}
			if mode.js {
				cfg.JetStream = &JetStreamConfig{Stream: "BENCH", Create: true}
			}
			if mode.spool {
				cfg.Spool = SpoolConfig{Dir: b.TempDir(), Fsync: mode.fsync}
			}
			s, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Connect(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			frames := make([]frameEvents, 64)
			for i := range frames {
				frames[i] = frameEvents{sampleEvent(event.Types[i%len(event.Types)], "bench", "cam", i)}
			}
			base := s.Stats().Published
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				if err := s.Write(context.Background(), frameWith("cam", frames[i%len(frames)]...)); err != nil {
					b.Fatal(err)
				}
			}
			for s.Stats().Published-base < uint64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			if d := s.Stats().Dropped; d != 0 {
				b.Fatalf("%d events dropped", d)
			}
		})
	}
}

type frameEvents = []event.Event
