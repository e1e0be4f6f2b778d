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

	"github.com/osprey-vision/osprey/analytics"
	"github.com/osprey-vision/osprey/capture"
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
	next, err := config.Load(path)
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
// streams are not touched and keep their track IDs. Zone and line changes
// apply to the running streams. Changes to other sections are reported in
// Ignored and wrapped in ErrRestartNeeded; they do not apply until restart.
func (a *App) Reload(next *config.Pipeline) (ReloadResult, error) {
	reloadMu.Lock()
	defer reloadMu.Unlock()
	var res ReloadResult
	cur := a.cfg
	res.Ignored = restartSections(cur, next)

	old := map[string]capture.Config{}
	for _, sc := range cur.Streams {
		old[sc.ID] = sc
	}
	newer := map[string]capture.Config{}
	for _, sc := range next.Streams {
		newer[sc.ID] = sc
	}
	var errs []error
	stop := func(id string) {
		if err := a.runner.RemoveSource(id); err != nil {
			errs = append(errs, err)
		}
		if evs := a.track.ForgetStream(id); len(evs) > 0 {
			a.runner.Emit(id, evs...)
		}
		a.stateMu.Lock()
		delete(a.sources, id)
		a.stateMu.Unlock()
	}
	start := func(sc capture.Config) {
		src, err := capture.New(sc, a.log.With("stream", sc.ID), a.onSourceState)
		if err == nil {
			err = a.runner.AddSource(stagesSpec(sc.ID, src))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("app: start stream %s: %w", sc.ID, err))
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
		case !reflect.DeepEqual(prev, sc):
			stop(sc.ID)
			start(sc)
			res.Restarted = append(res.Restarted, sc.ID)
		}
	}

	// Zones and lines: new engines for the running streams whose set changed.
	oa, na := cur.AnalyticsConfig(), next.AnalyticsConfig()
	global := oa.Anchor != na.Anchor || oa.LineBand != na.LineBand
	for _, sc := range next.Streams {
		if _, ok := old[sc.ID]; !ok || slices.Contains(res.Restarted, sc.ID) {
			continue
		}
		if global || !sameOverlays(oa, na, sc.ID) {
			res.Analytics = append(res.Analytics, sc.ID)
		}
	}
	a.track.SetAnalytics(na, res.Analytics)
	if a.preview != nil {
		for _, id := range slices.Concat(res.Added, res.Restarted, res.Analytics) {
			zones, lines := overlays(na, id)
			if err := a.preview.SetOverlays(id, zones, lines); err != nil {
				errs = append(errs, err)
			}
		}
	}

	// Readers of the stream list (StreamStates) hold stateMu.
	a.stateMu.Lock()
	a.cfg.Streams = next.Streams
	a.cfg.Zones, a.cfg.Lines, a.cfg.Analytics = next.Zones, next.Lines, next.Analytics
	a.stateMu.Unlock()

	if len(res.Ignored) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s changed in %s; restart the pipeline to apply them", ErrRestartNeeded, strings.Join(res.Ignored, ", "), next.File))
	}
	return res, errors.Join(errs...)
}

// restartSections names the top-level sections that differ and that Reload
// cannot apply to a running pipeline.
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
	check("model", cur.Model, next.Model)
	check("detect", cur.Detect, next.Detect)
	check("track", cur.Track, next.Track)
	check("queues", cur.Queues, next.Queues)
	check("sinks", cur.Sinks, next.Sinks)
	check("metrics", cur.Metrics, next.Metrics)
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

// sameOverlays reports whether a and b give stream the same zones and lines.
func sameOverlays(a, b analytics.Config, stream string) bool {
	var az, bz []analytics.Zone
	var al, bl []analytics.Line
	for _, z := range a.Zones {
		if z.Stream == stream {
			az = append(az, z)
		}
	}
	for _, z := range b.Zones {
		if z.Stream == stream {
			bz = append(bz, z)
		}
	}
	for _, l := range a.Lines {
		if l.Stream == stream {
			al = append(al, l)
		}
	}
	for _, l := range b.Lines {
		if l.Stream == stream {
			bl = append(bl, l)
		}
	}
	return reflect.DeepEqual(az, bz) && reflect.DeepEqual(al, bl)
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

func stagesSpec(id string, src stages.Source) stages.SourceSpec {
	return stages.SourceSpec{Stream: id, Source: src}
}
