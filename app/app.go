// Package app assembles a runnable pipeline from a validated configuration:
// sources, the built-in stages, sinks, metrics and the HTTP endpoints. It is
// the shared core of `pipeline run` and `pipeline bench`.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osprey-vision/osprey/analytics"
	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/governor"
	"github.com/osprey-vision/osprey/internal/cvthreads"
	"github.com/osprey-vision/osprey/metrics"
	"github.com/osprey-vision/osprey/sink/jsonl"
	"github.com/osprey-vision/osprey/sink/natsink"
	"github.com/osprey-vision/osprey/sink/preview"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/stages/builtin"
)

// Options changes how a pipeline is assembled, for tools like bench.
type Options struct {
	// MaxFrames stops each stream after this many frames (0: no limit).
	MaxFrames int
	// NoSinks leaves every configured sink out (bench measures the pipeline).
	NoSinks bool
	// ExtraSinks are added after the configured ones (tests, bench).
	ExtraSinks []stages.SinkSpec
}

// App is an assembled pipeline.
type App struct {
	cfg     *config.Pipeline
	log     *slog.Logger
	Metrics *metrics.Metrics

	det     *infer.Detector
	track   *builtin.Track
	latest  *latestFrames
	nats    *natsink.Sink
	preview *preview.Sink
	// saturation tells the preview when the detector needs the CPU.
	saturation *saturation
	runner     *stages.Runner
	gov        *governor.Governor
	started    time.Time
	stateMu    sync.Mutex
	sources    map[string]capture.State
	srvAddr    atomic.Value // net.Addr of the metrics server once listening
	closers    []func()
	sampling   *builtin.Sampling
}

// New opens the model and builds every component. Nothing runs until Run.
func New(cfg *config.Pipeline, log *slog.Logger, opts Options) (*App, error) {
	a := &App{cfg: cfg, log: log, Metrics: metrics.New(), sources: map[string]capture.State{}}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()

	// OpenCV's pool spins between calls and competes with inference for the
	// few cores of an edge device; the pipeline already runs stages in
	// parallel. On 2 cores pipeline bench read 94.1/91.9 fps with one thread
	// against 89.4/90.6 with OpenCV's default (alternating runs): a small
	// gain, within noise, and it keeps the CPU for inference.
	cvThreads := 1
	if cfg.OpenCVThreads != nil {
		cvThreads = *cfg.OpenCVThreads
	}
	cvthreads.Set(cvThreads)

	icfg := cfg.InferConfig()
	icfg.Path = cfg.ModelPath()
	det, err := infer.Open(icfg, log)
	if err != nil {
		return nil, err
	}
	a.det = det
	a.closers = append(a.closers, func() { _ = det.Close() })

	g := stages.Graph{
		Pipeline:     cfg.Name,
		SourceLink:   cfg.Link("capture"),
		Budget:       cfg.LatencyBudget,
		DrainTimeout: cfg.DrainTimeout,
	}
	if cfg.Mode == config.Offline {
		// Offline, frames wait in blocking queues by design: a deadline
		// would only throw away work the run exists to do.
		g.Budget = 0
	}
	for _, sc := range cfg.Streams {
		src, err := capture.New(sc, log, a.onSourceState) // capture adds stream= itself
		if err != nil {
			return nil, err
		}
		if opts.MaxFrames > 0 {
			src = &limitSource{Source: src, n: opts.MaxFrames}
		}
		g.Sources = append(g.Sources, stages.SourceSpec{Stream: sc.ID, Source: src})
	}

	a.sampling = builtin.NewSampling(cfg.Detect.Every, cfg.Detect.MaxFPS)
	detect := builtin.NewDetect(det, cfg.Detect.Batch, log)
	if gc := cfg.Detect.Governor; gc != nil {
		a.gov = governor.New(*gc)
		detect.Govern(a.gov, a.sampling, func(path string) (builtin.Detector, error) {
			vc := icfg
			vc.Path = path
			return infer.Open(vc, log)
		}, func(level int, _ governor.Level) { a.Metrics.SetGovernorLevel("detect", level) })
	}
	// More detector sessions for detect.workers: each replica owns one.
	var replicas []stages.Stage
	for i := 1; i < cfg.Detect.Workers; i++ {
		d, err := infer.Open(icfg, log)
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, func() { _ = d.Close() }) // Close is idempotent
		replicas = append(replicas, builtin.NewDetect(d, cfg.Detect.Batch, log))
	}
	a.track = builtin.NewTrack(cfg.Name, cfg.Track, cfg.AnalyticsConfig())
	g.Stages = []stages.StageSpec{
		{Name: "preprocess", Stage: builtin.NewPreprocess(det, a.sampling), In: cfg.Link("preprocess")},
		{Name: "detect", Stage: detect, Replicas: replicas, In: cfg.Link("detect"), BatchTimeout: cfg.Detect.BatchTimeout},
		// The tracker is cheap and needs every inferred frame: a frame that got
		// this far is tracked even if late, so no inference is wasted.
		{Name: "track", Stage: a.track, In: cfg.Link("track"), KeepStale: true},
	}

	if !opts.NoSinks {
		if err := a.buildSinks(&g); err != nil {
			return nil, err
		}
	}
	g.Sinks = append(g.Sinks, opts.ExtraSinks...)
	a.runner = stages.NewRunner(g, a.Metrics, log)
	a.track.OnClose(a.runner.Emit)
	ok = true
	return a, nil
}

func (a *App) buildSinks(g *stages.Graph) error {
	cfg := a.cfg
	sinkLink := cfg.Link("sinks")
	if c := cfg.Sinks.JSONL; c != nil {
		g.Sinks = append(g.Sinks, stages.SinkSpec{Name: "jsonl", Sink: jsonl.NewFile(c.Path, c.Frames), In: sinkLink})
	}
	if c := cfg.Sinks.Stdout; c != nil {
		g.Sinks = append(g.Sinks, stages.SinkSpec{Name: "stdout", Sink: jsonl.NewWriter("stdout", stdout, c.Frames), In: sinkLink})
	}
	if c := cfg.Sinks.NATS; c != nil {
		nc := *c
		nc.Pipeline = cfg.Name
		s, err := natsink.New(nc, a.log.With("sink", "nats"))
		if err != nil {
			return err
		}
		s.SetController(controller{a})
		a.nats = s
		g.Sinks = append(g.Sinks, stages.SinkSpec{Name: "nats", Sink: s, In: sinkLink})
		// The latest frame of each stream, for snapshot requests over NATS.
		// Its Write only swaps a reference, so a blocking queue never waits
		// long and drops nothing that would show up as a pipeline drop.
		a.latest = newLatestFrames()
		g.Sinks = append(g.Sinks, stages.SinkSpec{Name: "latest", Sink: a.latest, In: stages.Link{Size: 2, Policy: stages.Block}})
	}
	if c := cfg.Sinks.Preview; c != nil {
		s, err := preview.New(*c, a.log.With("sink", "preview"))
		if err != nil {
			return err
		}
		for _, id := range cfg.StreamIDs() {
			zones, lines := overlays(cfg.AnalyticsConfig(), id)
			if err := s.SetOverlays(id, zones, lines); err != nil {
				return err
			}
		}
		ps := &previewStats{m: a.Metrics}
		s.SetStatsProvider(ps.get)
		a.saturation = newSaturation(a.Metrics, "detect", cfg.Detect.Workers)
		s.SetSaturation(a.saturation.Saturated)
		a.preview = s
		g.Sinks = append(g.Sinks, stages.SinkSpec{Name: "preview", Sink: s, In: stages.Link{Size: 2, Policy: stages.Latest}})
	}
	return nil
}

func overlays(c analytics.Config, stream string) ([]preview.Zone, []preview.Line) {
	var zones []preview.Zone
	var lines []preview.Line
	for _, z := range c.Zones {
		if z.Stream != stream {
			continue
		}
		pz := preview.Zone{Name: z.Name}
		for _, p := range z.Polygon {
			pz.Polygon = append(pz.Polygon, geom.Point{X: p[0], Y: p[1]})
		}
		zones = append(zones, pz)
	}
	for _, l := range c.Lines {
		if l.Stream == stream {
			lines = append(lines, preview.Line{Name: l.Name, From: geom.Point{X: l.From[0], Y: l.From[1]}, To: geom.Point{X: l.To[0], Y: l.To[1]}})
		}
	}
	return zones, lines
}

// onSourceState turns a source's health change into an event and a metric.
func (a *App) onSourceState(s capture.State) {
	a.stateMu.Lock()
	a.sources[s.Stream] = s
	a.stateMu.Unlock()
	a.Metrics.SourceUp(s.Stream, s.Up)
	typ := event.SourceUp
	if !s.Up {
		typ = event.SourceDown
		if s.Reason != "closed" { // "closed" is the pipeline stopping, not a fault
			a.log.Warn("stream down", "stream", s.Stream, "url", s.URL, "reason", s.Reason)
		}
	}
	e := event.New(typ, a.cfg.Name, s.Stream)
	e.Reason = s.Reason
	if !s.Up && e.Reason == "" {
		e.Reason = "stopped"
	}
	a.runner.Emit(s.Stream, e)
}

// Detector returns the pipeline's detector (bench uses it for baselines).
func (a *App) Detector() *infer.Detector { return a.det }

// Counts returns each stream's analytics counters. Call it after Run returns.
func (a *App) Counts() map[string]analytics.Counts { return a.track.Counts() }

// PreviewAddr returns the preview server's address once running, or nil.
func (a *App) PreviewAddr() net.Addr {
	if a.preview == nil {
		return nil
	}
	return a.preview.Addr()
}

// MetricsAddr returns the metrics server's address once running, or nil.
func (a *App) MetricsAddr() net.Addr {
	addr, _ := a.srvAddr.Load().(net.Addr)
	return addr
}

// Run serves /metrics and /healthz (when configured) and runs the pipeline
// until its sources end or ctx is done. It closes everything it opened.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	a.started = time.Now()
	if l := a.cfg.Metrics.Listen; l != "" {
		stop, err := a.serveMetrics(l)
		if err != nil {
			return err
		}
		defer stop()
		a.log.Info("metrics: serving", "url", "http://"+a.MetricsAddr().String()+"/metrics")
	}
	if a.nats != nil {
		stop := a.exportSpool()
		defer stop()
	}
	if a.saturation != nil {
		stop := a.saturation.start()
		defer stop()
	}
	return a.runner.Run(ctx)
}

// exportSpool publishes the NATS sink's spool depth as osprey_events_spooled.
func (a *App) exportSpool() func() {
	return every(time.Second, func() { a.Metrics.SetSpooled(a.nats.Stats().Pending) })
}

// every calls fn every d from a goroutine until the returned stop is called;
// stop returns once that goroutine has ended.
func every(d time.Duration, fn func()) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fn()
			}
		}
	}()
	return func() { close(done); <-finished }
}

func (a *App) serveMetrics(addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	a.srvAddr.Store(ln.Addr())
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.Metrics.Handler())
	mux.HandleFunc("GET /healthz", a.healthz)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("metrics server stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func (a *App) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}
