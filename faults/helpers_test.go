//go:build faults

package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/app"
	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/internal/modroot"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/rtsptest"
	"github.com/osprey-vision/osprey/internal/syncbuf"
	"github.com/osprey-vision/osprey/stages"
)

const (
	vtest    = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
	megabugy = "/usr/share/doc/opencv-doc/examples/data/Megamind_bugy.avi"
)

var scaleFlag = flag.Float64("scale", 0, "stretch every fault phase this many times (default $OSPREY_FAULT_SCALE or 1)")

// scale returns the duration multiplier for fault phases.
func scale() float64 {
	if *scaleFlag > 0 {
		return *scaleFlag
	}
	if v, err := strconv.ParseFloat(os.Getenv("OSPREY_FAULT_SCALE"), 64); err == nil && v > 0 {
		return v
	}
	return 1
}

// phase scales d.
func phase(d time.Duration) time.Duration { return time.Duration(float64(d) * scale()) }

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := modroot.FromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// modelYAML is the model block every suite pipeline uses: the real SSD.
func modelYAML(t testing.TB) string {
	p := filepath.Join(repoRoot(t), "models/ssd_mobilenet_v2_coco.onnx")
	realpart.File(t, realpart.SSDModel, p)
	return fmt.Sprintf("model: { path: %s, format: ssd, labels: coco, providers: [cpu], threads: 1 }\ndetect: { confidence: 0.4, classes: [person], every: 2 }\n", p)
}

// writeYAML writes a pipeline file into a temp dir and returns its path.
func writeYAML(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fault.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// frameLog records when each stream's frames reached the end of the pipeline.
type frameLog struct {
	mu    sync.Mutex
	times map[string][]time.Time
	block chan struct{} // non-nil: Write blocks until it is closed or ctx ends
}

func newFrameLog() *frameLog { return &frameLog{times: map[string][]time.Time{}} }

func (s *frameLog) Connect(context.Context) error { return nil }
func (s *frameLog) Close(context.Context) error   { return nil }
func (s *frameLog) Write(ctx context.Context, f *stages.Frame) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	s.times[f.Stream] = append(s.times[f.Stream], time.Now())
	s.mu.Unlock()
	return nil
}

func (s *frameLog) count(stream string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.times[stream])
}

// fps is the stream's frame rate at the sink between from and to.
func (s *frameLog) fps(stream string, from, to time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, at := range s.times[stream] {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return float64(n) / to.Sub(from).Seconds()
}

// running is a pipeline running in the background.
type running struct {
	app  *app.App
	log  *syncbuf.Buffer
	sink *frameLog
	err  error
	done chan struct{}
	stop context.CancelFunc
}

// run starts a in the background and, at cleanup, stops it (failing the
// test if it takes over 30 s) and prints its log if the test failed.
func (r *running) run(t *testing.T, a *app.App) {
	t.Helper()
	r.app = a
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { r.err = a.Run(ctx); close(r.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Errorf("pipeline did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("pipeline log:\n%s", tail(r.log.String(), 60))
		}
	})
}

// start builds the pipeline file at path with the frame log as an extra
// sink and runs it until the test ends (or wait is called).
func start(t *testing.T, path string, sink *frameLog) *running {
	t.Helper()
	cfg, err := config.Load(path, components.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	r := &running{log: &syncbuf.Buffer{}, sink: sink, done: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var extra []stages.SinkSpec
	if sink != nil {
		extra = append(extra, stages.SinkSpec{Name: "framelog", Sink: sink, In: stages.Link{Size: 1, Policy: stages.Latest}})
	}
	a, err := app.New(cfg, log, app.Options{ExtraSinks: extra})
	if err != nil {
		t.Fatal(err)
	}
	r.run(t, a)
	return r
}

// wait stops the pipeline and returns Run's error and how long it took.
func (r *running) wait(t *testing.T, limit time.Duration) (time.Duration, error) {
	t.Helper()
	t0 := time.Now()
	r.stop()
	select {
	case <-r.done:
		return time.Since(t0), r.err
	case <-time.After(limit):
		t.Fatalf("pipeline did not stop within %s", limit)
		return 0, nil
	}
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	for !cond() {
		if time.Since(t0) > d {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(t0)
}

// jsonlEvent is the part of an event line the suite checks.
type jsonlEvent struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Stream string `json:"stream"`
	Reason string `json:"reason"`
	Time   string `json:"time"`
}

// readEvents parses a JSONL events file; a line that does not parse fails.
func readEvents(t *testing.T, path string) []jsonlEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var out []jsonlEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e jsonlEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: line does not parse: %v: %q", path, err, sc.Text())
		}
		out = append(out, e)
	}
	return out
}

func countEvents(evs []jsonlEvent, typ, stream string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ && (stream == "" || e.Stream == stream) {
			n++
		}
	}
	return n
}

// scrapeSourceUp reads osprey_source_up{stream} from /metrics (-1: absent).
func scrapeSourceUp(addr net.Addr, stream string) float64 {
	res, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	prefix := `osprey_source_up{stream="` + stream + `"} `
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// upWatch polls osprey_source_up for a stream and records each change.
type upWatch struct {
	mu     sync.Mutex
	values []float64
}

func watchSourceUp(t *testing.T, addr net.Addr, stream string) *upWatch {
	w := &upWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			v := scrapeSourceUp(addr, stream)
			w.mu.Lock()
			if v >= 0 && (len(w.values) == 0 || w.values[len(w.values)-1] != v) {
				w.values = append(w.values, v)
			}
			w.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return w
}

func (w *upWatch) seq() []float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]float64(nil), w.values...)
}

func freePort(t testing.TB) int { return rtsptest.FreePort(t) }

// startRTSP starts scripts/rtsp-server.py serving vtest.avi on port.
func startRTSP(t *testing.T, port int) *rtsptest.Server { return rtsptest.Start(t, port, vtest) }

// multi is a pipeline run with several frame-log sinks.
type multi struct {
	*running
	sinks []*frameLog
}

// startWith is start with several frame sinks (each behind its own latest
// queue of one frame).
func startWith(t *testing.T, path string, sinks ...*frameLog) *multi {
	t.Helper()
	cfg, err := config.Load(path, components.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	r := &running{log: &syncbuf.Buffer{}, done: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(r.log, nil))
	var extra []stages.SinkSpec
	for i, s := range sinks {
		extra = append(extra, stages.SinkSpec{Name: fmt.Sprintf("framelog%d", i), Sink: s, In: stages.Link{Size: 1, Policy: stages.Latest}})
	}
	a, err := app.New(cfg, log, app.Options{ExtraSinks: extra})
	if err != nil {
		t.Fatal(err)
	}
	r.run(t, a)
	return &multi{running: r, sinks: sinks}
}

func errDrainTimeout() error { return stages.ErrDrainTimeout }

func newLogger(w *syncbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}
