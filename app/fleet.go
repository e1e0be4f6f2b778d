package app

import (
	"context"
	"fmt"
	"slices"

	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/stages"
)

// Fleet mode (Options.Node set): the app starts with no stream running and
// runs those the fleet hands it (package fleet holds the leases), through
// the same runtime source set as hot reload. Other streams are not touched
// when one starts or stops.

// fleet reports whether the app runs as a fleet node.
func (a *App) fleet() bool { return a.opts.Node != "" }

// StartStream starts stream id under lease (its fencing token, stamped on
// its frames and events). It fails for an unknown or running stream.
func (a *App) StartStream(id string, lease uint64) error {
	a.stateMu.Lock()
	var sc *config.Stream
	for i := range a.cfg.Streams {
		if a.cfg.Streams[i].ID == id {
			sc = &a.cfg.Streams[i]
		}
	}
	a.stateMu.Unlock()
	if sc == nil {
		return fmt.Errorf("app: start stream %s: no such stream in %s", id, a.cfg.File)
	}
	if a.isRunning(id) {
		return fmt.Errorf("app: start stream %s: it is running already", id)
	}
	return a.startStream(*sc, lease)
}

// StopStream stops stream id and waits (bounded) until its source is
// closed; its tracks end. Frames it already produced finish their way
// through the pipeline. Stopping a stream that is not running does nothing.
func (a *App) StopStream(id string) error {
	if !a.isRunning(id) {
		return nil
	}
	return a.stopStream(id)
}

// SetFleetStatus hands fn, which reads the fleet's status (fleet.Node.Status),
// to the sinks that show it: the preview's fleet page and /api/fleet.
func (a *App) SetFleetStatus(fn func(context.Context) (any, error)) {
	for _, s := range a.sinks {
		if f, ok := s.(interface {
			SetFleet(func(context.Context) (any, error))
		}); ok {
			f.SetFleet(fn)
		}
	}
}

// RunningStreams returns the IDs of the streams running, sorted.
func (a *App) RunningStreams() []string {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	ids := make([]string, 0, len(a.running))
	for id := range a.running {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Streams returns the streams of the current file (after reloads).
func (a *App) Streams() []config.Stream {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	return slices.Clone(a.cfg.Streams)
}

// OnStreams registers fn, called with the file's streams after each reload
// (the fleet places added streams and releases removed ones).
func (a *App) OnStreams(fn func([]config.Stream)) {
	a.stateMu.Lock()
	a.onStreams = fn
	a.stateMu.Unlock()
}

func (a *App) isRunning(id string) bool {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	_, ok := a.running[id]
	return ok
}

// heldLease returns the lease a running stream was started under.
func (a *App) heldLease(id string) (uint64, bool) {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	l, ok := a.running[id]
	return l, ok
}

// setHeld marks id as held under lease, for a restart inside a reload.
func (a *App) setHeld(id string, lease uint64) {
	a.stateMu.Lock()
	a.running[id] = lease
	a.stateMu.Unlock()
}

// startStream builds sc's source and adds it to the running pipeline.
func (a *App) startStream(sc config.Stream, lease uint64) error {
	src, err := a.buildSource(sc)
	if err == nil {
		a.runner.SetLease(sc.ID, lease)
		err = a.runner.AddSource(stages.SourceSpec{Stream: sc.ID, Source: src})
	}
	if err != nil {
		a.stateMu.Lock()
		delete(a.running, sc.ID)
		a.stateMu.Unlock()
		return fmt.Errorf("app: start stream %s: %w", sc.ID, err)
	}
	a.stateMu.Lock()
	a.running[sc.ID] = lease
	a.stateMu.Unlock()
	return nil
}

// stopStream removes id's source, ends its tracks and forgets its state.
func (a *App) stopStream(id string) error {
	err := a.runner.RemoveSource(id)
	for _, st := range a.builtStages() {
		if f, ok := st.(stages.StreamForgetter); ok {
			if evs := f.ForgetStream(id); len(evs) > 0 {
				a.runner.Emit(id, evs...)
			}
		}
	}
	a.stateMu.Lock()
	delete(a.sources, id)
	delete(a.running, id)
	a.stateMu.Unlock()
	return err
}
