package webhook

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/stages"
)

// Plugin registers the webhook sink under `sinks.webhook`.
func Plugin() stages.SinkPlugin {
	return stages.NewSinkPlugin("webhook", Defaults,
		func(c *Config, env stages.Env) error { return c.Validate(env.Resolve) },
		func(c *Config, res *stages.Resources) (stages.Sink, error) {
			s, err := New(*c, res.Pipeline, res.Resolve, res.Log)
			if err != nil {
				return nil, err
			}
			if res.Metrics != nil {
				m := &metrics{s: s, reg: res.Metrics}
				if err := res.Metrics.Register(m); err != nil {
					_ = s.q.Close()
					return nil, fmt.Errorf("webhook: register metrics: %w", err)
				}
				s.metrics = m
			}
			return s, nil
		})
}

var (
	descDelivered = prometheus.NewDesc("osprey_webhook_delivered_total",
		"Events an endpoint answered with a 2xx.", []string{"url"}, nil)
	descFailed = prometheus.NewDesc("osprey_webhook_failed_total",
		"Events an endpoint rejected with a 4xx other than 408/429: logged and skipped, never retried.", []string{"url"}, nil)
	descRetries = prometheus.NewDesc("osprey_webhook_retries_total",
		"Attempts that failed (5xx, 408, 429, 3xx, time-out, network error) and were retried.", []string{"url"}, nil)
	descPending = prometheus.NewDesc("osprey_webhook_pending",
		"Events in the webhook spool not yet answered by every endpoint.", nil, nil)
	descDropped = prometheus.NewDesc("osprey_webhook_dropped_total",
		"Undelivered events dropped because the webhook spool reached spool.max_bytes.", nil, nil)
)

// metrics reads the sink's counters at scrape time; Close unregisters it so
// a rebuilt sink (reload) can register again.
type metrics struct {
	s   *Sink
	reg prometheus.Registerer
}

// Describe sends the metric descriptions.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDelivered, descFailed, descRetries, descPending, descDropped} {
		ch <- d
	}
}

// Collect sends the current values.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	st := m.s.Stats()
	for _, u := range st.URLs {
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(u.Delivered), u.URL)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(u.Failed), u.URL)
		ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(u.Retries), u.URL)
	}
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.Dropped))
}

func (m *metrics) unregister() { m.reg.Unregister(m) }
