package natsink

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/event"
)

// FuzzDecodeEvent feeds mutated event bodies to DecodeEvent, the decoder
// behind `pipeline events`: no panic, a lowercase natsink error for bad input,
// and a body it accepts must re-encode and decode to the same event.
func FuzzDecodeEvent(f *testing.F) {
	e := event.New(event.TrackStarted, "lobby", "door-cam")
	e.Time = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	if b, err := json.Marshal(e); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"schema":1,"type":"line.crossed"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeEvent(body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "natsink: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatalf("accepted event does not re-encode: %v", err)
		}
		if _, err := DecodeEvent(again); err != nil {
			t.Fatalf("accepted %q, but its re-encoding %q is rejected: %v", body, again, err)
		}
	})
}
