package preview

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// fleetFunc reads the fleet's status (fleet.Node.Status in a fleet node).
type fleetFunc = func(ctx context.Context) (any, error)

// fleetTimeout bounds one status read: a page polls, and a NATS server
// that does not answer must not pile up requests.
const fleetTimeout = 3 * time.Second

// SetFleet sets the function whose result GET /api/fleet returns under
// "status" (called once per request, from HTTP goroutines, with a context
// of a few seconds), which the fleet page (/fleet) lists: every camera of
// the fleet, the node holding it and a link to that node's preview. Nil, or
// never called: the page says fleet mode is off.
func (s *Sink) SetFleet(fn func(ctx context.Context) (any, error)) {
	if fn == nil {
		s.fleet.Store(nil)
		return
	}
	s.fleet.Store(&fn)
}

// fleetJSON is the body of GET /api/fleet.
type fleetJSON struct {
	// Enabled is false on a node that runs without a fleet: section.
	Enabled bool `json:"enabled"`
	// Status is the fleet as `pipeline fleet status --json` prints it,
	// with self naming this node.
	Status any `json:"status,omitempty"`
	// Error says why the status could not be read (NATS unreachable).
	Error string `json:"error,omitempty"`
}

func (s *Sink) fleetRoutes(mux *http.ServeMux) {
	page := fleetHTML()
	mux.HandleFunc("GET /fleet", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /api/fleet", s.handleFleet)
}

func (s *Sink) handleFleet(w http.ResponseWriter, r *http.Request) {
	fn := s.fleet.Load()
	if fn == nil {
		writeJSON(w, fleetJSON{})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), fleetTimeout)
	defer cancel()
	st, err := (*fn)(ctx)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(fleetJSON{Enabled: true, Error: err.Error()})
		return
	}
	writeJSON(w, fleetJSON{Enabled: true, Status: st})
}

// fleetHTML is the fleet page with its script and style inlined, like the
// live page.
func fleetHTML() []byte {
	read := func(name string) string {
		b, _ := webFS.ReadFile("web/" + name) // cannot fail: embedded at build time
		return string(b)
	}
	html := read("fleet.html")
	html = strings.Replace(html, "/*STYLE*/", read("style.css")+read("fleet.css"), 1)
	html = strings.Replace(html, "/*SCRIPT*/", read("fleet.js"), 1)
	return []byte(html)
}
