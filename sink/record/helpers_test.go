package record

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/testlog"
	"github.com/osprey-vision/osprey/stages"
)

// emitted collects what the sink emits, as the runner's Emit would deliver it.
type emitted struct {
	mu  sync.Mutex
	evs []event.Event
	ch  chan event.Event
}

func newEmitted() *emitted { return &emitted{ch: make(chan event.Event, 100)} }

func (e *emitted) emit(_ string, evs ...event.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, evs...)
	e.mu.Unlock()
	for _, ev := range evs {
		e.ch <- ev
	}
}

// next waits for the next clip.ready.
func (e *emitted) next(t *testing.T, within time.Duration) event.Event {
	t.Helper()
	select {
	case ev := <-e.ch:
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := event.Validate(b); err != nil {
			t.Fatalf("clip.ready does not match the schema: %v\n%s", err, b)
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no clip.ready within %v", within)
	}
	return event.Event{}
}

// newTestSink builds and connects a sink with test resources.
func newTestSink(t *testing.T, cfg Config, urls map[string]string) (*Sink, *emitted, *prometheus.Registry) {
	t.Helper()
	return newTestSinkLog(t, cfg, urls, testlog.New(t))
}

// newTestSinkLog is newTestSink with the sink's logger.
func newTestSinkLog(t *testing.T, cfg Config, urls map[string]string, log *slog.Logger) (*Sink, *emitted, *prometheus.Registry) {
	t.Helper()
	realpart.Command(t, realpart.FFmpeg, "ffmpeg")
	em := newEmitted()
	reg := prometheus.NewRegistry()
	res := &stages.Resources{Pipeline: "test", Log: log, Metrics: reg, Emit: em.emit,
		StreamURL: func(s string) string { return urls[s] }}
	sk, err := Plugin().Build(&cfg, res)
	if err != nil {
		t.Fatal(err)
	}
	s := sk.(*Sink)
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, em, reg
}

// testConfig is a sink config for fast tests in dir.
func testConfig(dir string) Config {
	c := Defaults()
	c.Dir = dir
	c.Segment = time.Second
	c.PreCapture = time.Second
	c.PostCapture = time.Second
	c.Encode.Queue = 1000
	return c
}

// pattern opens the test:// source (frame k is a pure function of k), read
// as fast as it draws: tests set the capture times themselves.
func pattern(t *testing.T, w, h int) stages.Source {
	t.Helper()
	src, err := capture.New(capture.Config{ID: "cam", URL: fmt.Sprintf("test://?w=%d&h=%d&fps=1000", w, h)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	return src
}

// crossing is a line.crossed event at time at.
func crossing(stream string, at time.Time) event.Event {
	e := event.New(event.LineCrossed, "test", stream)
	e.Time, e.TrackID, e.Label, e.Line, e.Direction, e.Count = at, 7, "person", "gate", "in", 1
	return e
}

// probe is what ffprobe says about a clip.
type probe struct {
	Format struct {
		Duration  string `json:"duration"`
		StartTime string `json:"start_time"`
	} `json:"format"`
	Streams []struct {
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		NbFrames  string `json:"nb_frames"`
	} `json:"streams"`
}

func ffprobe(t *testing.T, path string) (probe, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", p.Format.Duration, err)
	}
	return p, d
}

// checkClip asserts the clip decodes without a single error and is an MP4
// whose moov box comes before mdat (faststart).
func checkClip(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("ffmpeg -v error -f null on the clip: %v: %s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var boxes []string
	for i := 0; i+8 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i:]))
		boxes = append(boxes, string(b[i+4:i+8]))
		if n < 8 {
			break
		}
		i += n
	}
	moov, mdat := -1, -1
	for i, bx := range boxes {
		switch bx {
		case "moov":
			moov = i
		case "mdat":
			mdat = i
		}
	}
	if moov < 0 || mdat < 0 || moov > mdat {
		t.Fatalf("clip boxes %v: want moov before mdat (faststart)", boxes)
	}
}

// firstFrame decodes the clip's first frame.
func firstFrame(t *testing.T, path string) gocv.Mat {
	t.Helper()
	vc, err := gocv.OpenVideoCapture(path)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	if !vc.Read(&m) || m.Empty() {
		m.Close()
		t.Fatalf("cannot decode the first frame of %s", path)
	}
	return m
}

// thumb is a small grey copy of a frame, for finding a decoded frame among
// the frames the source produced.
func thumb(m gocv.Mat) []byte {
	small := gocv.NewMat()
	defer small.Close()
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.Resize(m, &small, image.Pt(64, 48), 0, 0, gocv.InterpolationArea)
	gocv.CvtColor(small, &grey, gocv.ColorBGRToGray)
	return grey.ToBytes()
}

// nearest returns the index of the thumbnail closest to x.
func nearest(x []byte, thumbs [][]byte) int {
	best, bestD := -1, int64(-1)
	for i, th := range thumbs {
		var d int64
		for j := range x {
			v := int64(x[j]) - int64(th[j])
			d += v * v
		}
		if bestD < 0 || d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return math.NaN()
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// waitFor polls cond every 100 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// segments returns how many segments stream has in the buffer.
func segments(s *Sink, stream string) int64 { return s.ring.Usage()[stream][0] }

// clipPath is the clip's absolute path.
func clipPath(cfg Config, e event.Event) string { return filepath.Join(cfg.Dir, e.Clip) }
