package natsink

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/object"
	"github.com/osprey-vision/osprey/stages"
)

func TestMemQueueDropsOldestAndCounts(t *testing.T) {
	q := newMemQueue(1000)
	for i := range 100 {
		if _, err := q.Append(fmt.Appendf(nil, "record-%03d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i)); err != nil {
			t.Fatal(err)
		}
	}
	rs, _ := q.Read(1000)
	if uint64(len(rs))+q.DroppedTotal() != 100 || q.DroppedTotal() == 0 {
		t.Fatalf("kept %d, dropped %d of 100", len(rs), q.DroppedTotal())
	}
	if want := fmt.Sprintf("record-%03d", q.DroppedTotal()); string(rs[0].Data[:10]) != want {
		t.Fatalf("oldest kept %q, want %s", rs[0].Data[:10], want)
	}
	q.Ack(rs[9].Seq)
	q.Rewind()
	if again, _ := q.Read(1000); len(again) != len(rs)-10 || again[0].Seq != rs[10].Seq {
		t.Fatalf("after ack+rewind read %d starting %d", len(again), again[0].Seq)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []record{
		{subject: "osprey.p.s.line.crossed", id: "01M8DF1PQJ3MJJJK3Y46CDGRNS", body: []byte(`{"a":1}`)},
		{subject: "s", id: "i", snapKey: "i.jpg", body: []byte(`{}`), jpeg: []byte("\xff\xd8\n\n12\n\xff\xd9")},
	} {
		got, err := decodeRecord(encodeRecord(r))
		if err != nil || got.subject != r.subject || got.id != r.id || got.snapKey != r.snapKey ||
			string(got.body) != string(r.body) || string(got.jpeg) != string(r.jpeg) {
			t.Fatalf("round trip of %+v gave %+v, %v", r, got, err)
		}
	}
	for _, bad := range []string{"", "a\nb\nc\n", "a\nb\nc\n99\n{}", "a\nb\nc\n-1\n"} {
		if _, err := decodeRecord([]byte(bad)); err == nil {
			t.Fatalf("decodeRecord(%q) accepted a malformed record", bad)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(record{subject: "s", id: "i", body: []byte("{}")}))
	f.Add([]byte("a\nb\nc\n3\n{}x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord(data)
		if err == nil && string(encodeRecord(r)) != string(data) && len(r.body) > 0 {
			// Re-encoding may normalise the length field ("03" -> "3") only.
			if _, err := decodeRecord(encodeRecord(r)); err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
		}
	})
}

func TestCloseIsBoundedWhileDown(t *testing.T) {
	// Server gone: Close gives up after close_timeout and the events stay spooled.
	url := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	dir := t.TempDir()
	s, err := New(Config{URL: url, Pipeline: "p", CloseTimeout: 300 * time.Millisecond, Spool: SpoolConfig{Dir: dir}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		s.Write(context.Background(), frameWith("s", sampleEvent(event.SourceUp, "p", "s", i)))
	}
	start := time.Now()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("close took %v with close_timeout 300ms", took)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Write(context.Background(), frameWith("s")); err != ErrClosed {
		t.Fatalf("write after close: %v", err)
	}
	s2, err := New(Config{URL: url, Pipeline: "p", Spool: SpoolConfig{Dir: dir}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(context.Background())
	if p := s2.Stats().Pending; p != 5 {
		t.Fatalf("after restart %d events pending, want the 5 not delivered", p)
	}
}

func TestDetections(t *testing.T) {
	srv := runServer(t, nil)
	s := newSink(t, Config{URL: srv.ClientURL(), Pipeline: "lobby", Detections: true})
	if s.EventsOnly() {
		t.Fatal("with detections on the sink must get every frame")
	}
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	sub, _ := nc.SubscribeSync("osprey.lobby.*.detections")
	nc.Flush()
	f := &stages.Frame{Stream: "door-cam", Seq: 7, Width: 800, Height: 600, Inferred: true,
		Detections: []infer.Detection{{Label: "person", Confidence: 0.8, Box: geom.Rect{X: 400, Y: 300, W: 80, H: 60}}},
		// A track with a secondary model's answers (a face inside) and one without.
		Tracks: []object.Track{
			{ID: 3, Label: "person", Box: geom.Rect{X: 400, Y: 300, W: 80, H: 60},
				Attributes: []object.Attribute{{Name: "colour", Value: "red", Confidence: 0.9}},
				Children:   []object.Detection{{Label: "face", Confidence: 0.7, Box: geom.Rect{X: 400, Y: 300, W: 8, H: 6}}}},
			{ID: 4, Label: "person", Box: geom.Rect{X: 0, Y: 0, W: 80, H: 60}},
		}}
	if err := s.Write(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var d Detections
	if err := jsonUnmarshal(m.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.FrameSeq != 7 || len(d.Detections) != 1 || d.Detections[0].Box != (geom.Rect{X: 0.5, Y: 0.5, W: 0.1, H: 0.1}) {
		t.Fatalf("detections message %s", m.Data)
	}
	if len(d.Tracks) != 1 || d.Tracks[0].ID != 3 || d.Tracks[0].Attributes[0].Value != "red" ||
		len(d.Tracks[0].Children) != 1 || d.Tracks[0].Children[0].Box != (geom.Rect{X: 0.5, Y: 0.5, W: 0.01, H: 0.01}) {
		t.Fatalf("track answers in %s", m.Data)
	}
	if st := s.Stats(); st.DetectionsPublished != 1 || st.Published != 0 {
		t.Fatalf("stats %+v", st)
	}
}

var jsonUnmarshal = json.Unmarshal
