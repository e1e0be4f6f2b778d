package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/osprey-vision/osprey/app"
	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/stages"
)

// vtestPath is the busy camera: pedestrians, 768x576 at 10 fps (opencv-doc).
const vtestPath = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// cameraBench is one `pipeline bench cameras` invocation.
type cameraBench struct {
	Model    string        `json:"model"`
	Budget   time.Duration `json:"budget_ns"`
	Duration time.Duration `json:"duration_ns"`
	Workers  int           `json:"workers"`
	Busy     int           `json:"busy"`
	Idle     string        `json:"idle_clip"`
	Cores    int           `json:"cores"`
	// DecodeCorePerCamera is the floor: CPU cores one idle camera costs to
	// decode alone, paced at its rate.
	DecodeCorePerCamera float64     `json:"decode_core_per_camera"`
	Runs                []benchRun  `json:"runs"`
	Held                []heldCount `json:"held"`
}

// benchRun is one live run of busy and idle cameras, gated or not.
type benchRun struct {
	Gated bool `json:"gated"`
	Busy  int  `json:"busy"`
	Idle  int  `json:"idle"`
	// Cores is process CPU time over wall time.
	Cores float64 `json:"cores"`
	// Held is true when every camera's e2e p99 is within the budget and it
	// lost at most 5% of its frames.
	Held    bool          `json:"held"`
	Streams []benchStream `json:"streams"`
	// Calibrating is, for the idle cameras together, the full-frame runs
	// the abrupt light change (and the start) cost: calibrating decisions.
	Calibrating uint64 `json:"calibrating_runs"`
}

// benchStream is one camera of a run.
type benchStream struct {
	ID       string            `json:"id"`
	Kind     string            `json:"kind"` // busy or idle
	In       uint64            `json:"frames_in"`
	Out      uint64            `json:"frames_out"`
	Runs     uint64            `json:"detector_runs"`
	RunsPerS float64           `json:"detector_runs_per_s"`
	P99      float64           `json:"e2e_p99_ms"`
	Drops    map[string]uint64 `json:"drops"`
	// Events are track.started, zone.entered and line.crossed events after
	// the first quarter of the run.
	Events    int     `json:"events"`
	Held      bool    `json:"held"`
	DropShare float64 `json:"drop_share"`
}

// heldCount is the search result: the most idle cameras held next to the
// busy ones.
type heldCount struct {
	Gated bool `json:"gated"`
	Idle  int  `json:"max_idle_held"`
}

// cmdBenchCameras measures how many cameras one box holds within the latency
// budget, gated and ungated, in one run of the command (issue 13):
// busy cameras are vtest.avi, idle ones a still scene made from it with
// ffmpeg (sensor noise, a slow brightness drift and one abrupt light change).
func cmdBenchCameras(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("bench cameras", flag.ContinueOnError)
	model := fs.String("model", "models/ssd_mobilenet_v2_coco.onnx", "detector model (COCO SSD format)")
	budget := fs.Duration("budget", 500*time.Millisecond, "latency budget per frame")
	duration := fs.Duration("duration", 30*time.Second, "length of each live run")
	busy := fs.Int("busy", 2, "busy cameras (vtest.avi) in the mixed runs")
	idleList := fs.String("idle", "4", "comma-separated idle camera counts to run next to the busy ones, or 'search' to find the most held")
	maxIdle := fs.Int("max-idle", 64, "upper bound for -idle search")
	workers := fs.Int("workers", 2, "detector sessions (one thread each)")
	dir := fs.String("dir", "out/bench-cameras", "where the generated idle clip is kept between runs")
	jsonOut := fs.Bool("json", false, "print the results as JSON")
	jsonFile := fs.String("json-out", "", "also write the results as JSON to this file")
	logLevel := fs.String("log-level", "error", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pipeline bench cameras [flags]   (docs/motion.md, \"Cameras per box\")")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline bench cameras:", err)
		return 2
	}
	var counts []int
	search := *idleList == "search"
	if !search {
		for _, f := range strings.Split(*idleList, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 0 {
				fmt.Fprintf(os.Stderr, "pipeline bench cameras: -idle %q: give counts like 4,8 or 'search'\n", *idleList)
				return 2
			}
			counts = append(counts, n)
		}
	}
	if _, err := os.Stat(*model); err != nil {
		fmt.Fprintf(os.Stderr, "pipeline bench cameras: model %s: %v: run scripts/setup.sh, or pass -model\n", *model, err)
		return 1
	}
	if _, err := os.Stat(vtestPath); err != nil {
		fmt.Fprintf(os.Stderr, "pipeline bench cameras: %s: %v: install opencv-doc (scripts/setup.sh)\n", vtestPath, err)
		return 1
	}
	idle, err := makeIdleClip(*dir, *duration)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline bench cameras:", err)
		return 1
	}
	b := &cameraBench{Model: *model, Budget: *budget, Duration: *duration, Workers: *workers, Busy: *busy, Idle: idle, Cores: runtime.NumCPU()}
	if b.DecodeCorePerCamera, err = decodeCost(ctx, idle, 4, *duration/2); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline bench cameras: decode floor:", err)
		return 1
	}
	run := func(gated bool, nbusy, nidle int) (benchRun, error) {
		r, err := b.run(ctx, gated, nbusy, nidle, log)
		if err == nil {
			b.Runs = append(b.Runs, r)
			fmt.Fprintf(os.Stderr, "  %s busy %d idle %d: %.2f cores, held %v\n", gatedWord(gated), nbusy, nidle, r.Cores, r.Held)
		}
		return r, err
	}
	for _, gated := range []bool{false, true} {
		// Per-camera CPU: idle alone and busy alone.
		if _, err := run(gated, 0, 4); err != nil {
			return benchFailed(err)
		}
		if *busy > 0 {
			if _, err := run(gated, *busy, 0); err != nil {
				return benchFailed(err)
			}
		}
		if search {
			n, err := b.search(run, gated, *busy, *maxIdle)
			if err != nil {
				return benchFailed(err)
			}
			b.Held = append(b.Held, heldCount{Gated: gated, Idle: n})
			continue
		}
		for _, n := range counts {
			if *busy+n == 0 {
				continue
			}
			if _, err := run(gated, *busy, n); err != nil {
				return benchFailed(err)
			}
		}
	}
	if *jsonFile != "" {
		js, _ := json.MarshalIndent(b, "", "  ")
		if err := os.WriteFile(*jsonFile, js, 0o644); err != nil {
			return benchFailed(err)
		}
	}
	return report(*jsonOut, b, b.print)
}

func benchFailed(err error) int {
	fmt.Fprintln(os.Stderr, "pipeline bench cameras:", err)
	return 1
}

func gatedWord(g bool) string {
	if g {
		return "gated"
	}
	return "ungated"
}

// search finds the most idle cameras held next to busy ones: doubling until
// a run is not held, then bisecting.
func (b *cameraBench) search(run func(bool, int, int) (benchRun, error), gated bool, busy, maxIdle int) (int, error) {
	lo, hi := 0, 0 // lo held (0 is assumed held), hi not held
	for n := 2; ; n *= 2 {
		n = min(n, maxIdle)
		r, err := run(gated, busy, n)
		if err != nil {
			return 0, err
		}
		if !r.Held {
			hi = n
			break
		}
		lo = n
		if n == maxIdle {
			return n, nil
		}
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		r, err := run(gated, busy, mid)
		if err != nil {
			return 0, err
		}
		if r.Held {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// run is one live run of nbusy vtest cameras and nidle idle ones.
func (b *cameraBench) run(ctx context.Context, gated bool, nbusy, nidle int, log *slog.Logger) (benchRun, error) {
	var y strings.Builder
	fmt.Fprintf(&y, "name: cameras\nmode: live\nlatency_budget: %s\nstreams:\n", b.Budget)
	kind := map[string]string{}
	for i := range nbusy {
		id := fmt.Sprintf("busy%d", i+1)
		kind[id] = "busy"
		fmt.Fprintf(&y, "  - {id: %s, url: \"file://%s\", loop: true, realtime: true}\n", id, vtestPath)
	}
	for i := range nidle {
		id := fmt.Sprintf("idle%d", i+1)
		kind[id] = "idle"
		fmt.Fprintf(&y, "  - {id: %s, url: \"file://%s\", loop: true, realtime: true}\n", id, b.Idle)
	}
	fmt.Fprintf(&y, "model: {path: %s, format: ssd, labels: coco, threads: 1}\n", b.Model)
	fmt.Fprintf(&y, "detect: {confidence: 0.5, classes: [person, car], workers: %d}\n", b.Workers)
	fmt.Fprintf(&y, "motion: {enabled: %v}\n", gated)
	cfg, err := config.Parse("bench-cameras.yaml", []byte(y.String()), components.Builtin())
	if err != nil {
		return benchRun{}, err
	}
	events := &eventCounter{n: map[string]int{}, after: time.Now().Add(b.Duration / 4), skip: b.Duration / 4}
	a, err := app.New(cfg, log, app.Options{NoSinks: true, ExtraSinks: []stages.SinkSpec{{Name: "count", Sink: events}}})
	if err != nil {
		return benchRun{}, err
	}
	runCtx, cancel := context.WithTimeout(ctx, b.Duration)
	defer cancel()
	cpu0, t0 := processCPU(), time.Now()
	if err := a.Run(runCtx); err != nil {
		return benchRun{}, err
	}
	wall := time.Since(t0)
	r := benchRun{Gated: gated, Busy: nbusy, Idle: nidle, Cores: (processCPU() - cpu0).Seconds() / wall.Seconds(), Held: true}
	snap := a.Metrics.Snapshot()
	calib := a.Metrics.CounterBy("osprey_motion_decisions_total", func(l map[string]string) string {
		if l["reason"] == "calibrating" && kind[l["stream"]] == "idle" {
			return "calibrating"
		}
		return ""
	})
	r.Calibrating = calib["calibrating"]
	for _, id := range cfg.StreamIDs() {
		s := snap.Streams[id]
		var lost uint64
		for _, v := range s.Drops {
			lost += v
		}
		bs := benchStream{ID: id, Kind: kind[id], In: s.In, Out: s.Out, Runs: s.Inferences,
			RunsPerS: float64(s.Inferences) / wall.Seconds(), P99: s.E2EP99, Drops: s.Drops, Events: events.n[id]}
		if s.In > 0 {
			bs.DropShare = float64(lost) / float64(s.In)
		}
		bs.Held = s.In > 0 && s.E2EP99 <= float64(b.Budget.Milliseconds()) && bs.DropShare <= 0.05
		r.Held = r.Held && bs.Held
		r.Streams = append(r.Streams, bs)
	}
	return r, nil
}

// eventCounter is an event sink that counts object events per stream after
// the first quarter of the run (the start's detections are real: people
// stand in the idle scene), to check the light change raises none. The
// quarter is of each camera's own video (Frame.Media), so a slow start
// (models loading on a busy box) does not push the start's events past it.
type eventCounter struct {
	n     map[string]int
	after time.Time
	// skip is the quarter, on the video's clock.
	skip time.Duration
}

func (*eventCounter) Connect(context.Context) error { return nil }
func (*eventCounter) Close(context.Context) error   { return nil }
func (*eventCounter) EventsOnly() bool              { return true }
func (c *eventCounter) Write(_ context.Context, f *stages.Frame) error {
	if !f.Media.IsZero() {
		if f.Media.Sub(time.Unix(0, 0)) < c.skip {
			return nil
		}
	} else if f.Captured.Before(c.after) {
		return nil
	}
	for _, e := range f.Events {
		if e.Type == "track.started" || e.Type == "zone.entered" || e.Type == "line.crossed" {
			c.n[f.Stream]++
		}
	}
	return nil
}

// processCPU is the process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// decodeCost is the decode-only floor: n idle cameras read at their rate by
// the real capture source, no stage behind them, CPU cores per camera.
func decodeCost(ctx context.Context, clip string, n int, d time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	errs := make(chan error, n)
	cpu0, t0 := processCPU(), time.Now()
	for i := range n {
		go func() {
			src, err := capture.New(capture.Config{ID: fmt.Sprintf("idle%d", i), URL: "file://" + clip, Loop: true, Realtime: true}, nil, nil)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = src.Close(context.Background()) }()
			if err := src.Connect(ctx); err != nil {
				errs <- err
				return
			}
			for {
				f, err := src.Read(ctx)
				if err != nil {
					errs <- nil
					return
				}
				f.Release()
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil && ctx.Err() == nil {
			return 0, err
		}
	}
	return (processCPU() - cpu0).Seconds() / time.Since(t0).Seconds() / float64(n), nil
}

// makeIdleClip makes (once) the idle camera: vtest.avi's first frame held
// still, with temporal sensor noise, a slow brightness drift and one abrupt
// light change halfway, H.264 at 10 fps like a real camera's stream.
func makeIdleClip(dir string, d time.Duration) (string, error) {
	secs := max(int(d.Seconds()), 10)
	out := filepath.Join(dir, fmt.Sprintf("idle-%ds.mp4", secs))
	if _, err := os.Stat(out); err == nil {
		return filepath.Abs(out)
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return "", fmt.Errorf("ffmpeg not found: it makes the idle camera clip; run scripts/setup.sh")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	frames := secs * 10
	half := secs / 2
	// drift: +-6 grey levels over the clip; the light change: +0.25
	// brightness from halfway on.
	vf := fmt.Sprintf("select=eq(n\\,0),loop=loop=%d:size=1,setpts=N/10/TB,noise=alls=6:allf=t,"+
		"eq=brightness='0.025*sin(2*PI*t/%d)+if(gte(t\\,%d)\\,0.25\\,0)':eval=frame", frames, secs, half)
	tmp := out + ".tmp.mp4"
	cmd := exec.Command(ffmpeg, "-v", "error", "-y", "-i", vtestPath, "-vf", vf, "-frames:v", strconv.Itoa(frames),
		"-r", "10", "-c:v", "libx264", "-preset", "veryfast", "-g", "20", "-pix_fmt", "yuv420p", tmp)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("ffmpeg idle clip: %v: %s", err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return filepath.Abs(out)
}

func (b *cameraBench) print(w io.Writer) {
	fmt.Fprintf(w, "cameras per box: %s, budget %s, %d detector workers, %d-s runs, %d cores\n", b.Model, b.Budget, b.Workers, int(b.Duration.Seconds()), b.Cores)
	fmt.Fprintf(w, "decode floor: %.3f cores per idle camera (decode alone)\n\n", b.DecodeCorePerCamera)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "gating\tbusy\tidle\tcores\tcores/idle cam\tidle runs/cam-s\tbusy runs/cam-s\tworst p99 ms\tworst drop share\tidle events\tcalibrating runs\theld")
	for _, r := range b.Runs {
		var idleRuns, busyRuns, p99, drop float64
		var nIdle, nBusy, idleEvents int
		for _, s := range r.Streams {
			p99, drop = max(p99, s.P99), max(drop, s.DropShare)
			if s.Kind == "idle" {
				idleRuns += s.RunsPerS
				nIdle++
				idleEvents += s.Events
			} else {
				busyRuns += s.RunsPerS
				nBusy++
			}
		}
		perIdle := "-"
		if r.Busy == 0 && nIdle > 0 {
			perIdle = fmt.Sprintf("%.3f (%.1fx decode)", r.Cores/float64(nIdle), r.Cores/float64(nIdle)/b.DecodeCorePerCamera)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%s\t%s\t%s\t%.0f\t%.3f\t%d\t%d\t%v\n", gatedWord(r.Gated), r.Busy, r.Idle, r.Cores, perIdle,
			perCam(idleRuns, nIdle), perCam(busyRuns, nBusy), p99, drop, idleEvents, r.Calibrating, r.Held)
	}
	_ = tw.Flush()
	for _, h := range b.Held {
		fmt.Fprintf(w, "%s: at most %d idle cameras held next to %d busy ones\n", gatedWord(h.Gated), h.Idle, b.Busy)
	}
	if b.DecodeCorePerCamera > 0 {
		fmt.Fprintf(w, "decode-only limit: %.0f idle cameras (cores / decode floor)\n", float64(b.Cores)/b.DecodeCorePerCamera)
	}
}

func perCam(total float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", total/float64(n))
}
