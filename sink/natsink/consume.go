package natsink

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/osprey-vision/osprey/event"
)

// This file is the consumer side: what `pipeline events` and
// examples/consumer use to connect, subscribe and check events.

// Dial connects a consumer with cfg's URL (default nats://127.0.0.1:4222, the
// embedded server's default), credentials and TLS. Unlike the sink it does
// not retry at start: any failure is returned, naming the redacted URL.
// Only the connection fields of cfg are used; Pipeline may be empty.
func Dial(cfg Config, opts ...nats.Option) (*nats.Conn, error) {
	if cfg.Pipeline == "" {
		cfg.Pipeline = "consumer"
	}
	if cfg.URL == "" {
		cfg.URL = "nats://127.0.0.1:4222"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	base, err := clientOptions(cfg)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(cfg.URL, append(base, opts...)...)
	if err != nil {
		hint := "is a pipeline with an embedded server running, or is the url right?"
		if !transient(err) {
			hint = "check the credentials and tls settings"
		}
		return nil, fmt.Errorf("natsink: connect to %s: %w: %s", redact(cfg.URL), err, hint)
	}
	return nc, nil
}

// FilterSubject returns the subscription subject for events of one pipeline,
// stream and type; an empty part matches any. typ may be a full type
// ("line.crossed") or its first token ("zone" matches every zone.* event);
// "detections" selects the per-frame detection messages.
func FilterSubject(prefix, pipeline, stream, typ string) string {
	tok := func(s string) string {
		if s == "" {
			return "*"
		}
		return event.SubjectToken(s)
	}
	if prefix == "" {
		prefix = "osprey"
	}
	t := "*.*"
	switch {
	case typ == "" || typ == "*":
	case typ == "detections":
		t = typ
	case strings.Contains(typ, "."):
		t = typ
	default:
		t = typ + ".*"
	}
	return strings.Join([]string{prefix, tok(pipeline), tok(stream), t}, ".")
}

// DecodeEvent checks body against event/schema.json and decodes it. The error
// says which rule failed.
func DecodeEvent(body []byte) (event.Event, error) {
	if err := event.Validate(body); err != nil {
		return event.Event{}, fmt.Errorf("natsink: %w", err)
	}
	var e event.Event
	if err := json.Unmarshal(body, &e); err != nil {
		return event.Event{}, fmt.Errorf("natsink: decode event: %w", err)
	}
	return e, nil
}

// FormatEvent renders e as one human-readable line.
func FormatEvent(e event.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s/%s %s", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Pipeline, e.Stream, e.Type)
	if e.TrackID != 0 {
		fmt.Fprintf(&b, " track=%d", e.TrackID)
	}
	if e.Label != "" {
		fmt.Fprintf(&b, " %s", e.Label)
	}
	if e.Confidence != 0 {
		fmt.Fprintf(&b, " %.2f", e.Confidence)
	}
	if e.Zone != "" {
		fmt.Fprintf(&b, " zone=%s", e.Zone)
	}
	if e.Occupancy != nil {
		fmt.Fprintf(&b, " occupancy=%d", *e.Occupancy)
	}
	if e.Line != "" {
		fmt.Fprintf(&b, " line=%s %s count=%d", e.Line, e.Direction, e.Count)
	}
	if e.Dwell != 0 {
		fmt.Fprintf(&b, " dwell=%.1fs", e.Dwell)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", e.Reason)
	}
	if e.Snapshot != "" {
		fmt.Fprintf(&b, " snapshot=%s", e.Snapshot)
	}
	return b.String()
}
