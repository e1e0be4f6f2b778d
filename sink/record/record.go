// Package record is the recording sink (`sinks.record`): per stream, a
// rolling buffer of encoded segments on disk (package ring), and for the
// configured events an MP4 clip cut from it, announced by a clip.ready event.
//
// An RTSP camera sending H.264 or H.265 is recorded by copying its stream
// (ffmpeg's segment muxer, a supervised child process); every other source
// (files, test://, V4L2, a camera sending MJPEG) by encoding the decoded
// frames with libx264 off the detection path: frames wait in a bounded
// queue that drops for the recorder and never blocks the pipeline. See
// docs/recording.md.
package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/sink/record/ring"
	"github.com/osprey-vision/osprey/stages"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("record: sink closed")

// Sink records every stream and cuts clips. It is an event sink that takes
// every frame (so it sees every event and can encode), and its Write never
// blocks on disk or encoder.
type Sink struct {
	cfg     Config
	res     *stages.Resources
	log     *slog.Logger
	ring    *ring.Ring
	clips   *clipper
	ffmpeg  string
	ffprobe string
	stats   *stats

	mu     sync.Mutex
	recs   map[string]*recorder
	closed bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds the sink: it opens the segment buffer under cfg.Dir and finds
// ffmpeg. Nothing records until frames arrive.
func New(cfg Config, res *stages.Resources) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if res == nil {
		res = &stages.Resources{}
	}
	log := res.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ff, err := exec.LookPath(cfg.FFmpeg)
	if err != nil {
		return nil, fmt.Errorf("record: ffmpeg %q not found: install it (apt-get install ffmpeg) or set sinks.record.ffmpeg: %w", cfg.FFmpeg, err)
	}
	probe := filepath.Join(filepath.Dir(ff), "ffprobe")
	if _, err := os.Stat(probe); err != nil {
		if probe, err = exec.LookPath("ffprobe"); err != nil {
			return nil, fmt.Errorf("record: ffprobe not found next to %s or on the PATH: install ffmpeg: %w", ff, err)
		}
	}
	rg, err := ring.Open(filepath.Join(cfg.Dir, "segments"))
	if err != nil {
		return nil, fmt.Errorf("record: segment buffer in %s: %w (check the directory is writable)", cfg.Dir, err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "clips"), 0o755); err != nil {
		return nil, fmt.Errorf("record: clips directory: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sink{cfg: cfg, res: res, log: log, ring: rg, ffmpeg: ff, ffprobe: probe, stats: newStats(),
		recs: map[string]*recorder{}, ctx: ctx, cancel: cancel}
	s.clips = newClipper(s)
	return s, nil
}

// EventsOnly is false: the recorder takes every frame, to encode those of
// sources without an encoded stream.
func (s *Sink) EventsOnly() bool { return false }

// NeedsImages is true: frames come with their images.
func (s *Sink) NeedsImages() bool { return true }

// Connect starts the housekeeping: clip cutting and retention.
func (s *Sink) Connect(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.clips.started {
		return nil
	}
	s.clips.started = true
	s.wg.Go(func() { s.clips.run(s.ctx) })
	s.wg.Go(s.janitor)
	return nil
}

// Write hands f's image to its stream's recorder (without waiting) and
// queues a clip for each event that wants one. It never blocks on the disk
// or the encoder.
func (s *Sink) Write(_ context.Context, f *stages.Frame) error {
	rec, err := s.recorder(f.Stream)
	if err != nil {
		return err
	}
	if f.Image != nil && rec != nil {
		rec.offer(f)
	}
	for _, e := range f.Events {
		s.clips.observe(f.Stream, e)
	}
	return nil
}

// recorder returns stream's recorder, starting it on the stream's first
// frame; nil for frames without a stream (events emitted for the pipeline).
func (s *Sink) recorder(stream string) (*recorder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if stream == "" {
		return nil, nil
	}
	if r, ok := s.recs[stream]; ok {
		return r, nil
	}
	r := newRecorder(s, stream)
	s.recs[stream] = r
	raw := ""
	if s.res.StreamURL != nil {
		raw = s.res.StreamURL(stream)
	}
	// A redacted stream is encoded from its redacted frames: the camera's
	// own stream still shows what privacy hides.
	if s.cfg.Mode == ModeAuto && isRTSP(raw) && !s.res.Shared.Redacted(stream) {
		s.wg.Go(func() {
			r.runCopy(s.ctx, raw)
			if !r.encoding.Load() {
				// The URL changed or the stream went (hot reload): its next
				// frame starts a recorder afresh.
				s.forget(stream, r)
			}
		})
	} else {
		r.encodeFrames()
	}
	return r, nil
}

// forget drops stream's recorder r, if it is still the current one.
func (s *Sink) forget(stream string, r *recorder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recs[stream] == r && !s.closed {
		delete(s.recs, stream)
	}
}

// isRTSP reports whether raw is an RTSP URL (a camera with an encoded stream).
func isRTSP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "rtsp" || u.Scheme == "rtsps")
}

// Close stops every recorder (ffmpeg finishes its segment), cuts the clips
// still waiting from what was recorded and waits for its goroutines. Events
// are no longer delivered then, so those clips get no clip.ready. It is safe
// to call twice.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	recs := make([]*recorder, 0, len(s.recs))
	for _, r := range s.recs {
		recs = append(recs, r)
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	for _, r := range recs {
		r.wait()
	}
	s.clips.flush(ctx)
	if s.stats.reg != nil {
		s.stats.unregister()
	}
	return nil
}

// janitor applies retention every segment: the buffer's limits (or, when not
// recording continuously, the pre-capture window) and the clips' limits.
func (s *Sink) janitor() {
	t := time.NewTicker(s.cfg.Segment)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.prune(time.Now())
		}
	}
}

// limits are the segment buffer's limits under cfg.
func (s *Sink) limits() ring.Limits {
	l := ring.Limits{MaxAge: s.cfg.Retain.MaxAge, MaxBytes: s.cfg.Retain.MaxBytes, StreamMaxBytes: s.cfg.Retain.StreamMaxBytes}
	if !s.cfg.Continuous && (l.MaxAge == 0 || l.MaxAge > s.cfg.bufferAge()) {
		l.MaxAge = s.cfg.bufferAge()
	}
	return l
}

func (s *Sink) prune(now time.Time) {
	gone, err := s.ring.Prune(now, s.limits(), s.clips.pinned)
	if err != nil {
		s.log.Warn("record: deleting old segments failed", "err", err)
	}
	for _, g := range gone {
		s.stats.deleted(g.Bytes)
	}
	s.clips.prune(now)
}

// emit delivers events to the event sinks (clip.ready).
func (s *Sink) emit(stream string, e event.Event) {
	s.stats.event(stream, e)
	if s.res.Emit != nil {
		s.res.Emit(stream, e)
	}
}
