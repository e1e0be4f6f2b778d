// Package app assembles a runnable pipeline from a validated configuration
// and the registry it was decoded with: sources, stages and sinks built by
// their plugins, and around them the observability surface (metrics,
// /healthz, live statistics, NATS control) and hot reload. It is the shared
// core of `pipeline run`, `bench` and `soak`. Its files follow those jobs:
// assembly here, observe.go, control.go, reload.go.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osprey-vision/osprey/analytics"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/cvthreads"
	"github.com/osprey-vision/osprey/internal/goprocs"
	"github.com/osprey-vision/osprey/internal/sched"
	"github.com/osprey-vision/osprey/metrics"
	"github.com/osprey-vision/osprey/stages"
)

// Options changes how a pipeline is assembled, for tools like bench.
type Options struct {
	// MaxFrames stops each stream after this many frames (0: no limit).
	MaxFrames int
	// NoSinks leaves every configured sink out (bench measures the pipeline).
	NoSinks bool
	// ExtraSinks are added after the configured ones (tests, bench).
	ExtraSinks []stages.SinkSpec
	// Node runs the pipeline as this fleet node: no stream starts until
	// StartStream (the fleet starts those it holds), the pipeline runs until
	// stopped, and events carry the node and the stream's lease.
	Node string
}

// App is an assembled pipeline.
type App struct {
	cfg     *config.Pipeline
	log     *slog.Logger
	Metrics *metrics.Metrics
	opts    Options

	// res is what every component was built with; Emit is bound to the runner.
	res    *stages.Resources
	runner *stages.Runner
	// stages are the built stages by plugin name, for reload and reports.
	stages map[string][]stages.StageSpec
	// sinks are the built sinks by key, for reload (overlay refresh).
	sinks map[string]stages.Sink
	// latest keeps each stream's newest frame for snapshot requests; nil
	// unless a sink answers control requests.
	latest *latestFrames
	// saturation tells background work when the detector needs the CPU.
	saturation *saturation
	started    time.Time
	stateMu    sync.Mutex
	sources    map[string]stages.SourceState
	// running maps the running streams to the lease they run under (0
	// outside fleet mode).
	running   map[string]uint64
	onStreams func([]config.Stream)
	srvAddr   atomic.Value // net.Addr of the metrics server once listening
}

// New builds every component of cfg through the registry cfg was decoded
// with (opening the model, the sinks' spools). Nothing runs until Run; on
// error everything built so far is closed.
func New(cfg *config.Pipeline, log *slog.Logger, opts Options) (_ *App, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &App{cfg: cfg, log: log, Metrics: metrics.New(), opts: opts, sources: map[string]stages.SourceState{}, running: map[string]uint64{},
		stages: map[string][]stages.StageSpec{}, sinks: map[string]stages.Sink{}}
	var built []func()
	defer func() {
		if err != nil {
			for i := len(built) - 1; i >= 0; i-- {
				built[i]()
			}
		}
	}()

	// OpenCV's pool spins between calls and competes with inference for the
	// few cores of an edge device; the pipeline already runs stages in
	// parallel (docs/design.md).
	cvThreads := 1
	if cfg.OpenCVThreads != nil {
		cvThreads = *cfg.OpenCVThreads
	}
	cvthreads.Set(cvThreads)

	a.res = &stages.Resources{
		Pipeline: cfg.Name, Node: opts.Node, Streams: cfg.StreamIDs(), Live: cfg.Mode == config.Live,
		Log: log, Metrics: a.Metrics.Registry(), Now: time.Now, Resolve: cfg.Resolve, Shared: &stages.Shared{},
		Emit:        a.emit,
		StreamURL:   a.streamURL,
		Camera:      a.camera,
		SourceState: a.onSourceState,
		Stats:       (&liveStats{m: a.Metrics}).get,
		Background:  background(cfg.Scheduling.BackgroundPolicy(), log),
	}
	g := stages.Graph{
		Pipeline:     cfg.Name,
		SourceLink:   cfg.Link("capture"),
		Weights:      cfg.Weights(),
		Budget:       cfg.LatencyBudget,
		DrainTimeout: cfg.DrainTimeout,
		Node:         opts.Node,
		Standing:     opts.Node != "",
	}
	if cfg.Mode == config.Offline {
		// Offline, frames wait in blocking queues by design: a deadline
		// would only throw away work the run exists to do.
		g.Budget = 0
	}
	for _, sc := range cfg.Streams {
		if opts.Node != "" {
			break // the fleet starts the streams this node holds
		}
		src, err := a.buildSource(sc)
		if err != nil {
			return nil, err
		}
		g.Sources = append(g.Sources, stages.SourceSpec{Stream: sc.ID, Source: src})
		a.running[sc.ID] = 0
	}
	for _, sec := range cfg.Stages {
		specs, err := sec.Stage.Build(sec.Config, a.res.Named("stage", sec.Name))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sec.Name, err)
		}
		for i := range specs {
			st := specs[i]
			built = append(built, func() { closeStage(st) })
			if st.In == (stages.Link{}) {
				specs[i].In = cfg.Link(st.Name)
			}
		}
		a.stages[sec.Name] = specs
		g.Stages = append(g.Stages, specs...)
	}
	if det := a.stageSpec("detect"); det != nil {
		a.saturation = newSaturation(a.Metrics, "detect", 1+len(det.Replicas))
		a.res.Saturated = a.saturation.Saturated
		// Each detector session's goroutine lives in cgo calls: give the
		// scheduler a P for each beyond the cores (internal/goprocs).
		goprocs.Reserve(1 + len(det.Replicas))
	}
	if !opts.NoSinks {
		a.res.Control = control{a}
		for _, sec := range cfg.Sinks {
			s, err := sec.Sink.Build(sec.Config, a.res.Named("sink", sec.Name))
			if err != nil {
				return nil, fmt.Errorf("sinks.%s: %w", sec.Name, err)
			}
			built = append(built, func() { _ = s.Close(context.Background()) })
			a.sinks[sec.Name] = s
			in := cfg.Link("sinks")
			if sec.Sink.Link != nil {
				in = *sec.Sink.Link
			}
			g.Sinks = append(g.Sinks, stages.SinkSpec{Name: sec.Name, Sink: s, In: in})
			if sec.Sink.Control && a.latest == nil {
				// The latest frame of each stream, for snapshot requests. Its
				// Write only swaps a reference, so a blocking queue never waits
				// long and drops nothing that would show up as a pipeline drop.
				a.latest = newLatestFrames()
				g.Sinks = append(g.Sinks, stages.SinkSpec{Name: "latest", Sink: a.latest, In: stages.Link{Size: 2, Policy: stages.Block}})
			}
		}
	}
	g.Sinks = append(g.Sinks, opts.ExtraSinks...)
	a.runner = stages.NewRunner(g, a.Metrics, log)
	return a, nil
}

// buildSource builds one stream's source with the plugin of its URL scheme.
func (a *App) buildSource(sc config.Stream) (stages.Source, error) {
	src, err := sc.Source.Build(sc.Config, a.res.Named("stream", sc.ID))
	if err != nil {
		return nil, err
	}
	if a.opts.MaxFrames > 0 {
		src = &limitSource{Source: src, n: a.opts.MaxFrames}
	}
	return src, nil
}

// closeStage closes a stage and its replicas that were built but never run.
func closeStage(st stages.StageSpec) {
	_ = st.Stage.Close(context.Background())
	for _, r := range st.Replicas {
		_ = r.Close(context.Background())
	}
}

// stageSpec returns the built stage called name, or nil.
func (a *App) stageSpec(name string) *stages.StageSpec {
	for _, specs := range a.stages {
		for i := range specs {
			if specs[i].Name == name {
				return &specs[i]
			}
		}
	}
	return nil
}

// emit delivers events that belong to no frame; before Run builds the
// runner there is nothing to deliver to.
func (a *App) emit(stream string, evs ...event.Event) {
	if a.runner != nil {
		a.runner.Emit(stream, evs...)
	}
}

// streamURL returns stream's URL as the current file writes it.
func (a *App) streamURL(stream string) string {
	return a.streamConfig(stream).URL
}

// camera reports whether stream's source is a live camera.
func (a *App) camera(stream string) bool {
	c, ok := a.streamConfig(stream).Config.(interface{ Camera() bool })
	return ok && c.Camera()
}

// streamConfig returns stream's item in the current file (hot reloads
// replace a.cfg), or the zero Stream when the file has no such stream.
func (a *App) streamConfig(stream string) config.Stream {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	for _, sc := range a.cfg.Streams {
		if sc.ID == stream {
			return sc
		}
	}
	return config.Stream{}
}

// onSourceState turns a source's health change into an event and a metric.
func (a *App) onSourceState(s stages.SourceState) {
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
	a.emit(s.Stream, e)
}

// Counts returns each stream's analytics counters (from the stage that
// keeps them). Call it after Run returns.
func (a *App) Counts() map[string]analytics.Counts {
	for _, specs := range a.stages {
		for _, st := range specs {
			if c, ok := st.Stage.(interface {
				Counts() map[string]analytics.Counts
			}); ok {
				return c.Counts()
			}
		}
	}
	return nil
}

// PreviewAddr returns the preview server's address once running, or nil.
func (a *App) PreviewAddr() net.Addr {
	if s, ok := a.sinks["preview"].(interface{ Addr() net.Addr }); ok {
		return s.Addr()
	}
	return nil
}

// Run serves /metrics and /healthz (when configured) and runs the pipeline
// until its sources end or ctx is done. The runner closes every stage and
// sink when it ends.
func (a *App) Run(ctx context.Context) error {
	a.started = time.Now()
	if l := a.cfg.Metrics.Listen; l != "" {
		stop, err := a.serveMetrics(l)
		if err != nil {
			a.closeUnstarted()
			return err
		}
		defer stop()
		a.log.Info("metrics: serving", "url", "http://"+a.MetricsAddr().String()+"/metrics")
	}
	if a.saturation != nil {
		stop := a.saturation.start()
		defer stop()
	}
	err := a.runner.Run(ctx)
	if errors.Is(err, stages.ErrDrainTimeout) {
		a.log.Error("pipeline did not drain in time", "drain_timeout", a.cfg.DrainTimeout)
	}
	return err
}

// closeUnstarted closes what New built when Run fails before the runner
// started (the runner closes them otherwise).
func (a *App) closeUnstarted() {
	for _, specs := range a.stages {
		for _, st := range specs {
			closeStage(st)
		}
	}
	for _, s := range a.sinks {
		_ = s.Close(context.Background())
	}
}

// background returns Resources.Background for policy p: fn runs on a thread
// with p; a refusal (CPUs gone from the cpuset since the file was checked)
// is logged once, and fn runs anyway.
func background(p sched.Policy, log *slog.Logger) func(fn func()) {
	var once sync.Once
	return func(fn func()) {
		sched.Run(p, func(err error) {
			if err != nil {
				once.Do(func() {
					log.Warn("background threads run without their scheduling", "scheduling", p.String(), "err", err)
				})
			}
			fn()
		})
	}
}
