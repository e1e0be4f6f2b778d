package natsink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// frameController is a small real Controller: it keeps the latest image per
// stream and encodes it as JPEG on request, like the pipeline does.
type frameController struct {
	mu     sync.Mutex
	frames map[string]image.Image
	counts map[string]int
}

func (c *frameController) Stats() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return map[string]any{"frames": c.counts}
}

func (c *frameController) Streams() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	type state struct {
		ID     string `json:"id"`
		Up     bool   `json:"up"`
		Frames int    `json:"frames"`
	}
	out := []state{}
	for id, n := range c.counts {
		out = append(out, state{ID: id, Up: c.frames[id] != nil, Frames: n})
	}
	return out
}

func (c *frameController) Snapshot(stream string) ([]byte, error) {
	c.mu.Lock()
	img := c.frames[stream]
	c.mu.Unlock()
	if img == nil {
		return nil, fmt.Errorf("pipeline: no frame from stream %q yet", stream)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func TestControl(t *testing.T) {
	srv := runServer(t, nil)
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := range 64 {
		for y := range 48 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 128, 255})
		}
	}
	ctrl := &frameController{frames: map[string]image.Image{"door-cam": img}, counts: map[string]int{"door-cam": 42, "yard": 0}}
	s, err := New(Config{URL: srv.ClientURL(), Pipeline: "lobby"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.SetController(ctrl)
	if err := s.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := func(verb, body string) *nats.Msg {
		t.Helper()
		m, err := nc.Request(ControlSubject("osprey", "lobby", verb), []byte(body), 5*time.Second)
		if err != nil {
			t.Fatalf("%s request: %v", verb, err)
		}
		return m
	}

	var stats struct {
		NATS     Stats `json:"nats"`
		Pipeline struct {
			Frames map[string]int `json:"frames"`
		} `json:"pipeline"`
	}
	if err := json.Unmarshal(req("stats", "").Data, &stats); err != nil {
		t.Fatal(err)
	}
	if !stats.NATS.Connected || stats.Pipeline.Frames["door-cam"] != 42 {
		t.Fatalf("stats reply %+v", stats)
	}

	var streams []struct {
		ID string `json:"id"`
		Up bool   `json:"up"`
	}
	if err := json.Unmarshal(req("streams", "").Data, &streams); err != nil || len(streams) != 2 {
		t.Fatalf("streams reply %v (%v)", streams, err)
	}

	m := req("snapshot", "door-cam")
	if m.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("snapshot content type %q, error %q", m.Header.Get("Content-Type"), m.Header.Get(ErrorHeader))
	}
	got, err := jpeg.Decode(bytes.NewReader(m.Data))
	if err != nil || got.Bounds() != img.Bounds() {
		t.Fatalf("snapshot is not the 64x48 JPEG: %v", err)
	}

	m = req("snapshot", "yard")
	if e := m.Header.Get(ErrorHeader); e != `pipeline: no frame from stream "yard" yet` || len(m.Data) != 0 {
		t.Fatalf("snapshot of a stream without frames: header %q body %d bytes", e, len(m.Data))
	}
	if e := req("snapshot", "").Header.Get(ErrorHeader); e == "" {
		t.Fatal("snapshot without a stream id gave no error")
	}
}
