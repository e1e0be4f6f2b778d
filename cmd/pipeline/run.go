package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/osprey-vision/osprey/app"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/fleet"
	"github.com/osprey-vision/osprey/metrics"
	"github.com/osprey-vision/osprey/stages"
)

// cmdRun runs a pipeline until its sources end or SIGINT/SIGTERM.
func cmdRun(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	status := fs.String("status", "auto", "live status line on stderr: auto (when a terminal), on, off")
	check := fs.Bool("check", false, "load and validate the pipeline, then exit")
	nodeFlag := fs.String("node", "", "fleet mode: this node's name (default fleet.node, else the host name)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pipeline run [flags] pipelines/demo.yaml")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline run:", err)
		return 2
	}
	cfg, err := loadPipeline(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if *nodeFlag != "" && cfg.Fleet == nil {
		fmt.Fprintf(os.Stderr, "pipeline run: --node: %s has no fleet: section (docs/fleet.md)\n", fs.Arg(0))
		return 2
	}
	var opts app.Options
	if cfg.Fleet != nil {
		if opts.Node, err = fleetNodeName(cfg, *nodeFlag); err != nil {
			fmt.Fprintln(os.Stderr, "pipeline run:", err)
			return 2
		}
	}
	if *check {
		fmt.Fprintf(os.Stderr, "%s: ok\n", fs.Arg(0))
		return 0
	}
	var node *fleet.Node
	if cfg.Fleet != nil {
		if node, err = joinFleet(ctx, cfg, opts.Node, log); err != nil {
			fmt.Fprintf(os.Stderr, "pipeline run: %s: %v\n", fs.Arg(0), err)
			return 1
		}
		defer node.Close()
	}
	a, err := app.New(cfg, log, opts)
	if err != nil {
		if node != nil {
			node.Leave()
		}
		fmt.Fprintf(os.Stderr, "pipeline run: %s: %v\n", fs.Arg(0), err)
		return 1
	}
	// SIGHUP re-reads the file: changed streams restart, the rest keep running.
	a.EnableReload()
	defer a.ReloadOnSignal(ctx, fs.Arg(0), syscall.SIGHUP)()
	if showStatus(*status) {
		stop := startStatusLine(a.Metrics, os.Stderr)
		defer stop()
	}
	var fleetDone chan struct{}
	// The node stops with the pipeline: when Run fails at start (a sink
	// that cannot connect) the node would otherwise hold its leases and
	// keep the process alive without saying why.
	fleetCtx, stopFleet := context.WithCancel(ctx)
	defer stopFleet()
	if node != nil {
		node.RegisterMetrics(a.Metrics.Registry())
		a.SetFleetStatus(func(ctx context.Context) (any, error) { return node.Status(ctx) })
		a.OnStreams(func(ss []config.Stream) { node.SetCameras(fleetCameras(ss)) })
		fleetDone = make(chan struct{})
		go func() {
			defer close(fleetDone)
			_ = node.Run(fleetCtx, a)
		}()
	}
	err = a.Run(ctx)
	if fleetDone != nil {
		stopFleet()
		<-fleetDone // every camera stopped and released
	}
	printRunSummary(os.Stderr, cfg, a)
	switch {
	case errors.Is(err, stages.ErrDrainTimeout):
		fmt.Fprintln(os.Stderr, "pipeline run:", err)
		return 3
	case err != nil:
		fmt.Fprintf(os.Stderr, "pipeline run: %s: %v\n", fs.Arg(0), err)
		return 1
	}
	return 0
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func showStatus(mode string) bool {
	switch mode {
	case "on":
		return true
	case "off":
		return false
	}
	st, err := os.Stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// startStatusLine redraws one status line on w every second until stopped.
func startStatusLine(m *metrics.Metrics, w io.Writer) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		prev, last := m.Snapshot(), time.Now()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case now := <-tick.C:
				cur := m.Snapshot()
				fmt.Fprintf(w, "\r\033[K%s", app.StatusLine(prev, cur, now.Sub(last)))
				prev, last = cur, now
			}
		}
	}()
	return func() { close(done); <-finished }
}

// printRunSummary prints what the run saw: frames, drops and analytics counts.
func printRunSummary(w io.Writer, cfg *config.Pipeline, a *app.App) {
	snap := a.Metrics.Snapshot()
	counts := a.Counts()
	fmt.Fprintf(w, "pipeline %s finished\n", cfg.Name)
	for _, id := range cfg.StreamIDs() {
		s := snap.Streams[id]
		var drops []string
		for k, v := range s.Drops {
			drops = append(drops, fmt.Sprintf("%s %d", k, v))
		}
		fmt.Fprintf(w, "stream %s: %d frames in, %d out, %d detector runs, e2e p50 %.0fms p99 %.0fms, drops: %s\n",
			id, s.In, s.Out, s.Inferences, s.E2EP50, s.E2EP99, orNone(strings.Join(drops, ", ")))
		if c, ok := counts[id]; ok {
			for _, line := range strings.Split(strings.TrimSpace(c.String()), "\n") {
				fmt.Fprintf(w, "  %s\n", line)
			}
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
