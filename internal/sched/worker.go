package sched

import (
	"sync"
)

// Worker is one OS thread with a policy that runs the functions handed to
// it, one at a time. Work that C code spreads over its own threads (an ONNX
// Runtime session's pool) gets the policy too when the pool is created from
// the worker: open the session with Do, and run it with Do.
type Worker struct {
	mu    sync.Mutex // one Do at a time
	fns   chan func()
	reply chan struct{}
	done  chan struct{}
	once  sync.Once
}

// Start starts a worker thread with policy p, named name when name is not
// empty (threads it starts inherit the name; at most 15 bytes are kept).
// It fails, starting nothing, when the kernel refuses p. With a zero p the
// functions run on one goroutine, on whichever thread Go gives it, and the
// name is not set.
func Start(name string, p Policy) (*Worker, error) {
	w := &Worker{fns: make(chan func()), reply: make(chan struct{}), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(w.done)
		Run(p, func(err error) {
			if err == nil && name != "" && !p.IsZero() {
				err = setName(name)
			}
			errc <- err
			if err != nil {
				return
			}
			for fn := range w.fns {
				fn()
				w.reply <- struct{}{}
			}
		})
	}()
	if err := <-errc; err != nil {
		<-w.done
		return nil, err
	}
	return w, nil
}

// Do runs fn on the worker's thread and returns when it has. Calls from
// several goroutines are served one at a time. Do after Close panics, like
// a send on a closed channel: Close only when every caller is done.
func (w *Worker) Do(fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fns <- fn
	<-w.reply
}

// Close ends the worker and its thread, after the running Do. It is safe to
// call twice.
func (w *Worker) Close() {
	w.once.Do(func() { close(w.fns) })
	<-w.done
}
