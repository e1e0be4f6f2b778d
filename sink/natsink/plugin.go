package natsink

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/stages"
)

// Plugin registers the NATS sink under `sinks.nats`: events published (with
// a local spool while the server is away), per-frame detections, snapshots,
// and control requests answered from the pipeline's Control.
func Plugin() stages.SinkPlugin {
	p := stages.NewSinkPlugin("nats", DefaultConfig,
		func(c *Config, env stages.Env) error {
			cc := *c
			cc.Pipeline = env.Pipeline
			return cc.Validate()
		},
		func(c *Config, res *stages.Resources) (stages.Sink, error) {
			cc := *c
			cc.Pipeline = res.Pipeline
			s, err := New(cc, res.Log)
			if err != nil {
				return nil, err
			}
			if res.Control != nil {
				s.SetController(res.Control)
			}
			if res.Metrics != nil {
				spooled := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
					Name: "osprey_events_spooled", Help: "Events waiting in the NATS sink's spool (on disk when spool.dir is set).",
				}, func() float64 { return float64(s.Stats().Pending) })
				if err := res.Metrics.Register(spooled); err != nil {
					return nil, fmt.Errorf("natsink: spool metric: %w", err)
				}
			}
			return s, nil
		})
	p.Control = true
	return p
}
