// Command consumer is an example Osprey event consumer in Go: what a
// dashboard, an alarm or an occupancy counter starts from.
//
// It reads events from a JetStream stream through a durable pull consumer,
// so a consumer restart resumes where it stopped and nothing published while
// it was down is missed. Each event is acknowledged after it is processed
// (at-least-once); the event ID makes processing idempotent, because an
// event can be redelivered if the consumer dies between processing and ack.
//
//	go run ./examples/consumer --url nats://127.0.0.1:4222 --stream OSPREY --durable counter
//
// It keeps running totals: line crossings per line and direction, and the
// latest occupancy per zone, and prints one line per event.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/osprey-vision/osprey/event"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// totals is the consumer's state: what an application would keep in a database.
type totals struct {
	seen      map[string]bool           // event IDs processed (idempotency)
	crossings map[string]map[string]int // line -> direction -> count
	occupancy map[string]int            // "stream/zone" -> occupancy
	processed int
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	url := fs.String("url", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	stream := fs.String("stream", "OSPREY", "JetStream stream holding the events (sinks.nats.jetstream.stream)")
	durable := fs.String("durable", "example-consumer", "durable consumer name: restarts resume from here")
	filter := fs.String("filter", "osprey.>", "subject filter, e.g. osprey.lobby.*.line.crossed")
	count := fs.Int("count", 0, "stop after this many events (0: run until interrupted)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	nc, err := nats.Connect(*url, nats.Name("osprey example consumer"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("consumer: connect to %s: %w", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, *stream, jetstream.ConsumerConfig{
		Durable:       *durable,
		FilterSubject: *filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("consumer: durable %s on stream %s: %w (is the pipeline's jetstream.stream set and created?)", *durable, *stream, err)
	}

	t := &totals{seen: map[string]bool{}, crossings: map[string]map[string]int{}, occupancy: map[string]int{}}
	for *count == 0 || t.processed < *count {
		if ctx.Err() != nil {
			return nil
		}
		n := 100
		if *count > 0 {
			// Fetch no more than we will process: fetched messages that are
			// not acked wait out AckWait before redelivery.
			n = min(n, *count-t.processed)
		}
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return fmt.Errorf("consumer: fetch: %w", err)
		}
		for m := range batch.Messages() {
			var e event.Event
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				// A malformed message will not get better: terminate it rather
				// than have it redelivered forever.
				fmt.Fprintf(out, "skipping malformed message on %s: %v\n", m.Subject(), err)
				_ = m.Term()
				continue
			}
			t.apply(e, out)
			if err := m.Ack(); err != nil {
				return fmt.Errorf("consumer: ack %s: %w", e.ID, err)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("consumer: fetch: %w", err)
		}
	}
	return nil
}

// apply processes one event exactly once per ID.
func (t *totals) apply(e event.Event, out io.Writer) {
	if t.seen[e.ID] {
		return // redelivered after a crash between processing and ack
	}
	t.seen[e.ID] = true
	t.processed++
	switch e.Type {
	case event.LineCrossed:
		if t.crossings[e.Line] == nil {
			t.crossings[e.Line] = map[string]int{}
		}
		t.crossings[e.Line][e.Direction]++
		fmt.Fprintf(out, "%s %s/%s line %s: %s (in %d, out %d)\n", e.Time.Format(time.RFC3339), e.Pipeline, e.Stream,
			e.Line, e.Direction, t.crossings[e.Line]["in"], t.crossings[e.Line]["out"])
	case event.ZoneEntered, event.ZoneLeft, event.Loitering:
		if e.Occupancy != nil {
			t.occupancy[e.Stream+"/"+e.Zone] = *e.Occupancy
		}
		fmt.Fprintf(out, "%s %s/%s zone %s: %s, occupancy %d\n", e.Time.Format(time.RFC3339), e.Pipeline, e.Stream,
			e.Zone, e.Type, t.occupancy[e.Stream+"/"+e.Zone])
	default:
		fmt.Fprintf(out, "%s %s/%s %s track %d %s\n", e.Time.Format(time.RFC3339), e.Pipeline, e.Stream, e.Type, e.TrackID, e.Label)
	}
}
