package record

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/stages"
)

// Plugin registers the recording sink under `sinks.record`.
func Plugin() stages.SinkPlugin {
	return stages.NewSinkPlugin("record", Defaults,
		func(c *Config, _ stages.Env) error { return c.Validate() },
		func(c *Config, res *stages.Resources) (stages.Sink, error) {
			s, err := New(*c, res)
			if err != nil {
				return nil, err
			}
			if res.Metrics != nil {
				if err := s.stats.register(res.Metrics, s); err != nil {
					return nil, fmt.Errorf("record: register metrics: %w", err)
				}
			}
			return s, nil
		})
}

// stats are the recorder's counters, exported as Prometheus metrics.
type stats struct {
	reg      prometheus.Registerer
	restarts *prometheus.CounterVec
	gaps     *prometheus.CounterVec
	drops    *prometheus.CounterVec
	full     *prometheus.CounterVec
	clips    *prometheus.CounterVec
	deletedB prometheus.Counter
	cpu      *prometheus.CounterVec
	up       *prometheus.GaugeVec
	usage    *usageCollector
}

func newStats() *stats {
	return &stats{
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "osprey_record_restarts_total",
			Help: "Times the recorder's ffmpeg child for a camera stopped and was restarted."}, []string{"stream"}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "osprey_record_gap_seconds_total",
			Help: "Seconds of camera video not recorded between an ffmpeg child's last segment and its restart's first."}, []string{"stream"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "osprey_record_frames_dropped_total",
			Help: "Frames the recorder's encoder did not take (its queue was full, or the disk is full); detection never waits for it."}, []string{"stream"}),
		full: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "osprey_record_disk_full_total",
			Help: "Times recording of a stream stopped because the disk was full."}, []string{"stream"}),
		clips: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "osprey_record_clips_total",
			Help: "Clips announced by clip.ready, by result (ok, or error: no clip and a clip_error)."}, []string{"stream", "result"}),
		cpu: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "osprey_record_ffmpeg_cpu_seconds_total",
			Help: "CPU time (user+system) of the recorder's ffmpeg copy children that have exited."}, []string{"stream"}),
		deletedB: prometheus.NewCounter(prometheus.CounterOpts{Name: "osprey_record_deleted_bytes_total",
			Help: "Segment bytes deleted by retention."}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "osprey_record_recording",
			Help: "1 while a stream's segments are being written, 0 while they are not (camera down, disk full)."}, []string{"stream"}),
	}
}

func (st *stats) collectors() []prometheus.Collector {
	return []prometheus.Collector{st.restarts, st.gaps, st.drops, st.full, st.clips, st.deletedB, st.cpu, st.up, st.usage}
}

func (st *stats) register(reg prometheus.Registerer, s *Sink) error {
	st.usage = &usageCollector{s: s}
	for i, c := range st.collectors() {
		if err := reg.Register(c); err != nil {
			for _, prev := range st.collectors()[:i] {
				reg.Unregister(prev)
			}
			return err
		}
	}
	st.reg = reg
	return nil
}

func (st *stats) unregister() {
	for _, c := range st.collectors() {
		st.reg.Unregister(c)
	}
}

func (st *stats) restart(stream string) { st.restarts.WithLabelValues(stream).Inc() }
func (st *stats) gap(stream string, d time.Duration) {
	st.gaps.WithLabelValues(stream).Add(d.Seconds())
}
func (st *stats) childCPU(stream string, d time.Duration) {
	st.cpu.WithLabelValues(stream).Add(d.Seconds())
}
func (st *stats) dropped(stream string)  { st.drops.WithLabelValues(stream).Inc() }
func (st *stats) diskFull(stream string) { st.full.WithLabelValues(stream).Inc() }
func (st *stats) deleted(n int64)        { st.deletedB.Add(float64(n)) }
func (st *stats) recording(stream string, on bool) {
	v := 0.0
	if on {
		v = 1
	}
	st.up.WithLabelValues(stream).Set(v)
}

func (st *stats) event(stream string, e event.Event) {
	if e.Type != event.ClipReady {
		return
	}
	res := "ok"
	if e.ClipError != "" {
		res = "error"
	}
	st.clips.WithLabelValues(stream, res).Inc()
}

var (
	descSegments = prometheus.NewDesc("osprey_record_segments", "Segments in the recording buffer.", []string{"stream"}, nil)
	descBytes    = prometheus.NewDesc("osprey_record_segment_bytes", "Bytes of the recording buffer's segments.", []string{"stream"}, nil)
)

// usageCollector reads the buffer's size at scrape time.
type usageCollector struct{ s *Sink }

// Describe sends the metric descriptions.
func (u *usageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descSegments; ch <- descBytes }

// Collect sends the current values (per stream directory).
func (u *usageCollector) Collect(ch chan<- prometheus.Metric) {
	for st, v := range u.s.ring.Usage() {
		ch <- prometheus.MustNewConstMetric(descSegments, prometheus.GaugeValue, float64(v[0]), st)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(v[1]), st)
	}
}
