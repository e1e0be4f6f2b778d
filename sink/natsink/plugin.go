package natsink

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/sink/hass"
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
			cc.Node = res.Node
			cc.Streams = func() []hass.Stream { return layout(res) }
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
				accepted := prometheus.NewCounterFunc(prometheus.CounterOpts{
					Name: "osprey_events_accepted_total", Help: "Events the NATS sink stored in its spool (from then on they survive a crash of the process; a power loss too with spool.fsync always).",
				}, func() float64 { return float64(s.Stats().Accepted) })
				published := prometheus.NewCounterFunc(prometheus.CounterOpts{
					Name: "osprey_events_published_total", Help: "Events the NATS server acknowledged (replays of duplicates included).",
				}, func() float64 { return float64(s.Stats().Published) })
				dups := prometheus.NewCounterFunc(prometheus.CounterOpts{
					Name: "osprey_events_duplicates_total", Help: "Acknowledged events JetStream had stored already (replays after a crash, dropped by Nats-Msg-Id).",
				}, func() float64 { return float64(s.Stats().Duplicates) })
				for _, c := range []prometheus.Collector{spooled, accepted, published, dups} {
					if err := res.Metrics.Register(c); err != nil {
						return nil, fmt.Errorf("natsink: metric: %w", err)
					}
				}
			}
			return s, nil
		})
	p.Control = true
	return p
}

// layout lists the streams with the zones and lines the track stage holds,
// for the MQTT state entities.
func layout(res *stages.Resources) []hass.Stream {
	out := make([]hass.Stream, 0, len(res.Streams))
	for _, id := range res.Streams {
		st := hass.Stream{ID: id}
		ov := res.Shared.Overlays(id)
		for _, z := range ov.Zones {
			st.Zones = append(st.Zones, z.Name)
		}
		for _, l := range ov.Lines {
			st.Lines = append(st.Lines, l.Name)
		}
		out = append(out, st)
	}
	return out
}
