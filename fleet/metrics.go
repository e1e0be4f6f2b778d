package fleet

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// nodeMetrics are a node's collectors (registered on the pipeline's
// registry, so they appear on its /metrics).
type nodeMetrics struct {
	renewals prometheus.Counter
	acquired prometheus.Counter
	lost     *prometheus.CounterVec
	released *prometheus.CounterVec
	errors   *prometheus.CounterVec

	mu          sync.Mutex
	members     int
	unplaceable []string
	waiting     int
}

func newNodeMetrics(n *Node) *nodeMetrics {
	m := &nodeMetrics{
		renewals: prometheus.NewCounter(prometheus.CounterOpts{Name: "osprey_fleet_lease_renewals_total", Help: "Lease renewals this node made."}),
		acquired: prometheus.NewCounter(prometheus.CounterOpts{Name: "osprey_fleet_leases_acquired_total", Help: "Camera leases this node took."}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "osprey_fleet_leases_lost_total",
			Help: "Camera leases this node lost: taken (another node holds it now) or fenced (not renewed in time)."}, []string{"reason"}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "osprey_fleet_leases_released_total",
			Help: "Camera leases this node gave up: stop, rebalance, removed (from the file), failed (did not start)."}, []string{"reason"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "osprey_fleet_errors_total",
			Help: "Key-value calls that failed, by kind (heartbeat, renew, view, acquire)."}, []string{"op"}),
	}
	return m
}

// register adds the collectors and the node's gauges to reg.
func (m *nodeMetrics) register(reg prometheus.Registerer, n *Node) {
	gauge := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"node": n.o.Node}}, fn)
	}
	cs := []prometheus.Collector{m.renewals, m.acquired, m.lost, m.released, m.errors,
		gauge("osprey_fleet_cameras_held", "Cameras this node holds a lease for and runs.", func() float64 { return float64(n.heldCount()) }),
		gauge("osprey_fleet_capacity", "Cameras this node may run (0: no limit).", func() float64 { return float64(n.o.Capacity) }),
		gauge("osprey_fleet_nodes", "Live nodes this node sees.", func() float64 { m.mu.Lock(); defer m.mu.Unlock(); return float64(m.members) }),
		gauge("osprey_fleet_cameras_unplaceable", "Cameras whose requires no live node offers.", func() float64 {
			m.mu.Lock()
			defer m.mu.Unlock()
			return float64(len(m.unplaceable))
		}),
		gauge("osprey_fleet_cameras_waiting", "Cameras some node could run but none has room for.", func() float64 {
			m.mu.Lock()
			defer m.mu.Unlock()
			return float64(m.waiting)
		}),
	}
	for _, c := range cs {
		_ = reg.Register(c)
	}
}

// setView records what the last plan saw.
func (m *nodeMetrics) setView(v view, unplaceable, waiting []string) {
	m.mu.Lock()
	m.members, m.unplaceable, m.waiting = len(v.members), unplaceable, len(waiting)
	m.mu.Unlock()
}
