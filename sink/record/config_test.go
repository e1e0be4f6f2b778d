package record

import (
	"testing"
	"time"

	"github.com/osprey-vision/osprey/event"
)

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
		err  string
	}{
		{"defaults with a dir", func(*Config) {}, ""},
		{"no dir", func(c *Config) { c.Dir = "" }, "dir: required: a directory for the segment buffer and the clips (e.g. /var/lib/osprey/record)"},
		{"short segment", func(c *Config) { c.Segment = 100 * time.Millisecond }, "segment: 100ms is out of range: use 500ms to 1m (2s suits clip cutting)"},
		{"clip of a clip", func(c *Config) { c.Events = []event.Type{event.ClipReady} },
			"events[0]: clip.ready events get no clip: use one of track.started, track.ended, zone.entered, zone.left, zone.loitering, line.crossed"},
		{"unknown event", func(c *Config) { c.Events = []event.Type{"line.crossed", "bogus"} },
			`events[1]: unknown event type "bogus": use one of track.started, track.ended, zone.entered, zone.left, zone.loitering, line.crossed`},
		{"span", func(c *Config) { c.Span = "whole" }, `span: "whole" is unknown: use event or track`},
		{"max_clip", func(c *Config) { c.MaxClip = time.Second }, "max_clip: 1s is out of range: use pre_capture+post_capture (10s) to 1h"},
		{"negative bytes", func(c *Config) { c.Retain.StreamMaxBytes = -1 }, "retain.stream_max_bytes: -1 is negative: use 0 for no limit"},
		{"mode", func(c *Config) { c.Mode = "copy" }, `mode: "copy" is unknown: use auto (copy RTSP H.264/H.265, encode the rest) or encode`},
		{"queue", func(c *Config) { c.Encode.Queue = 0 }, "encode.queue: 0 is out of range: use 1 to 1000 frames"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			c.Dir = "/var/lib/osprey/record"
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestWants(t *testing.T) {
	c := Defaults()
	c.Classes, c.Zones, c.Lines = []string{"person"}, []string{"door"}, []string{"gate"}
	e := func(typ event.Type, label, zone, line string) event.Event {
		return event.Event{Type: typ, Label: label, Zone: zone, Line: line}
	}
	for _, tt := range []struct {
		e    event.Event
		want bool
	}{
		{e(event.LineCrossed, "person", "", "gate"), true},
		{e(event.LineCrossed, "car", "", "gate"), false},
		{e(event.LineCrossed, "person", "", "fence"), false},
		{e(event.ZoneEntered, "person", "door", ""), true},
		{e(event.ZoneEntered, "person", "yard", ""), false},
		{e(event.ZoneLeft, "person", "door", ""), false}, // not in events
		{e(event.ClipReady, "person", "", ""), false},
	} {
		if got := c.wants(tt.e); got != tt.want {
			t.Errorf("wants(%+v) = %v, want %v", tt.e, got, tt.want)
		}
	}
}
