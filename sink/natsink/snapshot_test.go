package natsink

import (
	"bytes"
	"context"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

const testVideo = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// TestSnapshots stores a cropped JPEG of a real video frame for a
// track.started event and none for source.up, and checks the event points
// at an object that decodes to the crop.
func TestSnapshots(t *testing.T) {
	realpart.File(t, realpart.SampleVideo, testVideo)
	startMats, counted := matcheck.Count()
	cap, err := gocv.VideoCaptureFile(testVideo)
	if err != nil {
		t.Fatalf("open %s: %v", testVideo, err)
	}
	img := gocv.NewMat()
	if !cap.Read(&img) || img.Empty() {
		cap.Close()
		img.Close()
		t.Fatalf("read a frame from %s", testVideo)
	}
	cap.Close()
	f := stages.NewFrame("door-cam", 1, picture.New(img)) // 768x576

	srv := runServer(t, nil)
	s := newSink(t, Config{URL: srv.ClientURL(), Pipeline: "lobby",
		JetStream: &JetStreamConfig{Stream: "SNAP", Create: true},
		Snapshots: &SnapshotConfig{Crop: true, Types: []string{"track.started"}}})
	started := sampleEvent(event.TrackStarted, "lobby", "door-cam", 0)
	started.Box = &geom.Rect{X: 0.25, Y: 0.25, W: 0.25, H: 0.5} // 192x288 px, 269x403 with margins
	up := sampleEvent(event.SourceUp, "lobby", "door-cam", 0)
	f.Events = append(f.Events, started, up)
	if err := s.Write(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	f.Release()
	if n, _ := matcheck.Count(); counted && n != startMats {
		t.Fatalf("Mat count %d, want %d: a Mat leaked", n, startMats)
	}
	waitFor(t, 5*time.Second, "events acknowledged", func() bool { return s.Stats().Pending == 0 })
	if st := s.Stats(); st.SnapshotsStored != 1 || st.SnapshotsSkipped != 0 {
		t.Fatalf("stats %+v", st)
	}

	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	st, _ := js.Stream(ctx, "SNAP")
	var snapRef string
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		validate(t, m.Data)
		e, _ := DecodeEvent(m.Data)
		switch e.Type {
		case event.TrackStarted:
			snapRef = e.Snapshot
		case event.SourceUp:
			if e.Snapshot != "" {
				t.Fatalf("source.up got a snapshot %q", e.Snapshot)
			}
		}
	}
	bucket, key, ok := strings.Cut(snapRef, "/")
	if !ok || bucket != "OSPREY_SNAPSHOTS" || key != started.ID+".jpg" {
		t.Fatalf("snapshot reference %q", snapRef)
	}
	obs, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	data, err := obs.GetBytes(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	pic, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("snapshot is not a JPEG: %v", err)
	}
	if b := pic.Bounds(); b.Dx() < 260 || b.Dx() > 280 || b.Dy() < 395 || b.Dy() > 410 {
		t.Fatalf("snapshot is %dx%d, want the crop of about 269x403", b.Dx(), b.Dy())
	}
}

// A frame whose image the runner already released gets no snapshot, and the
// event still goes out.
func TestSnapshotWithoutImage(t *testing.T) {
	srv := runServer(t, nil)
	s := newSink(t, Config{URL: srv.ClientURL(), Pipeline: "lobby",
		JetStream: &JetStreamConfig{Stream: "SNAP2", Create: true}, Snapshots: &SnapshotConfig{}})
	if err := s.Write(context.Background(), frameWith("cam", sampleEvent(event.LineCrossed, "lobby", "cam", 1))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "event acknowledged", func() bool { return s.Stats().Published == 1 })
	if st := s.Stats(); st.SnapshotsSkipped != 1 || st.SnapshotsStored != 0 {
		t.Fatalf("stats %+v", st)
	}
}
