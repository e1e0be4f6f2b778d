package preview

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// ReviewConfig turns on the review page (/review): the latest events, each
// with a JPEG snapshot of its frame, filtered by stream, type, label, zone
// or line and time; the clip of an event once a clip.ready names it (served
// from ClipsDir); and counts per zone and line per hour. Events are kept in
// memory: a restart starts an empty list.
type ReviewConfig struct {
	// ClipsDir is the recording sink's dir (sinks.record.dir): clip.ready
	// events name clips relative to it. Empty serves no clips.
	ClipsDir string `yaml:"clips_dir"`
	// MaxEvents is how many events are kept (default 10000); the oldest go
	// first, with their snapshots.
	MaxEvents int `yaml:"max_events"`
	// MaxSnapshotBytes bounds the snapshots' memory (default 64 MiB); past
	// it the oldest snapshots are dropped, their events kept.
	MaxSnapshotBytes int64 `yaml:"max_snapshot_bytes"`
	// SnapshotQuality is the snapshots' JPEG quality, 1-100 (default 75).
	SnapshotQuality int `yaml:"snapshot_quality"`
}

func (c ReviewConfig) withDefaults() ReviewConfig {
	if c.MaxEvents == 0 {
		c.MaxEvents = 10000
	}
	if c.MaxSnapshotBytes == 0 {
		c.MaxSnapshotBytes = 64 << 20
	}
	if c.SnapshotQuality == 0 {
		c.SnapshotQuality = 75
	}
	return c
}

func (c ReviewConfig) validate() []error {
	c = c.withDefaults()
	var errs []error
	bad := func(p, format string, a ...any) { errs = append(errs, stages.Errorf(p, format, a...)) }
	if c.MaxEvents < 1 || c.MaxEvents > 1_000_000 {
		bad("review.max_events", "%d is out of range: use 1 to 1000000", c.MaxEvents)
	}
	if c.MaxSnapshotBytes < 0 {
		bad("review.max_snapshot_bytes", "%d is negative", c.MaxSnapshotBytes)
	}
	if c.SnapshotQuality < 1 || c.SnapshotQuality > 100 {
		bad("review.snapshot_quality", "%d is out of range: use 1 to 100", c.SnapshotQuality)
	}
	return errs
}

// reviewStore keeps the events the review page lists. Safe for concurrent
// use: Write adds, HTTP handlers read.
type reviewStore struct {
	cfg ReviewConfig

	mu        sync.Mutex
	events    []event.Event          // oldest first
	snaps     map[string][]byte      // event ID -> JPEG
	snapOrder []string               // snapshot IDs, oldest first
	snapBytes int64                  // sum of len(snaps)
	clips     map[string]event.Event // event ID -> its clip.ready
}

func newReviewStore(c ReviewConfig) *reviewStore {
	return &reviewStore{cfg: c.withDefaults(), snaps: map[string][]byte{}, clips: map[string]event.Event{}}
}

// snapshotWorthy reports whether an event shows something in its frame
// (source and clip events do not).
func snapshotWorthy(t event.Type) bool {
	return !strings.HasPrefix(string(t), "source.") && t != event.ClipReady
}

// observe records f's events, with one snapshot of f's image for those that
// show something. The image is encoded here, in Write: events are rare next
// to frames, and the frame is released once Write returns.
func (r *reviewStore) observe(f *stages.Frame) {
	if len(f.Events) == 0 {
		return
	}
	var jpg []byte
	if slices.ContainsFunc(f.Events, func(e event.Event) bool { return snapshotWorthy(e.Type) }) {
		if img, err := picture.Mat(f); err == nil {
			if buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, r.cfg.SnapshotQuality}); err == nil {
				jpg = bytes.Clone(buf.GetBytes())
				buf.Close()
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range f.Events {
		if e.Stream == "" {
			e.Stream = f.Stream
		}
		r.events = append(r.events, e)
		if e.Type == event.ClipReady && e.ClipOf != "" && e.Clip != "" {
			r.clips[e.ClipOf] = e
		}
		if jpg != nil && snapshotWorthy(e.Type) && r.cfg.MaxSnapshotBytes > 0 {
			r.snaps[e.ID] = jpg
			r.snapOrder = append(r.snapOrder, e.ID)
			r.snapBytes += int64(len(jpg))
		}
	}
	for len(r.events) > r.cfg.MaxEvents {
		old := r.events[0]
		r.events = r.events[1:]
		delete(r.clips, old.ID)
		r.dropSnapLocked(old.ID)
	}
	for r.snapBytes > r.cfg.MaxSnapshotBytes && len(r.snapOrder) > 0 {
		r.dropSnapLocked(r.snapOrder[0])
	}
}

func (r *reviewStore) dropSnapLocked(id string) {
	b, ok := r.snaps[id]
	if !ok {
		return
	}
	delete(r.snaps, id)
	r.snapBytes -= int64(len(b))
	if i := slices.Index(r.snapOrder, id); i >= 0 {
		r.snapOrder = slices.Delete(r.snapOrder, i, i+1)
	}
}

// reviewFilter selects events; empty fields match everything.
type reviewFilter struct {
	stream, typ, label, zone string // zone matches a zone or a line name
	since, until             time.Time
}

func parseFilter(r *http.Request) (reviewFilter, error) {
	q := r.URL.Query()
	f := reviewFilter{stream: q.Get("stream"), typ: q.Get("type"), label: q.Get("label"), zone: q.Get("zone")}
	for _, p := range []struct {
		key string
		t   *time.Time
	}{{"since", &f.since}, {"until", &f.until}} {
		if v := q.Get(p.key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, errors.New("preview: " + p.key + "=" + v + " is not an RFC 3339 time (2026-12-02T01:00:00Z)")
			}
			*p.t = t
		}
	}
	return f, nil
}

func (f reviewFilter) match(e event.Event) bool {
	return (f.stream == "" || e.Stream == f.stream) && (f.typ == "" || string(e.Type) == f.typ) &&
		(f.label == "" || e.Label == f.label) && (f.zone == "" || e.Zone == f.zone || e.Line == f.zone) &&
		(f.since.IsZero() || !e.Time.Before(f.since)) && (f.until.IsZero() || e.Time.Before(f.until))
}

// reviewItem is one entry of GET /api/review/events: the event, and where
// its snapshot and clip are.
type reviewItem struct {
	event.Event
	SnapshotURL string  `json:"snapshot_url,omitempty"`
	ClipURL     string  `json:"clip_url,omitempty"`
	ClipSeconds float64 `json:"clip_seconds,omitempty"`
}

// list returns the matching events, newest first, at most limit.
func (r *reviewStore) list(f reviewFilter, limit int, clips bool) []reviewItem {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []reviewItem{}
	for i := len(r.events) - 1; i >= 0 && len(out) < limit; i-- {
		e := r.events[i]
		if !f.match(e) {
			continue
		}
		it := reviewItem{Event: e}
		if _, ok := r.snaps[e.ID]; ok {
			it.SnapshotURL = "api/review/snapshot/" + e.ID
		}
		if c, ok := r.clips[e.ID]; ok && clips {
			it.ClipURL, it.ClipSeconds = "clips/"+c.Clip, c.ClipDuration
		}
		if e.Type == event.ClipReady && e.Clip != "" && clips {
			it.ClipURL, it.ClipSeconds = "clips/"+e.Clip, e.ClipDuration
		}
		out = append(out, it)
	}
	return out
}

// hourlySeries is one zone's entries or one line's crossings per hour.
type hourlySeries struct {
	Kind   string `json:"kind"` // zone or line
	Stream string `json:"stream"`
	Name   string `json:"name"`
	Counts []int  `json:"counts"`
}

// hourly is the body of GET /api/review/hourly.
type hourly struct {
	Hours  []time.Time    `json:"hours"` // the start of each hour, UTC
	Series []hourlySeries `json:"series"`
}

// hourly counts zone.entered per zone and line.crossed per line in each UTC
// hour from the first to the last matching event.
func (r *reviewStore) hourly(f reviewFilter) hourly {
	r.mu.Lock()
	defer r.mu.Unlock()
	type key struct{ kind, stream, name string }
	counts := map[key]map[time.Time]int{}
	var first, last time.Time
	for _, e := range r.events {
		if !f.match(e) {
			continue
		}
		var k key
		switch e.Type {
		case event.ZoneEntered:
			k = key{"zone", e.Stream, e.Zone}
		case event.LineCrossed:
			k = key{"line", e.Stream, e.Line}
		default:
			continue
		}
		h := e.Time.UTC().Truncate(time.Hour)
		if first.IsZero() || h.Before(first) {
			first = h
		}
		if h.After(last) {
			last = h
		}
		if counts[k] == nil {
			counts[k] = map[time.Time]int{}
		}
		counts[k][h]++
	}
	out := hourly{Hours: []time.Time{}, Series: []hourlySeries{}}
	if first.IsZero() {
		return out
	}
	for h := first; !h.After(last); h = h.Add(time.Hour) {
		out.Hours = append(out.Hours, h)
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return strings.Compare(a.kind+"\x00"+a.stream+"\x00"+a.name, b.kind+"\x00"+b.stream+"\x00"+b.name)
	})
	for _, k := range keys {
		s := hourlySeries{Kind: k.kind, Stream: k.stream, Name: k.name, Counts: make([]int, len(out.Hours))}
		for i, h := range out.Hours {
			s.Counts[i] = counts[k][h]
		}
		out.Series = append(out.Series, s)
	}
	return out
}

func (r *reviewStore) snapshot(id string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.snaps[id]
	return b, ok
}

// reviewRoutes adds the review page and its API to mux (behind the
// sink's token, like every route).
func (s *Sink) reviewRoutes(mux *http.ServeMux) {
	rv := s.review
	page := reviewHTML()
	mux.HandleFunc("GET /review", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /api/review/events", func(w http.ResponseWriter, r *http.Request) {
		f, err := parseFilter(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		limit := 200
		if v := r.URL.Query().Get("limit"); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				limit = min(n, 5000)
			}
		}
		writeJSON(w, rv.list(f, limit, rv.cfg.ClipsDir != ""))
	})
	mux.HandleFunc("GET /api/review/hourly", func(w http.ResponseWriter, r *http.Request) {
		f, err := parseFilter(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, rv.hourly(f))
	})
	mux.HandleFunc("GET /api/review/snapshot/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := rv.snapshot(r.PathValue("id"))
		if !ok {
			http.Error(w, "preview: no snapshot for that event (none taken, or dropped past review.max_snapshot_bytes)", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Cache-Control", "private, max-age=86400")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET /clips/{path...}", func(w http.ResponseWriter, r *http.Request) {
		s.serveClip(w, r, r.PathValue("path"))
	})
}

// serveClip serves a clip file from clips_dir, with Range support (a video
// element seeks with ranges). os.OpenInRoot refuses paths that leave the
// directory, symlinks included.
func (s *Sink) serveClip(w http.ResponseWriter, r *http.Request, name string) {
	dir := s.review.cfg.ClipsDir
	if dir == "" {
		http.Error(w, "preview: no clips: set sinks.preview.review.clips_dir to the recording sink's dir", http.StatusNotFound)
		return
	}
	clean := path.Clean("/" + name)[1:]
	if clean == "" || clean != name {
		http.Error(w, "preview: bad clip path", http.StatusBadRequest)
		return
	}
	f, err := os.OpenInRoot(dir, clean)
	if err != nil {
		http.Error(w, "preview: no clip "+clean, http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		http.Error(w, "preview: no clip "+clean, http.StatusNotFound)
		return
	}
	if strings.HasSuffix(clean, ".mp4") {
		w.Header().Set("Content-Type", "video/mp4")
	}
	http.ServeContent(w, r, clean, fi.ModTime(), f)
}

// reviewHTML is the review page with its script and style inlined, like
// the live page.
func reviewHTML() []byte {
	read := func(name string) string {
		b, _ := webFS.ReadFile("web/" + name) // cannot fail: embedded at build time
		return string(b)
	}
	html := read("review.html")
	html = strings.Replace(html, "/*STYLE*/", read("style.css")+read("review.css"), 1)
	html = strings.Replace(html, "/*SCRIPT*/", read("review.js"), 1)
	return []byte(html)
}
