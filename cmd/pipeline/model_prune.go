package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/osprey-vision/osprey/infer/prune"
)

// cmdModelPrune writes a variant with fewer Conv channels, its next layers
// refitted by least squares on calibration frames (no training).
func cmdModelPrune(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("pipeline model prune", flag.ContinueOnError)
	var cfg prune.FileConfig
	var importance, scope, exclude string
	asJSON := fs.Bool("json", false, "print the report as JSON (every Conv's kept channels)")
	fs.StringVar(&cfg.Model, "model", "", "FP32 ONNX model to prune")
	fs.StringVar(&cfg.Out, "out", "", "where to write the pruned model")
	fs.StringVar(&cfg.Format, "format", "auto", "model format (its preprocessing prepares calibration frames)")
	fs.StringVar(&cfg.Calib, "calib", "", "video file or image folder whose frames the refit runs on")
	fs.IntVar(&cfg.Frames, "frames", 32, "calibration frames to use (from the start)")
	fs.Float64Var(&cfg.Ratio, "ratio", 0, "share of the prunable Convs' output channels to remove, in (0, 1)")
	fs.StringVar(&importance, "importance", "energy", "channel ranking: energy (activation variance x next-layer weight), l1 (filter L1 norm) or bn (batch-norm scale)")
	fs.StringVar(&scope, "scope", "layer", "layer (ratio of every Conv) or global (ratio of all channels, ranked together)")
	fs.Float64Var(&cfg.Floor, "floor", 0.25, "with --scope global: share of each Conv's channels kept at least")
	fs.IntVar(&cfg.Multiple, "multiple", 16, "round each Conv's kept channels to a multiple of this (1: no rounding)")
	fs.IntVar(&cfg.Samples, "samples", 256, "spatial positions per frame and tensor for the least-squares statistics")
	fs.BoolVar(&cfg.Sequential, "sequential", false, "refit each pruned Conv's next layers again, in graph order, on the pruned model's own activations (slower)")
	fs.StringVar(&exclude, "exclude", "", "comma-separated node-name substrings whose Convs keep all channels")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Model == "" || cfg.Out == "" || cfg.Calib == "" {
		fmt.Fprintln(os.Stderr, "pipeline model prune: --model, --calib, --ratio and --out are required")
		return 2
	}
	cfg.Importance, cfg.Scope = prune.Importance(importance), prune.Scope(scope)
	for _, p := range strings.Split(exclude, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Exclude = append(cfg.Exclude, p)
		}
	}
	rep, err := prune.PruneFile(cfg, quietLog())
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline model prune:", err)
		return 1
	}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Println(string(b))
		return 0
	}
	fmt.Printf("wrote %s: %d prunable Convs, %d of %d channels removed (%.1f%%), parameters %d -> %d (%.1f%%)\n",
		cfg.Out, len(rep.Convs), rep.Removed, rep.Channels, 100*float64(rep.Removed)/float64(rep.Channels),
		rep.ParamsBefore, rep.ParamsAfter, 100*float64(rep.ParamsAfter)/float64(rep.ParamsBefore))
	return 0
}
