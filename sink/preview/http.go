package preview

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

//go:embed web
var webFS embed.FS

const maxOfferBytes = 64 << 10

func (s *Sink) routes() http.Handler {
	mux := http.NewServeMux()
	page := pageHTML()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /api/streams", s.handleStreams)
	mux.HandleFunc("GET /api/stats", s.handleStats)
	mux.HandleFunc("POST /whep/{stream}", s.handleWHEP)
	mux.HandleFunc("DELETE /whep/{stream}/{id}", s.handleWHEPDelete)
	mux.HandleFunc("GET /mjpeg/{stream}", s.handleMJPEG)
	if s.review != nil {
		s.reviewRoutes(mux)
	}
	s.fleetRoutes(mux)
	return s.cors(s.auth(mux))
}

// pageHTML returns the page as one document with its script and style
// inlined, so a token in the page URL is all a browser needs (no asset
// request that would have to carry it).
func pageHTML() []byte {
	read := func(name string) string {
		b, _ := webFS.ReadFile("web/" + name) // cannot fail: embedded at build time
		return string(b)
	}
	html := read("index.html")
	html = strings.Replace(html, "/*STYLE*/", read("style.css"), 1)
	html = strings.Replace(html, "/*SCRIPT*/", read("app.js"), 1)
	return []byte(html)
}

// cors lets pages from cors_origins use the API and WHEP (a dashboard on
// another origin embedding the stream). Preflight requests are answered
// here, before the token check: browsers never send credentials on them.
func (s *Sink) cors(next http.Handler) http.Handler {
	if len(s.cfg.CORSOrigins) == 0 {
		return next
	}
	allowed := func(origin string) bool {
		for _, o := range s.cfg.CORSOrigins {
			if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !allowed(origin) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "Location")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// auth enforces the bearer token (header or ?token=) on every route when one
// is configured.
func (s *Sink) auth(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte(s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.URL.Query().Get("token")
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
			got = strings.TrimPrefix(h, "Bearer ")
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="osprey-preview"`)
			http.Error(w, "preview: missing or wrong token: send Authorization: Bearer <token> or ?token=<token>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// streamInfo is one entry of GET /api/streams.
type streamInfo struct {
	ID      string `json:"id"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Viewers int    `json:"viewers"`
}

func (s *Sink) handleStreams(w http.ResponseWriter, _ *http.Request) {
	s.mu.RLock()
	out := make([]streamInfo, 0, len(s.streams))
	for _, st := range s.streams {
		st.mu.Lock()
		out = append(out, streamInfo{ID: st.id, Width: st.width, Height: st.height, Viewers: int(st.nViewers.Load())})
		st.mu.Unlock()
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, out)
}

// statsJSON is the body of GET /api/stats.
type statsJSON struct {
	Time     time.Time                  `json:"time"`
	Codec    string                     `json:"codec"`
	Preview  map[string]streamStatsJSON `json:"preview"`
	Pipeline any                        `json:"pipeline,omitempty"`
}

func (s *Sink) handleStats(w http.ResponseWriter, _ *http.Request) {
	out := statsJSON{Time: time.Now().UTC(), Codec: s.cfg.Codec, Preview: map[string]streamStatsJSON{}}
	s.mu.RLock()
	for id, st := range s.streams {
		out.Preview[id] = st.snapshot()
	}
	s.mu.RUnlock()
	if fn := s.stats.Load(); fn != nil {
		out.Pipeline = (*fn)()
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// handleWHEP answers a WHEP offer: 201 Created, the SDP answer, and a
// Location to DELETE when the viewer leaves.
func (s *Sink) handleWHEP(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("stream")
	st := s.lookup(id)
	if st == nil {
		http.Error(w, fmt.Sprintf("preview: no stream %q: GET /api/streams lists them", id), http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/sdp") {
		http.Error(w, "preview: WHEP offers must be Content-Type: application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOfferBytes+1))
	if err != nil {
		http.Error(w, "preview: reading the offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxOfferBytes {
		http.Error(w, "preview: SDP offer is larger than 64 KiB", http.StatusRequestEntityTooLarge)
		return
	}
	v, answer, err := s.answer(r.Context(), st, string(body))
	if err != nil {
		code := http.StatusInternalServerError
		var bad errBadOffer
		if errors.As(err, &bad) {
			code = http.StatusBadRequest
		}
		if errors.Is(err, ErrClosed) {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	// Relative to the request URL (/whep/<stream>), so it stays right when
	// Handler is mounted under a prefix.
	w.Header().Set("Location", url.PathEscape(id)+"/"+v.id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

func (s *Sink) handleWHEPDelete(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	v := s.viewers[r.PathValue("id")]
	s.mu.RUnlock()
	if v == nil || v.st.id != r.PathValue("stream") {
		http.Error(w, "preview: no such WHEP session", http.StatusNotFound)
		return
	}
	v.close()
	w.WriteHeader(http.StatusOK)
}
