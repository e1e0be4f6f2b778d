package capture

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/internal/cputime"
)

// DecodeThreadName names the OS thread a connection decodes on, for its
// lifetime. Threads FFmpeg starts from it inherit the name, so `top -H` and
// `pipeline bench` can tell decoding from the rest of the process.
const DecodeThreadName = "osp:decode"

// Errors a conn reports to the source; they become reasons in State.
var (
	errStalled = errors.New("capture: stalled")
	errClosing = errors.New("capture: closing")
)

// conn runs one backend on its own goroutine. cgo calls into OpenCV cannot be
// interrupted, so the source talks to that goroutine through channels with
// timeouts: a read that hangs is abandoned (the goroutine cleans up, closing
// the backend and any late frame, when OpenCV finally returns) instead of
// wedging Read or Close.
type conn struct {
	opened chan error      // the open's result, once
	req    chan struct{}   // one frame, please
	res    chan readResult // the frame (buffered: the goroutine never blocks on it)
	quit   chan struct{}   // closed to stop the goroutine
	done   chan struct{}   // closed when the goroutine has exited
	stop   sync.Once

	rate    float64 // backend fps, valid after a nil open result
	pending bool    // a request is outstanding (owned by the reading goroutine)
}

type readResult struct {
	m   gocv.Mat
	err error
}

func startConn(open func() (backend, error)) *conn {
	c := &conn{
		opened: make(chan error, 1),
		req:    make(chan struct{}),
		res:    make(chan readResult, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go c.run(open)
	return c
}

func (c *conn) run(open func() (backend, error)) {
	defer close(c.done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if old, err := cputime.ThreadName(); err == nil && cputime.SetThreadName(DecodeThreadName) == nil {
		// Back to its own name before the thread returns to the Go pool.
		defer func() { _ = cputime.SetThreadName(old) }()
	}
	b, err := open()
	if err != nil {
		c.opened <- err
		return
	}
	c.rate = b.fps()
	c.opened <- nil
	defer b.close()
	// A result nobody will collect (the source gave up on it) is released here.
	defer func() {
		select {
		case r := <-c.res:
			if r.err == nil {
				_ = r.m.Close()
			}
		default:
		}
	}()
	for {
		select {
		case <-c.quit:
			return
		case <-c.req:
		}
		m := gocv.NewMat()
		if err := b.read(&m); err != nil {
			_ = m.Close()
			c.res <- readResult{err: err}
			continue
		}
		c.res <- readResult{m: m}
	}
}

// waitOpen waits for the open to finish, at most timeout.
func (c *conn) waitOpen(ctx context.Context, timeout time.Duration, closing <-chan struct{}) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-c.opened:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-closing:
		return errClosing
	case <-t.C:
		return errStalled
	}
}

// read returns the next frame, waiting at most timeout. After a ctx or
// closing return the request stays outstanding and the next read collects it.
func (c *conn) read(ctx context.Context, timeout time.Duration, closing <-chan struct{}) (gocv.Mat, error) {
	if !c.pending {
		select {
		case c.req <- struct{}{}:
			c.pending = true
		case <-c.done:
			return gocv.Mat{}, errStalled
		case <-closing:
			return gocv.Mat{}, errClosing
		case <-ctx.Done():
			return gocv.Mat{}, ctx.Err()
		}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-c.res:
		c.pending = false
		return r.m, r.err
	case <-ctx.Done():
		return gocv.Mat{}, ctx.Err()
	case <-closing:
		return gocv.Mat{}, errClosing
	case <-t.C:
		return gocv.Mat{}, errStalled
	}
}

// shutdown asks the goroutine to stop; it returns at once.
func (c *conn) shutdown() { c.stop.Do(func() { close(c.quit) }) }

// wait waits for the goroutine to exit, at most until ctx is done.
func (c *conn) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
