package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/osprey-vision/osprey/app"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/sink/jsonl"
	"github.com/osprey-vision/osprey/sink/natsink"
	"github.com/osprey-vision/osprey/sink/preview"
	"github.com/osprey-vision/osprey/soak"
	"github.com/osprey-vision/osprey/stages"
)

// cmdSoak runs a pipeline at maximum rate (every stream looped, no realtime
// pacing, the latency budget kept) for a set time, samples RSS, goroutines,
// open fds, live Mats and latency p99, and exits 1 unless all stayed flat.
func cmdSoak(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	duration := fs.Duration("duration", 3*time.Minute, "how long to run")
	interval := fs.Duration("interval", 10*time.Second, "sampling interval")
	warmup := fs.Float64("warmup", 0.25, "fraction of the samples left out of the trend (allocator and queues filling)")
	plot := fs.String("plot", "", "write an SVG plot of the samples to this file")
	keepListen := fs.Bool("keep-listen", false, "keep the file's metrics/preview/NATS listen addresses (default: free loopback ports, no metrics server)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pipeline soak [flags] pipelines/demo.yaml")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *duration <= 0 || *interval <= 0 || *warmup < 0 || *warmup >= 1 {
		fs.Usage()
		return 2
	}
	if *duration < 3**interval {
		fmt.Fprintf(os.Stderr, "pipeline soak: --duration %s gives fewer than 3 samples at --interval %s; raise --duration or lower --interval\n", *duration, *interval)
		return 2
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline soak:", err)
		return 2
	}
	cfg, err := loadPipeline(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "osprey-soak-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline soak:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	soakConfig(cfg, tmp, *keepListen)

	lat := &soak.LatencySink{}
	a, err := app.New(cfg, log, app.Options{ExtraSinks: []stages.SinkSpec{
		{Name: "soak", Sink: lat, In: stages.Link{Size: 4, Policy: stages.Latest}},
	}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pipeline soak: %s: %v\n", fs.Arg(0), err)
		return 1
	}
	runCtx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(runCtx) }()

	fmt.Fprintf(os.Stderr, "soak: %s for %s, sampling every %s\n", fs.Arg(0), *duration, *interval)
	s := &soak.Sampler{Interval: *interval, Latency: lat, OnSample: func(x soak.Sample) {
		fmt.Fprintf(os.Stderr, "  %s rss %.0f MiB (C heap %.1f, Go heap %.1f), %d goroutines, %d fds, %d mats, p99 %.0f ms, %d frames\n",
			x.At.Round(time.Second), float64(x.RSS)/(1<<20), float64(x.CHeap)/(1<<20), float64(x.GoHeap)/(1<<20), x.Goroutines, x.FDs, x.Mats, x.P99, x.Frames)
	}}
	samples := s.Run(runCtx)
	err = <-runErr
	interrupted := ctx.Err() != nil
	rep := soak.Analyze(samples, *warmup)
	soak.WriteTable(os.Stdout, samples, rep)
	if *plot != "" {
		if perr := writePlot(*plot, fmt.Sprintf("pipeline soak %s, %s", filepath.Base(fs.Arg(0)), *duration), samples); perr != nil {
			fmt.Fprintln(os.Stderr, "pipeline soak:", perr)
			return 1
		}
	}
	switch {
	case errors.Is(err, stages.ErrDrainTimeout):
		fmt.Fprintln(os.Stderr, "pipeline soak:", err)
		return 3
	case err != nil:
		fmt.Fprintf(os.Stderr, "pipeline soak: %s: %v\n", fs.Arg(0), err)
		return 1
	case interrupted:
		fmt.Fprintln(os.Stderr, "pipeline soak: interrupted before --duration; verdict is over what ran")
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// soakConfig turns a pipeline file into a soak run: every stream loops at
// full speed into live queues (keep the newest frame, so the latency budget
// holds while the capture outruns the detector), files the sinks write go
// into dir, listeners move to free loopback ports.
func soakConfig(cfg *config.Pipeline, dir string, keepListen bool) {
	cfg.Mode = config.Live
	for _, s := range cfg.Streams {
		if c := captureConfig(s); c != nil {
			c.Loop, c.Realtime = true, false
		}
	}
	if c, ok := config.SinkConfig[jsonl.FileConfig](cfg, "jsonl"); ok {
		c.Path = filepath.Join(dir, "events.jsonl")
	}
	cfg.RemoveSink("stdout")
	nc, hasNATS := config.SinkConfig[natsink.Config](cfg, "nats")
	if hasNATS && nc.Spool.Dir != "" {
		nc.Spool.Dir = filepath.Join(dir, "spool")
	}
	if keepListen {
		return
	}
	cfg.Metrics.Listen = ""
	if c, ok := config.SinkConfig[preview.Config](cfg, "preview"); ok {
		c.Listen = "127.0.0.1:0"
	}
	if c := nc; hasNATS && c.URL == "" {
		c.Embedded.Port = -1
		c.Embedded.StoreDir = filepath.Join(dir, "nats")
	}
}

func writePlot(path, title string, samples []soak.Sample) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if err := soak.WriteSVG(f, title, samples); err != nil {
		_ = f.Close()
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	return f.Close()
}
