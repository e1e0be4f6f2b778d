package natsink

import (
	"strings"
	"testing"

	"github.com/osprey-vision/osprey/event"
)

func TestFilterSubject(t *testing.T) {
	tests := []struct{ prefix, pipeline, stream, typ, want string }{
		{"", "", "", "", "osprey.*.*.*.*"},
		{"osprey", "lobby", "", "", "osprey.lobby.*.*.*"},
		{"osprey", "lobby", "door cam", "line.crossed", "osprey.lobby.door_cam.line.crossed"},
		{"site.a", "", "cam", "zone", "site.a.*.cam.zone.*"},
		{"osprey", "lobby", "", "detections", "osprey.lobby.*.detections"},
	}
	for _, tt := range tests {
		if got := FilterSubject(tt.prefix, tt.pipeline, tt.stream, tt.typ); got != tt.want {
			t.Errorf("FilterSubject(%q,%q,%q,%q) = %q, want %q", tt.prefix, tt.pipeline, tt.stream, tt.typ, got, tt.want)
		}
	}
}

func TestDecodeEventRejectsInvalid(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"not json", `{`, "natsink: event: not JSON"},
		{"line.crossed without line", `{"schema":1,"id":"01M8DF1PQJ3MJJJK3Y46CDGRNS","type":"line.crossed","pipeline":"p","stream":"s","time":"2026-11-27T02:58:42Z","track_id":1,"direction":"in","count":1}`, "missing property 'line'"},
		{"unknown field", `{"schema":1,"id":"01M8DF1PQJ3MJJJK3Y46CDGRNS","type":"source.up","pipeline":"p","stream":"s","time":"2026-11-27T02:58:42Z","extra":1}`, "additional properties 'extra' not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEvent([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	e := sampleEvent(event.LineCrossed, "p", "s", 3)
	if got := FormatEvent(e); !strings.Contains(got, "p/s line.crossed track=4 line=gate in count=3") {
		t.Fatalf("FormatEvent = %q", got)
	}
}
