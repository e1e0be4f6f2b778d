package capture

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// State is a source's health at one transition.
type State = stages.SourceState

// closeWait bounds how long Close waits for a reader blocked in OpenCV when
// its ctx has no earlier deadline.
const closeWait = 3 * time.Second

// lateReset is how far behind its schedule a paced source may fall (a slow
// consumer) before the schedule restarts from now instead of bursting.
const lateReset = 500 * time.Millisecond

// fallbackFPS paces a realtime file whose container has no frame rate.
const fallbackFPS = 25

var _ stages.Source = (*source)(nil)

// source implements stages.Source for every URL kind.
type source struct {
	cfg     Config
	ep      endpoint
	url     string // redacted
	log     *slog.Logger
	onState func(State)

	closing   chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex // guards c and closed against a concurrent Close
	c      *conn
	closed bool

	stateMu sync.Mutex // orders onState calls
	state   int8       // 0 unknown, 1 up, -1 down

	// Owned by the reading goroutine (Connect and Read).
	seq      uint64
	got      int // frames read since the last open
	eof      bool
	failures int       // consecutive failed connects, for back-off
	t0       time.Time // pacing schedule start
	k        int64     // frames paced since t0
}

// New returns a source for cfg. It validates cfg (a plain error names the
// bad field) but does not open the stream: Connect does. onState, if not nil,
// is called once per up/down transition, from the goroutine that calls Read
// (or Connect, or Close).
func New(cfg Config, log *slog.Logger, onState func(State)) (stages.Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("capture: stream %q: %w", cfg.ID, err)
	}
	cfg.ApplyDefaults()
	ep, _ := parseURL(cfg.URL) // validated above
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if onState == nil {
		onState = func(State) {}
	}
	s := &source{
		cfg:     cfg,
		ep:      ep,
		url:     Redact(cfg.URL),
		onState: onState,
		closing: make(chan struct{}),
	}
	s.log = log.With("stream", cfg.ID, "url", s.url)
	return s, nil
}

// Connect opens the stream. An unreachable stream gives an error wrapping
// stages.ErrNotConnected (Read would also keep retrying by itself); a file
// that does not exist gives a plain error.
func (s *source) Connect(ctx context.Context) error {
	if s.isClosed() {
		return fmt.Errorf("capture: stream %q: connect after close: %w", s.cfg.ID, stages.ErrNotConnected)
	}
	s.mu.Lock()
	have := s.c != nil
	s.mu.Unlock()
	if have {
		return nil
	}
	s.eof = false
	if s.ep.kind == kindFile {
		if _, err := os.Stat(s.ep.target); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("capture: stream %q: file %s does not exist (check the url path)", s.cfg.ID, s.ep.target)
			}
			return fmt.Errorf("capture: stream %q: %w", s.cfg.ID, err)
		}
	}
	if err := s.open(ctx); err != nil {
		if errors.Is(err, errClosing) {
			return fmt.Errorf("capture: stream %q: connect interrupted by close: %w", s.cfg.ID, stages.ErrNotConnected)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.setDown(err.Error())
		if s.ep.kind == kindFile {
			return fmt.Errorf("capture: stream %q: cannot open %s: %v (is it a video FFmpeg can decode?)", s.cfg.ID, s.ep.target, err)
		}
		return fmt.Errorf("capture: stream %q: %s: %v: %w", s.cfg.ID, s.url, err, stages.ErrNotConnected)
	}
	return nil
}

// open starts a connection and waits for it to open, at most OpenTimeout.
func (s *source) open(ctx context.Context) error {
	ep, cfg := s.ep, s.cfg
	c := startConn(func() (backend, error) { return openBackend(ep, cfg) })
	if err := c.waitOpen(ctx, s.cfg.OpenTimeout, s.closing); err != nil {
		c.shutdown()
		if errors.Is(err, errStalled) {
			return fmt.Errorf("open timed out after %s", s.cfg.OpenTimeout)
		}
		if errors.Is(err, errClosing) || ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("open failed: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.shutdown()
		return errClosing
	}
	s.c = c
	s.got = 0
	s.t0, s.k = time.Time{}, 0
	return nil
}

// drop abandons the current connection; its goroutine cleans up by itself.
func (s *source) drop() {
	s.mu.Lock()
	if s.c != nil {
		s.c.shutdown()
		s.c = nil
	}
	s.mu.Unlock()
}

func (s *source) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Read returns the next frame. While a live stream is down it blocks,
// reconnecting with back-off, until a frame arrives, ctx is done (ctx.Err())
// or the source is closed (stages.ErrNotConnected).
func (s *source) Read(ctx context.Context) (*stages.Frame, error) {
	for {
		if s.isClosed() {
			return nil, fmt.Errorf("capture: stream %q: read after close: %w", s.cfg.ID, stages.ErrNotConnected)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.eof {
			return nil, fmt.Errorf("capture: stream %q: %w", s.cfg.ID, stages.ErrEndOfStream)
		}
		s.mu.Lock()
		c := s.c
		s.mu.Unlock()
		if c == nil {
			if err := s.reconnect(ctx); err != nil {
				return nil, err
			}
			continue
		}
		m, err := c.read(ctx, s.cfg.StallTimeout, s.closing)
		switch {
		case err == nil:
			f, err := s.frame(ctx, c, m)
			if f == nil && err == nil {
				continue
			}
			return f, err
		case errors.Is(err, errClosing):
			return nil, fmt.Errorf("capture: stream %q: closed: %w", s.cfg.ID, stages.ErrNotConnected)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, errEOF) && !s.ep.kind.live():
			s.drop()
			if s.cfg.Loop && s.got == 0 {
				// Nothing decodable: wait like a lost stream, never spin.
				s.setDown("no decodable frame")
				s.failures++
				continue
			}
			if s.cfg.Loop {
				if err := s.reopenLoop(ctx); err != nil {
					return nil, err
				}
				continue
			}
			s.eof = true
			s.setDown("end of stream")
			return nil, fmt.Errorf("capture: stream %q: %w", s.cfg.ID, stages.ErrEndOfStream)
		case errors.Is(err, errStalled):
			s.drop()
			s.setDown(fmt.Sprintf("no frame for %s", s.cfg.StallTimeout))
		default:
			s.drop()
			s.setDown("read failed")
		}
	}
}

// reopenLoop restarts a looping finite source from its first frame, keeping
// the pacing schedule and the sequence numbers running.
func (s *source) reopenLoop(ctx context.Context) error {
	t0, k := s.t0, s.k
	if err := s.open(ctx); err != nil {
		if errors.Is(err, errClosing) {
			return fmt.Errorf("capture: stream %q: closed: %w", s.cfg.ID, stages.ErrNotConnected)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The file went away or broke: treat it like a lost stream.
		s.setDown(err.Error())
		return nil
	}
	s.t0, s.k = t0, k
	return nil
}

// reconnect opens the stream, retrying with capped exponential back-off and
// jitter until it opens, ctx is done or the source is closed.
func (s *source) reconnect(ctx context.Context) error {
	for {
		if s.down() || s.failures > 0 {
			d := backoff(s.cfg.BackoffMin, s.cfg.BackoffMax, s.failures)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-s.closing:
				t.Stop()
				return fmt.Errorf("capture: stream %q: closed: %w", s.cfg.ID, stages.ErrNotConnected)
			case <-t.C:
			}
		}
		err := s.open(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, errClosing) {
			return fmt.Errorf("capture: stream %q: closed: %w", s.cfg.ID, stages.ErrNotConnected)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.failures++
		s.setDown(err.Error())
		s.log.Debug("capture: reconnect failed", "attempt", s.failures, "err", err)
	}
}

// backoff returns the pause before attempt n+1: min*2^n capped at max, then
// jittered to between 50% and 100% of that so streams that fail together do
// not retry in lock-step.
func backoff(minD, maxD time.Duration, n int) time.Duration {
	d := minD
	for i := 0; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// frame turns a decoded Mat into a Frame: size check, pacing, sequence
// number. It returns (nil, nil) when the Mat was dropped and Read should go on.
func (s *source) frame(ctx context.Context, c *conn, m gocv.Mat) (*stages.Frame, error) {
	if w, h := m.Cols(), m.Rows(); w > s.cfg.MaxWidth || h > s.cfg.MaxHeight {
		_ = m.Close()
		s.drop()
		s.eof = true
		reason := fmt.Sprintf("frame %dx%d exceeds max_width x max_height %dx%d", w, h, s.cfg.MaxWidth, s.cfg.MaxHeight)
		s.setDown(reason)
		return nil, fmt.Errorf("capture: stream %q: %s: %s (raise max_width/max_height or scale the source down)", s.cfg.ID, s.url, reason)
	}
	if err := s.pace(ctx, c); err != nil {
		_ = m.Close()
		return nil, err
	}
	s.seq++
	s.got++
	s.failures = 0
	f := stages.NewFrame(s.cfg.ID, s.seq, picture.New(m))
	if s.ep.kind == kindFile {
		fps := c.rate
		if fps <= 0 {
			fps = fallbackFPS
		}
		f.Media = time.Unix(0, 0).Add(time.Duration(float64(s.seq-1) * float64(time.Second) / fps))
	}
	s.setUp()
	return f, nil
}

// pace waits until the frame's slot on a fixed schedule t0 + k/fps for
// realtime files and the test pattern; the schedule does not drift because
// it is computed from t0, not from the previous frame.
func (s *source) pace(ctx context.Context, c *conn) error {
	var fps float64
	switch {
	case s.ep.kind == kindTest:
		fps = c.rate
	case s.ep.kind == kindFile && s.cfg.Realtime:
		fps = c.rate
		if fps <= 0 {
			fps = fallbackFPS
		}
	default:
		return nil
	}
	now := time.Now()
	if s.t0.IsZero() {
		s.t0, s.k = now, 0
	}
	due := s.t0.Add(time.Duration(float64(s.k) * float64(time.Second) / fps))
	s.k++
	if late := now.Sub(due); late > lateReset {
		s.t0, s.k = now, 1
		return nil
	}
	if wait := due.Sub(now); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return fmt.Errorf("capture: stream %q: closed: %w", s.cfg.ID, stages.ErrNotConnected)
		}
	}
	return nil
}

func (s *source) down() bool {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return s.state == -1
}

// closedDown reports a stream that was up as down because it was closed.
func (s *source) closedDown() {
	s.stateMu.Lock()
	up := s.state == 1
	s.stateMu.Unlock()
	if up {
		s.setDown("closed")
	}
}

func (s *source) setUp() {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.state == 1 {
		return
	}
	if s.state == -1 {
		// Normal start-up logs nothing; a recovery is worth a line.
		s.log.Info("capture: stream up again")
	}
	s.state = 1
	s.onState(State{Stream: s.cfg.ID, Up: true, URL: s.url, At: time.Now()})
}

func (s *source) setDown(reason string) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.state == -1 {
		return
	}
	s.state = -1
	if reason != "end of stream" && reason != "closed" {
		s.log.Warn("capture: stream down", "reason", reason)
	}
	s.onState(State{Stream: s.cfg.ID, Up: false, Reason: reason, URL: s.url, At: time.Now()})
}

// Close stops the stream and waits for its reader (at most until ctx is done,
// or closeWait when ctx has no deadline). It is safe to call twice and while
// Read blocks; Read afterwards returns stages.ErrNotConnected.
func (s *source) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	c := s.c
	s.c = nil
	s.mu.Unlock()
	s.closeOnce.Do(func() { close(s.closing) })
	s.closedDown()
	if c == nil {
		return nil
	}
	c.shutdown()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, closeWait)
		defer cancel()
	}
	if err := c.wait(ctx); err != nil {
		return fmt.Errorf("capture: stream %q: close: reader still blocked in opencv (%v); it will finish in the background", s.cfg.ID, err)
	}
	return nil
}
