package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/stages"
)

// ErrRestartNeeded is wrapped by Reload's error when the new file changes
// sections that only a restart applies (model, detect, sinks...). Stream,
// zone and line changes in the same file were applied.
var ErrRestartNeeded = errors.New("app: these changes need a restart")

// reloadMu serialises reloads (a SIGHUP storm applies one file at a time).
var reloadMu sync.Mutex

// ReloadResult says what a reload changed.
type ReloadResult struct {
	// Added, Removed and Restarted are stream IDs. Restarted streams had a
	// changed stream config: their source and tracker start afresh.
	Added, Removed, Restarted []string
	// Analytics lists running streams whose zones or lines changed; they keep
	// their tracker (and track IDs) and get a new analytics engine.
	Analytics []string
	// Ignored lists the YAML sections that changed but need a restart.
	Ignored []string
}

// Changed reports whether the reload changed anything.
func (r ReloadResult) Changed() bool {
	return len(r.Added)+len(r.Removed)+len(r.Restarted)+len(r.Analytics) > 0
}

// String summarises the result for a log line.
func (r ReloadResult) String() string {
	var parts []string
	add := func(what string, ids []string) {
		if len(ids) > 0 {
			parts = append(parts, what+" "+strings.Join(ids, ","))
		}
	}
	add("added", r.Added)
	add("removed", r.Removed)
	add("restarted", r.Restarted)
	add("zones/lines", r.Analytics)
	add("ignored (restart needed)", r.Ignored)
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, "; ")
}

// EnableReload prepares the pipeline for Reload. Call it once, before Run.
func (a *App) EnableReload() { a.runner.EnableReload() }

// ReloadFile re-reads the pipeline file at path and applies it with Reload.
// An invalid file is rejected: the error (file:line:col for each problem) is
// logged and returned, and the running pipeline continues unchanged.
func (a *App) ReloadFile(path string) (ReloadResult, error) {
	next, err := config.Load(path, a.cfg.Registry)
	if err != nil {
		a.log.Error("reload rejected, the pipeline keeps running unchanged", "file", path, "err", err)
		return ReloadResult{}, err
	}
	res, err := a.Reload(next)
	switch {
	case errors.Is(err, ErrRestartNeeded):
		a.log.Warn("reload applied in part", "file", path, "changes", res.String(), "err", err)
	case err != nil:
		a.log.Error("reload failed", "file", path, "changes", res.String(), "err", err)
	default:
		a.log.Info("reload applied", "file", path, "changes", res.String())
	}
	return res, err
}

// Reload applies a new, validated configuration to the running pipeline
// (EnableReload must have been called before Run): streams added to the file
// start, removed ones stop, streams whose config changed restart; unchanged
// streams are not touched and keep their track IDs. A stage whose section
// changed applies it while running when it implements stages.Reconfigurer
// (zones and lines); changes to other sections are reported in Ignored and
// wrapped in ErrRestartNeeded; they do not apply until restart.
func (a *App) Reload(next *config.Pipeline) (ReloadResult, error) {
	reloadMu.Lock()
	defer reloadMu.Unlock()
	var res ReloadResult
	cur := a.cfg
	res.Ignored = restartSections(cur, next)

	old := map[string]config.Stream{}
	for _, sc := range cur.Streams {
		old[sc.ID] = sc
	}
	newer := map[string]config.Stream{}
	for _, sc := range next.Streams {
		newer[sc.ID] = sc
	}
	var errs []error
	stop := func(id string) {
		if !a.isRunning(id) {
			return
		}
		if err := a.stopStream(id); err != nil {
			errs = append(errs, err)
		}
	}
	start := func(sc config.Stream) {
		lease, ok := uint64(0), true
		if a.fleet() {
			// A fleet node runs only the streams it holds: the fleet starts
			// new ones when it places them, and a restart keeps the lease.
			lease, ok = a.heldLease(sc.ID)
		}
		if !ok {
			return
		}
		if err := a.startStream(sc, lease); err != nil {
			errs = append(errs, err)
		}
	}
	for _, sc := range cur.Streams {
		if _, ok := newer[sc.ID]; !ok {
			stop(sc.ID)
			res.Removed = append(res.Removed, sc.ID)
		}
	}
	for _, sc := range next.Streams {
		prev, ok := old[sc.ID]
		switch {
		case !ok:
			start(sc)
			res.Added = append(res.Added, sc.ID)
		case !reflect.DeepEqual(prev.Config, sc.Config):
			lease, held := a.heldLease(sc.ID)
			stop(sc.ID)
			if held {
				a.setHeld(sc.ID, lease)
			}
			start(sc)
			res.Restarted = append(res.Restarted, sc.ID)
		}
	}

	// Stage sections that changed: applied by stages that can.
	for _, sec := range next.Stages {
		prev, _ := cur.Stage(sec.Name)
		if reflect.DeepEqual(prev.Config, sec.Config) {
			continue
		}
		applied := false
		for _, st := range a.stages[sec.Name] {
			r, ok := st.Stage.(stages.Reconfigurer)
			if !ok {
				continue
			}
			applied = true
			changed, err := r.Reconfigure(sec.Config)
			for _, id := range changed {
				if _, ok := old[id]; ok && !slices.Contains(res.Restarted, id) && !slices.Contains(res.Analytics, id) {
					res.Analytics = append(res.Analytics, id)
				}
			}
			if err != nil {
				res.Ignored = append(res.Ignored, changedKeys(prev, sec)...)
			}
		}
		if !applied {
			res.Ignored = append(res.Ignored, changedKeys(prev, sec)...)
		}
	}
	slices.Sort(res.Analytics)
	for _, s := range a.sinks {
		if r, ok := s.(interface{ RefreshOverlays(string) error }); ok {
			for _, id := range slices.Concat(res.Added, res.Restarted, res.Analytics) {
				if err := r.RefreshOverlays(id); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}

	// Readers of the stream list (StreamStates) hold stateMu.
	a.stateMu.Lock()
	a.cfg.Streams = next.Streams
	a.cfg.Stages = next.Stages
	onStreams := a.onStreams
	a.stateMu.Unlock()
	if onStreams != nil {
		onStreams(next.Streams)
	}

	if len(res.Ignored) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s changed in %s; restart the pipeline to apply them", ErrRestartNeeded, strings.Join(res.Ignored, ", "), next.File))
	}
	return res, errors.Join(errs...)
}

// builtStages returns every built stage and replica.
func (a *App) builtStages() []stages.Stage {
	var out []stages.Stage
	for _, specs := range a.stages {
		for _, st := range specs {
			out = append(out, st.Stage)
			out = append(out, st.Replicas...)
		}
	}
	return out
}

// restartSections names the pipeline's own settings and the sinks when they
// differ: Reload cannot apply them to a running pipeline. (Stages decide
// for their own sections, in Reload.)
func restartSections(cur, next *config.Pipeline) []string {
	var out []string
	check := func(name string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			out = append(out, name)
		}
	}
	check("name", cur.Name, next.Name)
	check("latency_budget", cur.LatencyBudget, next.LatencyBudget)
	check("drain_timeout", cur.DrainTimeout, next.DrainTimeout)
	check("queues", cur.Queues, next.Queues)
	check("metrics", cur.Metrics, next.Metrics)
	if !sameSinks(cur.Sinks, next.Sinks) {
		out = append(out, "sinks")
	}
	// The mode follows from the streams unless set: only an effective change
	// of the links matters.
	for _, st := range []string{"capture", "preprocess", "detect", "track", "sinks"} {
		if cur.Link(st) != next.Link(st) {
			out = append(out, "mode (queue policies)")
			break
		}
	}
	return out
}

// changedKeys lists the plugin's top-level keys whose values differ.
func changedKeys(prev, next config.Section) []string {
	var out []string
	for _, k := range next.Stage.Keys {
		if !reflect.DeepEqual(config.SectionKey(prev, k), config.SectionKey(next, k)) {
			out = append(out, k)
		}
	}
	return out
}

// sameSinks reports whether two sink lists have the same keys and settings.
func sameSinks(a, b []config.Section) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !reflect.DeepEqual(a[i].Config, b[i].Config) {
			return false
		}
	}
	return true
}

// ReloadOnSignal calls ReloadFile(path) each time one of sigs (SIGHUP for
// `pipeline run`) arrives, until ctx is done or stop is called. Call it after
// EnableReload.
func (a *App) ReloadOnSignal(ctx context.Context, path string, sigs ...os.Signal) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-ch:
				_, _ = a.ReloadFile(path)
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		<-finished
	}
}
