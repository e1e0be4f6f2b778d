package preview

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/browsertest"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/stages"
)

// makeClip encodes a real small MP4 (H.264, faststart, 3 s at 25 fps) with
// ffmpeg, as the recording sink's clips are, at dir/rel.
func makeClip(t *testing.T, dir, rel string) {
	t.Helper()
	ff := realpart.Command(t, realpart.FFmpeg, "ffmpeg")
	out := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ff, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-t", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-y", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
}

type reviewFixture struct {
	s       *Sink
	base    string
	token   string
	crossed event.Event // the event that has a clip
}

// reviewSink starts a sink with the review page and writes events to it
// the way the runner does: zone and line events on real video frames (so
// they get snapshots), spread over three hours, then a clip.ready for the
// last line crossing as an image-less frame (an Emit event).
func reviewSink(t *testing.T) reviewFixture {
	t.Helper()
	c := loadClip(t)
	clips := t.TempDir()
	makeClip(t, clips, "lobby/2026-12-02T01-00-00Z.mp4")
	cfg := testConfig()
	cfg.Token = "review-token"
	cfg.Review = &ReviewConfig{ClipsDir: clips}
	s, base := startSink(t, cfg)
	now := time.Now().UTC().Truncate(time.Hour)
	occ := func(n int) *int { return &n }
	var crossed event.Event
	seq := uint64(1)
	for h := 2; h >= 0; h-- {
		at := now.Add(-time.Duration(h) * time.Hour).Add(10 * time.Minute)
		for i := 0; i <= 2-h; i++ { // 1, 2, then 3 entries per hour
			e := event.New(event.ZoneEntered, "p", "lobby")
			e.Time, e.TrackID, e.Label, e.Zone, e.Occupancy = at.Add(time.Duration(i)*time.Second), uint64(i+1), "person", "entrance", occ(i+1)
			l := event.New(event.LineCrossed, "p", "lobby")
			l.Time, l.TrackID, l.Label, l.Line, l.Direction, l.Count = e.Time, e.TrackID, "car", "gate", "in", i+1
			f := c.frame("lobby", seq)
			seq++
			f.Events = []event.Event{e, l}
			if err := s.Write(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			f.Release()
			crossed = l
		}
	}
	ready := event.New(event.ClipReady, "p", "lobby")
	ready.ClipOf, ready.Clip, ready.ClipDuration = crossed.ID, "lobby/2026-12-02T01-00-00Z.mp4", 3
	if err := s.Write(context.Background(), &stages.Frame{Stream: "lobby", Events: []event.Event{ready}}); err != nil {
		t.Fatal(err)
	}
	return reviewFixture{s: s, base: base, token: cfg.Token, crossed: crossed}
}

func (fx reviewFixture) get(t *testing.T, path string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", fx.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+fx.token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (fx reviewFixture) events(t *testing.T, query string) []reviewItem {
	t.Helper()
	resp := fx.get(t, "/api/review/events?"+query)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("events?%s: %d %s", query, resp.StatusCode, b)
	}
	var out []reviewItem
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReviewAPI(t *testing.T) {
	loadClip(t)
	matcheck.Leaks(t) // snapshots encode the frame's Mat: nothing may leak
	fx := reviewSink(t)
	all := fx.events(t, "")
	if len(all) != 13 || all[0].Type != event.ClipReady {
		t.Fatalf("%d events, first %s; want 13 (6 zone, 6 line, 1 clip.ready), newest first", len(all), all[0].Type)
	}
	now := time.Now().UTC().Truncate(time.Hour)
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"type=zone.entered", 6},
		{"label=car", 6},
		{"zone=entrance", 6},
		{"zone=gate&type=line.crossed", 6},
		{"stream=lobby", 13},
		{"stream=yard", 0},
		{"since=" + now.Format(time.RFC3339), 7}, // 3 zone + 3 line + clip.ready this hour
		{"since=" + now.Add(-2*time.Hour).Format(time.RFC3339) + "&until=" + now.Add(-time.Hour).Format(time.RFC3339), 2},
		{"type=line.crossed&limit=2", 2},
	} {
		if got := fx.events(t, tt.query); len(got) != tt.want {
			t.Errorf("events?%s: %d, want %d", tt.query, len(got), tt.want)
		}
	}
	// The crossing with the clip points to it; every zone/line event has a
	// snapshot (a JPEG of its frame), clip.ready has none.
	for _, it := range all {
		if it.ID == fx.crossed.ID && (it.ClipURL != "clips/lobby/2026-12-02T01-00-00Z.mp4" || it.ClipSeconds != 3) {
			t.Errorf("crossing with a clip: %+v", it)
		}
		if (it.SnapshotURL == "") != (it.Type == event.ClipReady) {
			t.Errorf("%s: snapshot %q", it.Type, it.SnapshotURL)
		}
	}
	resp := fx.get(t, "/"+all[1].SnapshotURL)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(b) < 1000 || b[0] != 0xFF || b[1] != 0xD8 {
		t.Fatalf("snapshot: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}

	// Counts per hour: 1, 2, 3 entries and crossings over three hours.
	resp = fx.get(t, "/api/review/hourly")
	var h hourly
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	if len(h.Hours) != 3 || !h.Hours[0].Equal(now.Add(-2*time.Hour)) || len(h.Series) != 2 {
		t.Fatalf("hourly: %+v", h)
	}
	for _, s := range h.Series {
		if fmt.Sprint(s.Counts) != "[1 2 3]" || s.Stream != "lobby" {
			t.Errorf("hourly %s %s: %v, want [1 2 3]", s.Kind, s.Name, s.Counts)
		}
	}

	// Clips are served with ranges (a video element seeks), nothing outside
	// clips_dir, and nothing without the token.
	resp = fx.get(t, "/clips/lobby/2026-12-02T01-00-00Z.mp4", "Range", "bytes=0-99")
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Type") != "video/mp4" || resp.ContentLength != 100 {
		t.Fatalf("clip range: %d %s %d", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength)
	}
	for _, p := range []string{"/clips/../../etc/passwd", "/clips/lobby/../../x", "/clips/missing.mp4"} {
		if resp := fx.get(t, p); resp.StatusCode == 200 {
			t.Errorf("%s: served", p)
		}
	}
	for _, p := range []string{"/review", "/api/review/events", "/clips/lobby/2026-12-02T01-00-00Z.mp4"} {
		resp, err := http.Get(fx.base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without the token: %d", p, resp.StatusCode)
		}
	}
	if resp := fx.get(t, "/api/review/events?since=yesterday"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad since: %d", resp.StatusCode)
	}
}

// TestReviewChromium opens the review page in Debian's Chromium: the list
// renders with its snapshots and the hourly chart, and the clip (a real
// H.264 MP4) plays: readyState >= 2 and currentTime advances.
// OSPREY_REVIEW_SCREENSHOT keeps the screenshot (docs/preview-review.png).
func TestReviewChromium(t *testing.T) {
	browser := browsertest.Need(t)
	fx := reviewSink(t)
	shot := os.Getenv("OSPREY_REVIEW_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "review.png")
	}
	r, err := browser.Review(fx.base+"/review?token="+fx.token, shot)
	t.Logf("chromium: %d rows, %d snapshots loaded, %d clips, %d series, %d bars; video readyState %d, currentTime %.2f -> %.2f s, width %d",
		r.Rows, r.SnapshotsLoaded, r.Clips, r.Series, r.Bars, r.ReadyState, r.CurrentTime0, r.CurrentTime1, r.VideoWidth)
	if err != nil {
		t.Fatalf("%v (console %v)", err, r.Console)
	}
	if r.Error != "" || !r.Loaded || r.Rows != 13 || r.SnapshotsLoaded == 0 || r.Series != 2 || r.Bars != 6 {
		t.Fatalf("page: %+v", r)
	}
	if r.Clips != 2 { // the crossing and its clip.ready
		t.Fatalf("%d rows with a clip, want 2", r.Clips)
	}
	if r.ReadyState < 2 || r.CurrentTime1 <= r.CurrentTime0 || r.VideoWidth != 320 || r.VideoError != "" {
		t.Fatalf("clip did not play: readyState %d, currentTime %.2f -> %.2f, width %d, error %q (console %v)",
			r.ReadyState, r.CurrentTime0, r.CurrentTime1, r.VideoWidth, r.VideoError, r.Console)
	}
}

func TestReviewValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		rc   ReviewConfig
		err  string
	}{
		{"defaults", ReviewConfig{}, ""},
		{"max events", ReviewConfig{MaxEvents: -1}, "review.max_events: -1 is out of range: use 1 to 1000000"},
		{"quality", ReviewConfig{SnapshotQuality: 101}, "review.snapshot_quality: 101 is out of range: use 1 to 100"},
		{"snapshot bytes", ReviewConfig{MaxSnapshotBytes: -5}, "review.max_snapshot_bytes: -5 is negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			c.Review = &tt.rc
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Fatalf("got %q, want %q", got, tt.err)
			}
		})
	}
}

// BenchmarkReviewObserve measures what the review page adds to Write for a
// frame with an event: the snapshot's JPEG (768x576 vtest.avi frame) and
// the store. Frames without events cost nothing.
func BenchmarkReviewObserve(b *testing.B) {
	c := loadClip(b)
	rv := newReviewStore(ReviewConfig{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := c.frame("lobby", uint64(i+1))
		e := event.New(event.ZoneEntered, "p", "lobby")
		f.Events = []event.Event{e}
		rv.observe(f)
		f.Release()
	}
	b.ReportMetric(float64(rv.snapBytes)/float64(len(rv.snaps)), "bytes/snapshot")
}

// Built through the registry, the preview is an event sink only with
// review set: then the runner gives it every event (clip.ready included)
// on a blocking queue; without review it keeps its newest-frame link.
func TestReviewMakesAnEventSink(t *testing.T) {
	p, ok := stages.NewRegistry().AddSink(Plugin()).Sink("preview")
	if !ok {
		t.Fatal("no preview plugin")
	}
	for _, tt := range []struct {
		section string
		events  bool
	}{{"listen: \"\"\n", false}, {"listen: \"\"\nreview: {clips_dir: /tmp}\n", true}} {
		cfg := p.Spec.Defaults()
		if err := yaml.UnmarshalWithOptions([]byte(tt.section), cfg, yaml.DisallowUnknownField()); err != nil {
			t.Fatal(err)
		}
		s, err := p.Build(cfg, &stages.Resources{Pipeline: "p", Streams: []string{"lobby"}, Shared: &stages.Shared{}})
		if err != nil {
			t.Fatal(err)
		}
		es, isEvent := s.(stages.EventSink)
		if isEvent != tt.events || (isEvent && es.EventsOnly()) {
			t.Errorf("%q: event sink %v, want %v", tt.section, isEvent, tt.events)
		}
		if _, ok := s.(interface{ RefreshOverlays(string) error }); !ok {
			t.Errorf("%q: RefreshOverlays lost (hot reload needs it)", tt.section)
		}
		_ = s.Close(context.Background())
	}
}
