package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/osprey-vision/osprey/analytics"
	"github.com/osprey-vision/osprey/app"
	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/track"
)

// cmdBench runs a pipeline offline on its first stream and compares its
// throughput, in one run, with two baselines on the same frames and threads:
// the bare detector on pre-decoded frames, and a naive sequential loop
// (read -> preprocess -> infer -> track -> write).
func cmdBench(ctx context.Context, args []string) int {
	if len(args) > 0 && args[0] == "cameras" {
		return cmdBenchCameras(ctx, args[1:])
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	frames := fs.Int("frames", 300, "frames to process per stream")
	skipNaive := fs.Bool("no-naive", false, "skip the naive sequential baseline")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	jsonOut := fs.Bool("json", false, "print the results as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the whole bench to this file (go tool pprof)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pipeline bench [flags] pipelines/demo.yaml")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *frames < 1 {
		fs.Usage()
		return 2
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline bench:", err)
		return 2
	}
	cfg, err := loadPipeline(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	offline(cfg)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pipeline bench: -cpuprofile:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "pipeline bench: -cpuprofile:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	res, err := runBench(ctx, cfg, *frames, !*skipNaive, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pipeline bench: %s: %v\n", fs.Arg(0), err)
		return 1
	}
	return report(*jsonOut, res, res.print)
}

// report prints a bench's results as indented JSON or as its text table.
func report(asJSON bool, v any, text func(io.Writer)) int {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return 0
	}
	text(os.Stdout)
	return 0
}

// offline turns a pipeline into an offline run: files read as fast as
// possible, once, every frame processed (block queues, no budget).
func offline(cfg *config.Pipeline) {
	cfg.Mode = config.Offline
	cfg.LatencyBudget = 0
	for _, s := range cfg.Streams {
		if c := captureConfig(s); c != nil {
			c.Loop, c.Realtime = false, false
		}
	}
}

// benchResult is what bench measures.
type benchResult struct {
	Frames       int                   `json:"frames"`
	Streams      int                   `json:"streams"`
	Provider     string                `json:"provider"`
	Threads      int                   `json:"threads"`
	Workers      int                   `json:"workers"`
	NaiveThreads int                   `json:"naive_threads,omitempty"`
	Batch        int                   `json:"batch"`
	PipelineFPS  float64               `json:"pipeline_fps"`
	BareFPS      float64               `json:"bare_inference_fps"`
	NaiveFPS     float64               `json:"naive_fps,omitempty"`
	RatioBare    float64               `json:"ratio_pipeline_bare"`
	RatioNaive   float64               `json:"ratio_pipeline_naive,omitempty"`
	E2EP50ms     float64               `json:"e2e_p50_ms"`
	E2EP99ms     float64               `json:"e2e_p99_ms"`
	Stages       map[string][2]float64 `json:"stages_mean_p99_ms"`
	CPU          *cpuReport            `json:"cpu_per_frame"`
	// Steady is the same accounting over the middle of the run only (see
	// steadyWindow); nil on runs too short to have one.
	Steady     *steadyReport `json:"steady_state,omitempty"`
	stageNames []string
}

func runBench(ctx context.Context, cfg *config.Pipeline, n int, naive bool, lg *slog.Logger) (*benchResult, error) {
	dc, err := detectSection(cfg)
	if err != nil {
		return nil, err
	}
	sc := captureConfig(cfg.Streams[0])
	if sc == nil {
		return nil, fmt.Errorf("bench reads its baselines from streams[0], which is not a capture stream")
	}
	res := &benchResult{Streams: len(cfg.Streams), Threads: dc.Model.Threads, Workers: dc.Detect.Workers, Batch: dc.Detect.Batch, Stages: map[string][2]float64{}}

	// 1. The pipeline, offline, sinks off, counting frames out, with every
	// source and stage call timed on its thread's CPU clock.
	var out atomic.Int64
	meter := newCPUMeter()
	meter.instrument(cfg)
	steady := newSteadyWindow(n*len(cfg.Streams), meter)
	a, err := app.New(cfg, lg, app.Options{MaxFrames: n, NoSinks: true,
		ExtraSinks: []stages.SinkSpec{{Name: "count", Sink: countSink{&out, meter, steady}, In: stages.Link{Size: 8, Policy: stages.Block}}}})
	if err != nil {
		return nil, err
	}
	res.Provider = a.Stats().Provider
	meter.sampleHelpers(true)
	before, err := sampleRun()
	if err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	go meter.sampleEvery(stop)
	err = a.Run(ctx)
	close(stop)
	if err != nil {
		return nil, err
	}
	after, err := meter.totals()
	if err != nil {
		return nil, err
	}
	res.Frames = int(out.Load())
	if res.Frames == 0 {
		return nil, errors.New("the pipeline produced no frames: check the streams")
	}
	res.PipelineFPS = float64(res.Frames) / after.run.at.Sub(before.at).Seconds()
	res.CPU = perFrame(res.Frames, cpuTotals{run: before}, after, res.PipelineFPS)
	if w, ok := steady.result(); ok {
		res.Steady = w
	}
	snap := a.Metrics.Snapshot()
	for _, name := range snap.StageNames() {
		s := snap.Stages[name]
		res.Stages[name] = [2]float64{s.Mean, s.P99}
		res.stageNames = append(res.stageNames, name)
	}
	var e2e []float64
	for _, s := range snap.Streams {
		e2e = append(e2e, s.E2EP50, s.E2EP99)
	}
	if len(e2e) >= 2 {
		res.E2EP50ms, res.E2EP99ms = e2e[0], e2e[1]
	}

	// Baselines run on the first stream's frames with the same model
	// settings: bare inference with the same sessions and threads as the
	// pipeline's detect stage; the naive loop with one session given all of
	// those threads, as a first attempt would.
	icfg := dc.InferConfig(cfg.Resolve)
	var dets []*infer.Detector
	defer func() {
		for _, d := range dets {
			_ = d.Close()
		}
	}()
	for range dc.Detect.Workers {
		d, err := infer.Open(icfg, lg)
		if err != nil {
			return nil, err
		}
		dets = append(dets, d)
	}
	perStream := res.Frames / len(cfg.Streams)
	bareMeter := newCPUMeter()
	bare, bareSteady, err := bareInference(ctx, dets, *sc, perStream, max(dc.Detect.Batch, 1), bareMeter)
	if err != nil {
		return nil, fmt.Errorf("bare inference baseline: %w", err)
	}
	res.BareFPS = bare
	if s := bareMeter.stages["bare"]; s != nil && s.frames > 0 {
		res.CPU.BareMs = s.cpu.Seconds() * 1000 / float64(s.frames)
	}
	res.RatioBare = res.PipelineFPS / res.BareFPS
	if res.Steady != nil && bareSteady > 0 {
		res.Steady.BareFPS = bareSteady
		res.Steady.RatioBare = res.Steady.FPS / bareSteady
	}
	if naive {
		ncfg := icfg
		ncfg.Threads = max(icfg.Threads, 1) * dc.Detect.Workers
		det, err := infer.Open(ncfg, lg)
		if err != nil {
			return nil, err
		}
		defer det.Close()
		res.NaiveThreads = ncfg.Threads
		nv, err := naiveLoop(ctx, det, cfg, perStream)
		if err != nil {
			return nil, fmt.Errorf("naive baseline: %w", err)
		}
		res.NaiveFPS = nv
		res.RatioNaive = res.PipelineFPS / res.NaiveFPS
	}
	return res, nil
}

// bareInference decodes and preprocesses n frames first (not timed), then
// times the detectors alone over them in batches, the sessions in parallel.
// It returns the rate over all the frames and over the middle ones (a tenth
// in from either end, by when each frame's run started, as the pipeline's
// steady window; 0 when there are too few).
func bareInference(ctx context.Context, dets []*infer.Detector, sc capture.Config, n, batch int, m *cpuMeter) (all, steady float64, err error) {
	det := dets[0]
	src, err := capture.New(sc, nil, nil)
	if err != nil {
		return 0, 0, err
	}
	if err := src.Connect(ctx); err != nil {
		return 0, 0, err
	}
	pool := det.NewInputPool()
	var inputs []*infer.Input
	defer func() {
		for _, in := range inputs {
			in.Release()
		}
	}()
	for len(inputs) < n {
		f, err := src.Read(ctx)
		if err != nil {
			break
		}
		in := pool.Get()
		err = preprocessFrame(det, f, in)
		f.Release()
		if err != nil {
			in.Release()
			return 0, 0, err
		}
		inputs = append(inputs, in)
	}
	_ = src.Close(ctx)
	if len(inputs) == 0 {
		return 0, 0, errors.New("no frames decoded")
	}
	var next atomic.Int64
	var g errgroup.Group
	// marks[0] and marks[1]: when the runs of the frames at either end of
	// the steady window started.
	var marks [2]atomic.Int64
	from, to := -1, -1
	if len(inputs) >= minSteadyFrames {
		from, to = len(inputs)/10, len(inputs)-len(inputs)/10
	}
	t0 := time.Now()
	for _, d := range dets {
		g.Go(func() error {
			for {
				i := int(next.Add(int64(batch))) - batch
				if i >= len(inputs) {
					return nil
				}
				part := inputs[i:min(i+batch, len(inputs))]
				for k, at := range [2]int{from, to} {
					if i <= at && at < i+len(part) {
						marks[k].Store(time.Since(t0).Nanoseconds())
					}
				}
				var err error
				m.measure("bare", len(part), func() { _, err = d.Detect(ctx, part) })
				if err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	all = float64(len(inputs)) / time.Since(t0).Seconds()
	if span := time.Duration(marks[1].Load() - marks[0].Load()); from >= 0 && span > 0 {
		steady = float64(to-from) / span.Seconds()
	}
	return all, steady, nil
}

// naiveLoop is what a first attempt looks like: one frame at a time, each
// step waiting for the previous one, with the same libraries.
func naiveLoop(ctx context.Context, det *infer.Detector, cfg *config.Pipeline, n int) (float64, error) {
	sc := captureConfig(cfg.Streams[0])
	tc, err := trackSection(cfg)
	if err != nil {
		return 0, err
	}
	src, err := capture.New(*sc, nil, nil)
	if err != nil {
		return 0, err
	}
	if err := src.Connect(ctx); err != nil {
		return 0, err
	}
	defer src.Close(ctx)
	pool := det.NewInputPool()
	tr := track.New(tc.Track)
	eng := analytics.New(tc.AnalyticsConfig(), cfg.Name, sc.ID)
	enc := json.NewEncoder(io.Discard)
	done := 0
	t0 := time.Now()
	for done < n {
		f, err := src.Read(ctx)
		if err != nil {
			break
		}
		in := pool.Get()
		if err := preprocessFrame(det, f, in); err != nil {
			in.Release()
			f.Release()
			return 0, err
		}
		dets, err := det.Detect(ctx, []*infer.Input{in})
		in.Release()
		if err != nil {
			f.Release()
			return 0, err
		}
		tds := make([]track.Detection, len(dets[0]))
		for i, d := range dets[0] {
			tds[i] = track.Detection{Box: d.Box, ClassID: d.ClassID, Label: d.Label, Score: float64(d.Confidence)}
		}
		up := tr.Update(tds, f.Captured, true)
		for _, e := range eng.Update(up.Tracks, up.Started, up.Ended, f.Width, f.Height, f.Seq, f.Captured) {
			_ = enc.Encode(e)
		}
		f.Release()
		done++
	}
	if done == 0 {
		return 0, errors.New("no frames decoded")
	}
	return float64(done) / time.Since(t0).Seconds(), nil
}

func (r *benchResult) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "frames\t%d (%d stream(s)), provider %s, %d detector session(s) x %d thread(s), batch %d\n", r.Frames, r.Streams, r.Provider, r.Workers, r.Threads, r.Batch)
	fmt.Fprintf(tw, "pipeline\t%.1f fps\te2e p50 %.1f ms, p99 %.1f ms\n", r.PipelineFPS, r.E2EP50ms, r.E2EP99ms)
	for _, name := range r.stageNames {
		s := r.Stages[name]
		fmt.Fprintf(tw, "  stage %s\tmean %.2f ms\tp99 %.2f ms\n", name, s[0], s[1])
	}
	fmt.Fprintf(tw, "bare inference\t%.1f fps\tpipeline/bare = %.2f\n", r.BareFPS, r.RatioBare)
	if c := r.CPU; c != nil {
		c.print(tw)
	}
	if r.Steady != nil {
		r.Steady.print(tw)
	}
	if r.NaiveFPS > 0 {
		fmt.Fprintf(tw, "naive loop\t%.1f fps\tpipeline/naive = %.2f (one session, %d threads)\n", r.NaiveFPS, r.RatioNaive, r.NaiveThreads)
	}
	_ = tw.Flush()
}

// countSink counts the frames that reach the end of the pipeline.
type countSink struct {
	n      *atomic.Int64
	m      *cpuMeter
	steady *steadyWindow
}

func (c countSink) Connect(context.Context) error { return nil }
func (c countSink) Write(context.Context, *stages.Frame) error {
	var n int64
	c.m.measure("sink:count", 1, func() { n = c.n.Add(1) })
	c.steady.passed(n) // outside the timed call: the reading is not the sink's work
	return nil
}
func (c countSink) Close(context.Context) error { return nil }

// preprocessFrame makes det's model input from f's image.
func preprocessFrame(det *infer.Detector, f *stages.Frame, in *infer.Input) error {
	img, err := picture.Mat(f)
	if err != nil {
		return err
	}
	return det.Preprocess(img, in)
}
