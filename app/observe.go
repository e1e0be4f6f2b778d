package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/osprey-vision/osprey/metrics"
)

// Stats is the pipeline's live statistics (preview stats panel, NATS control).
type Stats struct {
	Pipeline string           `json:"pipeline"`
	Uptime   float64          `json:"uptime_s"`
	Provider string           `json:"provider"`
	Metrics  metrics.Snapshot `json:"metrics"`
	Streams  []StreamState    `json:"streams"`
	Governor *GovernorState   `json:"governor,omitempty"`
}

// StreamState is one stream's health.
type StreamState struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Up     bool   `json:"up"`
	Reason string `json:"reason,omitempty"`
	Since  string `json:"since,omitempty"`
}

// GovernorState is the latency governor's current level.
type GovernorState struct {
	Level int     `json:"level"`
	Name  string  `json:"name"`
	P99ms float64 `json:"p99_ms"`
}

// Stats returns the current statistics.
func (a *App) Stats() Stats {
	s := Stats{Pipeline: a.cfg.Name, Uptime: time.Since(a.started).Seconds(), Metrics: a.Metrics.Snapshot(), Streams: a.StreamStates()}
	if det := a.stageSpec("detect"); det != nil {
		if p, ok := det.Stage.(interface{ Provider() string }); ok {
			s.Provider = p.Provider()
		}
		if g, ok := det.Stage.(interface {
			GovernorState() (int, string, time.Duration, bool)
		}); ok {
			if level, name, p99, on := g.GovernorState(); on {
				s.Governor = &GovernorState{Level: level, Name: name, P99ms: float64(p99.Microseconds()) / 1000}
			}
		}
	}
	return s
}

// StreamStates returns every configured stream's health, in file order.
func (a *App) StreamStates() []StreamState {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	out := make([]StreamState, 0, len(a.cfg.Streams))
	for _, sc := range a.cfg.Streams {
		st := StreamState{ID: sc.ID, Reason: "connecting"}
		if s, ok := a.sources[sc.ID]; ok {
			st = StreamState{ID: sc.ID, URL: s.URL, Up: s.Up, Reason: s.Reason, Since: s.At.UTC().Format(time.RFC3339)}
		}
		out = append(out, st)
	}
	return out
}

// MetricsAddr returns the metrics server's address once running, or nil.
func (a *App) MetricsAddr() net.Addr {
	addr, _ := a.srvAddr.Load().(net.Addr)
	return addr
}

// serveMetrics serves /metrics and /healthz on addr until the returned stop.
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

// healthz answers 200 when every stream is up, 503 otherwise, with the states.
func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	states := a.StreamStates()
	code := http.StatusOK
	for _, s := range states {
		if !s.Up {
			code = http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": code == http.StatusOK, "streams": states})
}

// StatusLine renders one line of live status: per stream FPS in/out since
// prev, drops and end-to-end p50/p99.
func StatusLine(prev, cur metrics.Snapshot, dt time.Duration) string {
	var parts []string
	for _, name := range cur.StreamNames() {
		c, p := cur.Streams[name], prev.Streams[name]
		var drops uint64
		reasons := map[string]uint64{}
		for k, v := range c.Drops {
			drops += v
			reasons[k[strings.LastIndex(k, "/")+1:]] += v - p.Drops[k]
		}
		var rs []string
		for r, n := range reasons {
			if n > 0 {
				rs = append(rs, fmt.Sprintf("%s %d", r, n))
			}
		}
		sort.Strings(rs)
		up := ""
		if !c.Up && c.In > 0 {
			up = " DOWN"
		}
		line := fmt.Sprintf("%s%s: in %.1f out %.1f fps, detector %.1f/s, drops %d", name, up,
			float64(c.In-p.In)/dt.Seconds(), float64(c.Out-p.Out)/dt.Seconds(),
			float64(c.Inferences-p.Inferences)/dt.Seconds(), drops)
		if len(rs) > 0 {
			line += " (+" + strings.Join(rs, ", ") + ")"
		}
		line += fmt.Sprintf(", e2e p50 %.0fms p99 %.0fms", c.E2EP50, c.E2EP99)
		parts = append(parts, line)
	}
	return strings.Join(parts, " | ")
}
