// Package metrics measures a running pipeline: Prometheus collectors for
// /metrics (names as in docs/design.md) plus in-process quantiles and counters for
// the live status line, `pipeline bench` and the preview page's stats panel.
package metrics

import (
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/osprey-vision/osprey/event"
)

// Metrics implements stages.Observer. Create one per pipeline with New.
type Metrics struct {
	reg *prometheus.Registry

	frames   *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	stageSec *prometheus.HistogramVec
	e2eSec   *prometheus.HistogramVec
	batch    prometheus.Histogram
	sourceUp *prometheus.GaugeVec
	events   *prometheus.CounterVec
	busy     *prometheus.GaugeVec
	satur    *prometheus.GaugeVec

	mu      sync.Mutex
	streams map[string]*StreamStats
	stages  map[string]*Latency

	// Labelled children cached by label values, so the per-frame calls skip
	// the vectors' label hashing and the variadic slice WithLabelValues
	// allocates. Guarded by cmu, not mu, which StreamStats readers hold.
	cmu    sync.Mutex
	frameC map[[2]string]prometheus.Counter
	stageO map[string]prometheus.Observer
	e2eO   map[string]prometheus.Observer
}

// StreamStats are one stream's in-process counters.
type StreamStats struct {
	In, Out uint64
	Drops   map[string]uint64 // "stage/reason" -> count
	E2E     Latency
	Up      bool
}

// New returns metrics registered on a fresh Prometheus registry (with the Go
// runtime and process collectors).
func New() *Metrics {
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		streams: map[string]*StreamStats{},
		stages:  map[string]*Latency{},
		frameC:  map[[2]string]prometheus.Counter{},
		stageO:  map[string]prometheus.Observer{},
		e2eO:    map[string]prometheus.Observer{},
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osprey_frames_total", Help: "Frames handled, by stream and stage.",
		}, []string{"stream", "stage"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osprey_frames_dropped_total", Help: "Frames dropped, by stream, stage and reason (queue_full, stale, error, shutdown, filtered).",
		}, []string{"stream", "stage", "reason"}),
		stageSec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "osprey_stage_seconds", Help: "Time one stage call took.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"stage"}),
		e2eSec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "osprey_e2e_latency_seconds", Help: "Capture to sink latency per frame.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"stream"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "osprey_inference_batch_size", Help: "Frames per detector run.",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16, 32},
		}),
		sourceUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "osprey_source_up", Help: "1 when the stream delivers frames, 0 when it is down.",
		}, []string{"stream"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osprey_events_total", Help: "Events emitted, by type.",
		}, []string{"type"}),
		busy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "osprey_stage_busy_ratio", Help: "Fraction of the last half second a stage's workers spent processing (1 = at capacity); exported while a preview sink runs.",
		}, []string{"stage"}),
		satur: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "osprey_stage_saturated", Help: "1 while the stage and the CPUs are both busy enough that the preview yields to it.",
		}, []string{"stage"}),
	}
	m.reg.MustRegister(m.frames, m.dropped, m.stageSec, m.e2eSec, m.batch, m.sourceUp, m.events,
		m.busy, m.satur, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the Prometheus registry, for components that export their own metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *Metrics) stream(name string) *StreamStats {
	s := m.streams[name]
	if s == nil {
		s = &StreamStats{Drops: map[string]uint64{}}
		m.streams[name] = s
	}
	return s
}

// Frame implements stages.Observer.
func (m *Metrics) Frame(stream, stage string) {
	k := [2]string{stream, stage}
	m.cmu.Lock()
	c := m.frameC[k]
	if c == nil {
		c = m.frames.WithLabelValues(stream, stage)
		m.frameC[k] = c
	}
	m.cmu.Unlock()
	c.Inc()
	if stage == "capture" {
		m.mu.Lock()
		m.stream(stream).In++
		m.mu.Unlock()
	}
}

// Dropped implements stages.Observer.
func (m *Metrics) Dropped(stream, stage, reason string) {
	m.dropped.WithLabelValues(stream, stage, reason).Inc()
	m.mu.Lock()
	m.stream(stream).Drops[stage+"/"+reason]++
	m.mu.Unlock()
}

// StageLatency implements stages.Observer.
func (m *Metrics) StageLatency(stage string, d time.Duration) {
	m.cmu.Lock()
	o := m.stageO[stage]
	if o == nil {
		o = m.stageSec.WithLabelValues(stage)
		m.stageO[stage] = o
	}
	m.cmu.Unlock()
	o.Observe(d.Seconds())
	m.mu.Lock()
	l := m.stages[stage]
	if l == nil {
		l = &Latency{}
		m.stages[stage] = l
	}
	m.mu.Unlock()
	l.Observe(d)
}

// StageBusy returns the time stage has spent in Process calls since the
// start, summed over its workers: its change over a second, divided by the
// worker count, is the fraction of the time the stage was busy.
func (m *Metrics) StageBusy(stage string) time.Duration {
	m.mu.Lock()
	l := m.stages[stage]
	m.mu.Unlock()
	if l == nil {
		return 0
	}
	return l.Sum()
}

// EndToEnd implements stages.Observer.
func (m *Metrics) EndToEnd(stream string, d time.Duration) {
	m.cmu.Lock()
	o := m.e2eO[stream]
	if o == nil {
		o = m.e2eSec.WithLabelValues(stream)
		m.e2eO[stream] = o
	}
	m.cmu.Unlock()
	o.Observe(d.Seconds())
	m.mu.Lock()
	s := m.stream(stream)
	s.Out++
	m.mu.Unlock()
	s.E2E.Observe(d)
}

// BatchSize implements stages.Observer.
func (m *Metrics) BatchSize(n int) { m.batch.Observe(float64(n)) }

// SourceUp implements stages.Observer.
func (m *Metrics) SourceUp(stream string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.sourceUp.WithLabelValues(stream).Set(v)
	m.mu.Lock()
	m.stream(stream).Up = up
	m.mu.Unlock()
}

// Event implements stages.Observer.
func (m *Metrics) Event(t event.Type) { m.events.WithLabelValues(string(t)).Inc() }

// SetStageLoad exports a stage's busy ratio over the last window and whether
// it counts as saturated.
func (m *Metrics) SetStageLoad(stage string, busy float64, saturated bool) {
	m.busy.WithLabelValues(stage).Set(busy)
	v := 0.0
	if saturated {
		v = 1
	}
	m.satur.WithLabelValues(stage).Set(v)
}

// Snapshot is a point-in-time copy of the in-process statistics, JSON-ready
// (the preview page's stats panel and `pipeline bench` use it).
type Snapshot struct {
	Streams map[string]StreamSnapshot `json:"streams"`
	Stages  map[string]StageSnapshot  `json:"stages"`
}

// StreamSnapshot is one stream in a Snapshot. Latencies are in milliseconds.
type StreamSnapshot struct {
	In     uint64            `json:"frames_in"`
	Out    uint64            `json:"frames_out"`
	Drops  map[string]uint64 `json:"drops"`
	Up     bool              `json:"up"`
	E2EP50 float64           `json:"e2e_p50_ms"`
	E2EP99 float64           `json:"e2e_p99_ms"`
	// Inferences counts inputs the detector ran for this stream
	// (osprey_inferences_total): frames, or motion regions.
	Inferences uint64 `json:"inferences"`
}

// StageSnapshot is one stage in a Snapshot. Latencies are in milliseconds.
type StageSnapshot struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Snapshot returns the current statistics.
func (m *Metrics) Snapshot() Snapshot {
	inferences := m.CounterByStream("osprey_inferences_total")
	m.mu.Lock()
	defer m.mu.Unlock()
	out := Snapshot{Streams: map[string]StreamSnapshot{}, Stages: map[string]StageSnapshot{}}
	for name, s := range m.streams {
		e := s.E2E.Summary()
		drops := make(map[string]uint64, len(s.Drops))
		for k, v := range s.Drops {
			drops[k] = v
		}
		out.Streams[name] = StreamSnapshot{In: s.In, Out: s.Out, Drops: drops, Up: s.Up, E2EP50: ms(e.P50), E2EP99: ms(e.P99), Inferences: inferences[name]}
	}
	for name, l := range m.stages {
		s := l.Summary()
		out.Stages[name] = StageSnapshot{Count: s.Count, Mean: ms(s.Mean), P50: ms(s.P50), P99: ms(s.P99)}
	}
	return out
}

// CounterByStream sums a counter family registered by a component (the
// detector's osprey_inferences_total, say) by its stream label.
func (m *Metrics) CounterByStream(name string) map[string]uint64 {
	return m.CounterBy(name, func(l map[string]string) string { return l["stream"] })
}

// CounterBy sums a counter family from the registry under key(labels); an
// unknown family gives an empty map.
func (m *Metrics) CounterBy(name string, key func(labels map[string]string) string) map[string]uint64 {
	out := map[string]uint64{}
	families, err := m.reg.Gather()
	if err != nil {
		return out
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[key(labels)] += uint64(mt.GetCounter().GetValue())
		}
	}
	return out
}

// StageNames returns the stages measured so far, sorted.
func (s Snapshot) StageNames() []string {
	names := make([]string, 0, len(s.Stages))
	for n := range s.Stages {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// StreamNames returns the streams seen so far, sorted.
func (s Snapshot) StreamNames() []string {
	names := make([]string, 0, len(s.Streams))
	for n := range s.Streams {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
