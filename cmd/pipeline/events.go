package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/osprey-vision/osprey/sink/natsink"
)

// cmdEvents subscribes to a pipeline's events on NATS and prints them, one
// per line (or the raw JSON with --json), checking each against the event
// schema. It stops on SIGINT, or after --count events.
func cmdEvents(ctx context.Context, args []string) int {
	return runEvents(ctx, args, os.Stdout, os.Stderr)
}

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                   natsink.Config
		pipeline, stream, typ string
		asJSON, detections    bool
		count                 int
	)
	fs.StringVar(&cfg.URL, "url", "nats://127.0.0.1:4222", "NATS server URL (the embedded server's default address)")
	fs.StringVar(&cfg.SubjectPrefix, "prefix", "osprey", "subject prefix (sinks.nats.subject_prefix)")
	fs.StringVar(&pipeline, "pipeline", "", "only this pipeline (default: all)")
	fs.StringVar(&stream, "stream", "", "only this stream (default: all)")
	fs.StringVar(&typ, "type", "", "only this event type, e.g. line.crossed, or zone for every zone.* event")
	fs.BoolVar(&asJSON, "json", false, "print each event's JSON body instead of a summary line")
	fs.BoolVar(&detections, "detections", false, "print per-frame detection messages instead of events")
	fs.IntVar(&count, "count", 0, "exit after this many events (0: run until interrupted)")
	fs.StringVar(&cfg.Credentials, "creds", "", "NATS credentials file")
	fs.StringVar(&cfg.NKeySeed, "nkey", "", "NATS nkey seed file")
	fs.StringVar(&cfg.User, "user", "", "NATS user")
	fs.StringVar(&cfg.Password, "password", "", "NATS password")
	fs.StringVar(&cfg.Token, "token", "", "NATS token")
	fs.StringVar(&cfg.TLS.CA, "tls-ca", "", "CA file to verify the server")
	fs.StringVar(&cfg.TLS.Cert, "tls-cert", "", "client certificate file")
	fs.StringVar(&cfg.TLS.Key, "tls-key", "", "client key file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipeline events [--url nats://host:4222] [--pipeline P] [--stream S] [--type T] [--json] [--count N]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pipeline events: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	nc, err := natsink.Dial(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "pipeline events: %v\n", err)
		return 1
	}
	defer nc.Close()

	if detections {
		typ = "detections"
	}
	subject := natsink.FilterSubject(cfg.SubjectPrefix, pipeline, stream, typ)
	msgs := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(subject, msgs)
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		fmt.Fprintf(stderr, "pipeline events: subscribe to %s: %v\n", subject, err)
		return 1
	}
	defer sub.Unsubscribe()
	fmt.Fprintf(stderr, "pipeline events: listening on %s at %s\n", subject, nc.ConnectedUrlRedacted())

	invalid, seen := 0, 0
	for {
		select {
		case <-ctx.Done():
			return exitInvalid(invalid)
		case m := <-msgs:
			if detections {
				fmt.Fprintf(stdout, "%s %s\n", m.Subject, m.Data)
			} else if e, err := natsink.DecodeEvent(m.Data); err != nil {
				invalid++
				fmt.Fprintf(stderr, "pipeline events: invalid event on %s: %v\n", m.Subject, err)
			} else if asJSON {
				fmt.Fprintf(stdout, "%s\n", m.Data)
			} else {
				fmt.Fprintln(stdout, natsink.FormatEvent(e))
			}
			seen++
			if count > 0 && seen >= count {
				return exitInvalid(invalid)
			}
		}
	}
}

// exitInvalid makes a run that printed invalid events fail, so scripts notice.
func exitInvalid(invalid int) int {
	if invalid > 0 {
		return 1
	}
	return 0
}
