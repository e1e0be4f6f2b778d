package record

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/sink/record/ring"
)

// request is one clip waiting for its video.
type request struct {
	of     event.Event
	stream string
	from   time.Time
	until  time.Time
	// open is true while a span: track clip waits for its track to end.
	open bool
}

type trackKey struct {
	stream string
	id     uint64
}

// clip is a finished clip file, for retention.
type clip struct {
	path  string
	at    time.Time
	bytes int64
}

// clipper turns events into clips: it waits until the buffer holds the
// clip's whole span (or gives up waiting), cuts it with ffmpeg and emits
// clip.ready.
type clipper struct {
	s       *Sink
	started bool

	mu      sync.Mutex
	pending []*request
	cutting []*request             // being cut: their segments stay pinned
	tracks  map[trackKey]time.Time // when each live track started
	clips   []clip                 // finished clips, oldest first
}

func newClipper(s *Sink) *clipper {
	c := &clipper{s: s, tracks: map[trackKey]time.Time{}}
	_ = filepath.WalkDir(filepath.Join(s.cfg.Dir, "clips"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".mp4") {
			return nil
		}
		if info, err := d.Info(); err == nil {
			c.clips = append(c.clips, clip{path: p, at: info.ModTime(), bytes: info.Size()})
		}
		return nil
	})
	slices.SortFunc(c.clips, func(a, b clip) int { return a.at.Compare(b.at) })
	return c
}

// observe notes track starts and ends and queues a clip for each event the
// configuration wants.
func (c *clipper) observe(stream string, e event.Event) {
	cfg := &c.s.cfg
	key := trackKey{stream, e.TrackID}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e.Type {
	case event.ClipReady:
		return
	case event.TrackStarted:
		c.tracks[key] = e.Time
	case event.TrackEnded:
		delete(c.tracks, key)
		for _, r := range c.pending {
			if r.open && r.stream == stream && r.of.TrackID == e.TrackID {
				r.open = false
				r.until = minTime(e.Time.Add(cfg.PostCapture), r.from.Add(cfg.MaxClip))
			}
		}
	}
	if !cfg.wants(e) {
		return
	}
	r := &request{of: e, stream: stream, from: e.Time.Add(-cfg.PreCapture), until: e.Time.Add(cfg.PostCapture)}
	if cfg.Span == SpanTrack && e.TrackID != 0 {
		if t0, ok := c.tracks[key]; ok {
			r.from = minTime(r.from, t0.Add(-cfg.PreCapture))
			r.open = true
		}
		if r.from.Before(r.until.Add(-cfg.MaxClip)) {
			r.from = r.until.Add(-cfg.MaxClip)
		}
	}
	c.pending = append(c.pending, r)
}

// pinned reports whether a waiting clip needs seg (the age limit spares it).
func (c *clipper) pinned(seg ring.Segment) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range slices.Concat(c.pending, c.cutting) {
		if ring.SafeName(r.stream) == seg.Stream && seg.End().After(r.from) {
			return true
		}
	}
	return false
}

// grace is how long past a clip's end the clipper waits for segments that
// cover it: ffmpeg lists a segment only when the next key frame arrives.
func (c *clipper) grace() time.Duration { return 2*c.s.cfg.Segment + rtspTimeout }

func (c *clipper) run(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, r := range c.due(time.Now()) {
				// A clip being cut completes even when the sink closes.
				c.cut(context.WithoutCancel(ctx), r, true)
			}
		}
	}
}

// due takes the requests whose video is recorded (or that waited long
// enough) off the pending list.
func (c *clipper) due(now time.Time) []*request {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*request
	keep := c.pending[:0]
	for _, r := range c.pending {
		if r.open {
			if now.Before(r.from.Add(c.s.cfg.MaxClip)) {
				keep = append(keep, r)
				continue
			}
			r.open, r.until = false, r.from.Add(c.s.cfg.MaxClip)
		}
		_, newest, ok := c.s.ring.Span(r.stream)
		if (ok && !newest.Before(r.until)) || now.After(r.until.Add(c.grace())) {
			out = append(out, r)
			c.cutting = append(c.cutting, r)
			continue
		}
		keep = append(keep, r)
	}
	clear(c.pending[len(keep):])
	c.pending = keep
	return out
}

// flush cuts every waiting clip from what was recorded (the sink is
// closing: no clip.ready can be delivered any more).
func (c *clipper) flush(ctx context.Context) {
	c.mu.Lock()
	rs := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, r := range rs {
		if ctx.Err() != nil {
			return
		}
		c.cut(ctx, r, false)
	}
}

// cut writes r's clip and, when announce is set, emits clip.ready: with the
// clip, or with clip_error saying why there is none.
func (c *clipper) cut(ctx context.Context, r *request, announce bool) {
	rel, dur, err := c.write(ctx, r)
	c.mu.Lock()
	if i := slices.Index(c.cutting, r); i >= 0 {
		c.cutting = slices.Delete(c.cutting, i, i+1)
	}
	c.mu.Unlock()
	if err != nil {
		c.s.log.Warn("record: no clip for event", "id", r.of.ID, "type", r.of.Type, "stream", r.stream, "err", err)
	}
	if !announce {
		return
	}
	e := event.New(event.ClipReady, r.of.Pipeline, r.stream)
	if e.Pipeline == "" {
		e.Pipeline = c.s.res.Pipeline
	}
	e.ClipOf, e.TrackID, e.Label = r.of.ID, r.of.TrackID, r.of.Label
	if err != nil {
		e.ClipError = err.Error()
	} else {
		e.Clip, e.ClipDuration = rel, dur
	}
	c.s.emit(r.stream, e)
}

// write cuts r's span from the segments that cover it into an MP4 (copy, no
// re-encoding, faststart) and returns its path relative to dir and its
// duration in seconds.
func (c *clipper) write(ctx context.Context, r *request) (string, float64, error) {
	segs := c.s.ring.Covering(r.stream, r.from, r.until)
	if len(segs) == 0 {
		oldest, _, ok := c.s.ring.Span(r.stream)
		switch {
		case !ok:
			return "", 0, fmt.Errorf("nothing is recorded for stream %q (the recorder is down, or the disk is full)", r.stream)
		case r.until.Before(oldest):
			return "", 0, fmt.Errorf("the event at %s is older than the recording buffer, which starts at %s",
				r.of.Time.UTC().Format(time.RFC3339Nano), oldest.UTC().Format(time.RFC3339Nano))
		default:
			return "", 0, fmt.Errorf("no video was recorded from %s to %s (a recording gap)",
				r.from.UTC().Format(time.RFC3339Nano), r.until.UTC().Format(time.RFC3339Nano))
		}
	}
	rel := filepath.Join("clips", ring.SafeName(r.stream), ring.SafeName(r.of.ID)+".mp4")
	out := filepath.Join(c.s.cfg.Dir, rel)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", 0, fmt.Errorf("clip directory: %w", err)
	}
	var list strings.Builder
	list.WriteString("ffconcat version 1.0\n")
	for i, s := range segs {
		p, _ := filepath.Abs(s.Path)
		fmt.Fprintf(&list, "file '%s'\n", strings.ReplaceAll(p, "'", `'\''`))
		if i == len(segs)-1 && r.until.Before(s.End()) {
			// The end needs no key frame: stop the last segment at the
			// clip's end (outpoint is in the file's own timestamps).
			if st, err := c.startTime(ctx, s.Path); err == nil {
				fmt.Fprintf(&list, "outpoint %.6f\n", st+r.until.Sub(s.Start).Seconds())
			}
		}
	}
	listPath := out + ".txt"
	if err := os.WriteFile(listPath, []byte(list.String()), 0o644); err != nil {
		return "", 0, fmt.Errorf("clip list: %w", err)
	}
	defer os.Remove(listPath)
	tmp := out + ".part"
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := command(ctx, c.s.ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-y",
		"-f", "concat", "-safe", "0", "-i", listPath, "-map", "0:v", "-c", "copy", "-movflags", "+faststart", "-f", "mp4", tmp)
	if msg, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", 0, fmt.Errorf("ffmpeg could not cut the clip: %v: %s", err, lastLine(string(msg)))
	}
	dur, err := c.duration(ctx, tmp)
	if err != nil {
		_ = os.Remove(tmp)
		return "", 0, err
	}
	if err := os.Rename(tmp, out); err != nil {
		_ = os.Remove(tmp)
		return "", 0, fmt.Errorf("clip: %w", err)
	}
	if info, err := os.Stat(out); err == nil {
		c.mu.Lock()
		c.clips = append(c.clips, clip{path: out, at: info.ModTime(), bytes: info.Size()})
		c.mu.Unlock()
	}
	return rel, dur, nil
}

// duration returns a media file's duration in seconds, as ffprobe reads it.
func (c *clipper) duration(ctx context.Context, path string) (float64, error) {
	out, err := command(ctx, c.s.ffprobe, "-v", "error", "-show_entries", "format=duration",
		"-of", "default=nw=1:nk=1", path).Output()
	if err != nil {
		return 0, fmt.Errorf("ffprobe cannot read the clip: %w", err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("ffprobe reads no duration from the clip (%q)", strings.TrimSpace(string(out)))
	}
	return d, nil
}

// startTime returns the first timestamp of a media file, in seconds.
func (c *clipper) startTime(ctx context.Context, path string) (float64, error) {
	out, err := command(ctx, c.s.ffprobe, "-v", "error", "-show_entries", "format=start_time",
		"-of", "default=nw=1:nk=1", path).Output()
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
}

// prune deletes clips past retain.max_age and, oldest first, past
// retain.clips_max_bytes.
func (c *clipper) prune(now time.Time) {
	rt := c.s.cfg.Retain
	c.mu.Lock()
	var gone []clip
	var total int64
	for _, cl := range c.clips {
		total += cl.bytes
	}
	for len(c.clips) > 0 {
		cl := c.clips[0]
		old := rt.MaxAge > 0 && now.Sub(cl.at) > rt.MaxAge
		big := rt.ClipsMaxBytes > 0 && total > rt.ClipsMaxBytes
		if !old && !big {
			break
		}
		gone = append(gone, cl)
		total -= cl.bytes
		c.clips = c.clips[1:]
	}
	c.mu.Unlock()
	for _, cl := range gone {
		_ = os.Remove(cl.path)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
