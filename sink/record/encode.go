package record

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/osprey-vision/osprey/internal/x264"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/sink/record/mpegts"
	"github.com/osprey-vision/osprey/stages"
)

// recorder records one stream: by copying its camera's stream (copy.go) or
// by encoding the frames offered to it.
type recorder struct {
	s      *Sink
	stream string
	log    *slog.Logger

	encodeOnce sync.Once
	encoding   atomic.Bool
	q          chan *stages.Frame
	done       chan struct{} // closed when the encode loop has ended (nil: none)

	// child is the running ffmpeg (copy mode), for tests that kill it.
	child atomic.Pointer[os.Process]
}

func newRecorder(s *Sink, stream string) *recorder {
	return &recorder{s: s, stream: stream, log: s.log.With("stream", stream)}
}

// offer queues f for the encoder without waiting: when the queue is full the
// frame is dropped for the recorder only.
func (r *recorder) offer(f *stages.Frame) {
	if !r.encoding.Load() {
		return
	}
	f.Retain()
	select {
	case r.q <- f:
	default:
		f.Release()
		r.s.stats.dropped(r.stream)
	}
}

// encodeFrames switches the recorder to encoding the frames offered to it
// (once; the copy path calls it for a camera that sends no H.264/H.265).
func (r *recorder) encodeFrames() {
	r.encodeOnce.Do(func() {
		r.q = make(chan *stages.Frame, r.s.cfg.Encode.Queue)
		r.done = make(chan struct{})
		r.encoding.Store(true)
		// The encoder runs with the pipeline's background scheduling:
		// detection gets the CPU first, and the queue drops for the recorder.
		r.s.wg.Go(func() { r.s.res.RunInBackground(r.encodeLoop) })
	})
}

// wait returns once the encode loop (if any) has finished its segment.
func (r *recorder) wait() {
	if r.done != nil {
		<-r.done
	}
}

// segment is the segment file being written.
type segment struct {
	tmp   string
	f     *os.File
	bw    *bufio.Writer
	ts    *mpegts.Writer
	start time.Time
	n     int
}

// encoder is the encode loop's state.
type encoder struct {
	r       *recorder
	enc     *x264.Encoder
	conv    *picture.I420
	w, h    int
	t0      time.Time       // PTS origin
	tick    int64           // the last PTS, in frame intervals from t0
	fps     int             // measured frame rate (0: not yet)
	held    []*stages.Frame // frames held while measuring it
	prev    time.Time       // the previous frame's capture time
	step    time.Duration   // the last frame interval
	seg     *segment
	nseg    int
	full    bool // disk full: not recording until space returns
	checked time.Time
}

func (r *recorder) encodeLoop() {
	e := &encoder{r: r}
	defer close(r.done)
	defer e.close()
	// A stream that stops sending frames (source down, removed) gets its
	// segment finished, so clips waiting for it are cut.
	idle := time.NewTicker(r.s.cfg.Segment)
	defer idle.Stop()
	last := time.Now()
	for {
		select {
		case <-idle.C:
			if e.seg != nil && time.Since(last) > r.s.cfg.Segment {
				e.finish(e.prev.Add(e.step))
			}
		case <-r.s.ctx.Done():
			for {
				select {
				case f := <-r.q:
					f.Release()
				default:
					return
				}
			}
		case f := <-r.q:
			last = time.Now()
			e.frame(f)
			f.Release()
		}
	}
}

func (e *encoder) frame(f *stages.Frame) {
	if e.full && !e.spaceReturned() {
		e.r.s.stats.dropped(e.r.stream)
		return
	}
	if e.fps == 0 {
		// Rate control needs the frame rate: hold the first second (at
		// most encode.queue frames) to measure it, then encode them.
		f.Retain()
		e.held = append(e.held, f)
		if f.Captured.Sub(e.held[0].Captured) < time.Second && len(e.held) < e.r.s.cfg.Encode.Queue {
			return
		}
		e.flushHeld()
		return
	}
	e.encode(f)
}

// flushHeld measures the frame rate from the frames held so far and
// encodes them.
func (e *encoder) flushHeld() {
	held := e.held
	e.held = nil
	e.fps = 10
	if n := len(held); n >= 2 {
		if span := held[n-1].Captured.Sub(held[0].Captured).Seconds(); span > 0 {
			e.fps = min(max(int(math.Round(float64(n-1)/span)), 1), 120)
		}
	}
	for _, h := range held {
		e.encode(h)
		h.Release()
	}
}

func (e *encoder) encode(f *stages.Frame) {
	cfg := &e.r.s.cfg
	mat, err := picture.Mat(f)
	if err != nil {
		return
	}
	w, h := f.Width&^1, f.Height&^1
	if e.enc == nil || w != e.w || h != e.h {
		e.finish(f.Captured)
		e.closeCodec()
		enc, err := x264.New(x264.Options{Width: w, Height: h, Kbps: cfg.Encode.Bitrate / 1000, FPS: e.fps,
			KeyframeInterval: max(1, int(cfg.Segment.Seconds()*float64(e.fps))), Threads: cfg.Encode.Threads})
		if err != nil {
			e.r.log.Error("record: cannot open the encoder; this stream is not recorded", "err", err)
			return
		}
		e.enc, e.conv, e.w, e.h = enc, picture.NewI420(w, h), w, h
		if e.t0.IsZero() {
			e.t0, e.tick = f.Captured, -1
		}
	}
	if e.tick >= 0 && time.Duration(e.tick+1)*(time.Second/time.Duration(e.fps)) > f.Captured.Sub(e.t0)+time.Second {
		// Frames come faster than the measured rate: the grid would run
		// away from the clock. Measure again with a new encoder.
		e.finish(f.Captured)
		e.closeCodec()
		e.fps, e.t0 = 0, time.Time{}
		e.frame(f)
		return
	}
	if !e.prev.IsZero() {
		e.step = f.Captured.Sub(e.prev)
	}
	e.prev = f.Captured
	if e.seg != nil && f.Captured.Sub(e.seg.start) >= cfg.Segment {
		e.finish(f.Captured)
	}
	if e.seg == nil {
		if err := e.open(f.Captured); err != nil {
			e.failed(err)
			return
		}
		e.enc.ForceKeyFrame()
	}
	img, err := e.conv.Convert(mat)
	if err != nil {
		return
	}
	au, err := e.enc.Encode(img)
	if err != nil {
		e.r.log.Warn("record: encode failed", "err", err)
		return
	}
	if len(au) == 0 {
		return
	}
	if err := e.seg.ts.WriteAccessUnit(au, e.pts(f.Captured), e.seg.n == 0); err != nil {
		e.failed(err)
		return
	}
	e.seg.n++
}

// pts places a frame captured at t on the grid of the measured frame rate:
// capture times jitter, and two frames closer than a frame interval would
// share a timestamp once a player or ffmpeg works at the stream's frame
// rate. A frame that lands on the previous one's slot takes the next.
func (e *encoder) pts(t time.Time) time.Duration {
	grid := time.Second / time.Duration(e.fps)
	n := int64(math.Round(float64(t.Sub(e.t0)) / float64(grid)))
	n = max(n, e.tick+1)
	e.tick = n
	return time.Duration(n) * grid
}

// open starts a segment at start.
func (e *encoder) open(start time.Time) error {
	e.nseg++
	tmp, err := e.r.s.ring.TempPath(e.r.stream, fmt.Sprintf("%d-%d", start.UnixMilli(), e.nseg))
	if err != nil {
		return err
	}
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	e.seg = &segment{tmp: tmp, f: f, bw: bw, ts: mpegts.NewWriter(bw), start: start}
	return nil
}

// finish closes the segment being written, ending at end, and adds it to
// the ring.
func (e *encoder) finish(end time.Time) {
	seg := e.seg
	if seg == nil {
		return
	}
	e.seg = nil
	err := seg.bw.Flush()
	if cerr := seg.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(seg.tmp)
		e.failed(err)
		return
	}
	if seg.n == 0 {
		_ = os.Remove(seg.tmp)
		return
	}
	if _, err := e.r.s.ring.Add(e.r.stream, seg.tmp, seg.start, end.Sub(seg.start)); err != nil {
		_ = os.Remove(seg.tmp)
		e.failed(err)
		return
	}
	e.r.s.stats.recording(e.r.stream, true)
	// Retention right away: the buffer never exceeds its limits by more
	// than the segment being written.
	e.r.s.prune(time.Now())
}

// failed handles a write error: a full disk stops recording this stream
// until space returns; another error loses the segment.
func (e *encoder) failed(err error) {
	if seg := e.seg; seg != nil {
		e.seg = nil
		_ = seg.f.Close()
		_ = os.Remove(seg.tmp)
	}
	if isNoSpace(err) {
		if !e.full {
			e.r.log.Error("record: disk full: recording of this stream stopped; it resumes when space is free (lower sinks.record.retain limits or free the disk)",
				"dir", e.r.s.cfg.Dir, "err", err)
		}
		e.full, e.checked = true, time.Now()
		e.r.s.stats.recording(e.r.stream, false)
		e.r.s.stats.diskFull(e.r.stream)
		return
	}
	e.r.log.Warn("record: writing a segment failed; it is lost", "err", err)
}

// spaceReturned checks, at most once a second, whether the disk has room
// for a few segments again.
func (e *encoder) spaceReturned() bool {
	if time.Since(e.checked) < time.Second {
		return false
	}
	e.checked = time.Now()
	if !hasRoom(e.r.s.cfg.Dir) {
		return false
	}
	e.full = false
	e.r.log.Info("record: disk has space again: recording resumes")
	return true
}

func (e *encoder) closeCodec() {
	if e.enc != nil {
		_ = e.enc.Close()
		e.conv.Close()
		e.enc, e.conv = nil, nil
	}
}

func (e *encoder) close() {
	if e.fps == 0 && len(e.held) > 0 {
		e.flushHeld()
	}
	if e.seg != nil {
		// The last frame plays for one frame interval.
		e.finish(e.prev.Add(e.step))
	}
	e.closeCodec()
}

// minFree is the free space recording needs to resume after the disk filled.
const minFree = 8 << 20

// hasRoom reports whether dir's file system has minFree bytes available.
func hasRoom(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return int64(st.Bavail)*int64(st.Bsize) >= minFree
}

// isNoSpace reports whether err means the disk (or quota) is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
