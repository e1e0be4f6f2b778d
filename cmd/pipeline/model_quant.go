package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/osprey-vision/osprey/infer/quant"
)

// quietLog keeps the detectors' "ready" lines off the tool's output.
func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// cmdModelQuantize writes an INT8 variant of a model: static QDQ calibrated
// on frames, or weight-only with --dynamic.
func cmdModelQuantize(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("pipeline model quantize", flag.ContinueOnError)
	var cfg quant.FileConfig
	var method, exclude string
	fs.StringVar(&cfg.Model, "model", "", "FP32 ONNX model to quantise")
	fs.StringVar(&cfg.Out, "out", "", "where to write the INT8 model")
	fs.StringVar(&cfg.Format, "format", "auto", "model format (its preprocessing prepares calibration frames)")
	fs.StringVar(&cfg.Calib, "calib", "", "video file or image folder to calibrate on")
	fs.IntVar(&cfg.Frames, "frames", 64, "calibration frames to use (from the start)")
	fs.StringVar(&method, "method", "percentile", "activation range calibration: minmax, percentile or entropy")
	fs.Float64Var(&cfg.Percentile, "percentile", 99.99, "percentile for --method percentile")
	fs.StringVar(&exclude, "exclude", "", "comma-separated node-name or op-type glob patterns to keep FP32")
	fs.BoolVar(&cfg.QuantizeTail, "quantize-tail", false, "also quantise the decoding tail after the last Conv")
	fs.BoolVar(&cfg.QuantizeHeads, "quantize-heads", false, "also quantise the last Conv layers (raw box/score heads)")
	fs.BoolVar(&cfg.Dynamic, "dynamic", false, "weight-only INT8 (no calibration)")
	fs.BoolVar(&cfg.Uint8Input, "uint8-input", false, "take uint8 pixels: the model's first op (a linear scale) becomes the input's dequantisation")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Method = quant.Method(method)
	for _, p := range strings.Split(exclude, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Exclude = append(cfg.Exclude, p)
		}
	}
	if cfg.Model == "" {
		fmt.Fprintln(os.Stderr, "pipeline model quantize: --model is required")
		return 2
	}
	rep, err := quant.QuantizeFile(cfg, quietLog())
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline model quantize:", err)
		return 1
	}
	kind := "static INT8 QDQ, method " + method
	if cfg.Dynamic {
		kind = "weight-only INT8"
	}
	fmt.Printf("wrote %s (%s): %d nodes quantised, %d activations, %d weights, per-channel %v\n",
		cfg.Out, kind, rep.QuantizedNodes, rep.Activations, rep.Weights, rep.PerChannel)
	if rep.FoldedAdds > 0 {
		fmt.Printf("%d constant Adds folded into Conv biases\n", rep.FoldedAdds)
	}
	if u := rep.Uint8; u != nil {
		fmt.Printf("input %s takes uint8 pixels: (x-%d)*%g", u.Input, u.ZeroPoint, u.Scale)
		if u.Offset != 0 {
			fmt.Printf(", offset %+g taken out of %d Conv bias(es)", u.Offset, u.BiasFixed)
		}
		fmt.Println()
	}
	if rep.OpsetBumpedFrom != 0 {
		fmt.Printf("opset raised from %d to 13 for per-channel weights\n", rep.OpsetBumpedFrom)
	}
	if len(rep.ExcludedNodes) > 0 {
		fmt.Printf("kept FP32 by --exclude: %s\n", strings.Join(rep.ExcludedNodes, ", "))
	}
	return 0
}

// cmdModelFP16 writes an FP16 variant whose inputs and outputs stay FP32.
func cmdModelFP16(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("pipeline model fp16", flag.ContinueOnError)
	in := fs.String("model", "", "FP32 ONNX model")
	out := fs.String("out", "", "where to write the FP16 model")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *in == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "pipeline model fp16: --model and --out are required")
		return 2
	}
	if err := quant.FP16File(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline model fp16:", err)
		return 1
	}
	fmt.Printf("wrote %s (FP16 compute, FP32 inputs and outputs; meant for GPU providers)\n", *out)
	return 0
}

// cmdModelEval compares a variant's detections with its FP32 parent's.
func cmdModelEval(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("pipeline model eval", flag.ContinueOnError)
	var cfg quant.EvalConfig
	var conf float64
	asJSON := fs.Bool("json", false, "print the result as JSON")
	fs.StringVar(&cfg.Ref, "ref", "", "FP32 parent model")
	fs.StringVar(&cfg.Model, "model", "", "variant model")
	fs.StringVar(&cfg.Frames, "frames", "", "video file or image folder")
	fs.StringVar(&cfg.Format, "format", "auto", "model format")
	fs.IntVar(&cfg.Skip, "skip", 64, "frames to skip first (those used for calibration)")
	fs.IntVar(&cfg.N, "n", 100, "frames to evaluate")
	fs.Float64Var(&conf, "confidence", 0.5, "detection threshold")
	fs.IntVar(&cfg.Threads, "threads", 0, "intra-op threads per model (0: ONNX Runtime default)")
	classes := fs.String("classes", "", "comma-separated labels to detect, as detect.classes (default: all)")
	fs.IntVar(&cfg.MinRef, "min-ref", 10, "reference detections a class needs to count in mAP")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Ref == "" || cfg.Model == "" || cfg.Frames == "" {
		fmt.Fprintln(os.Stderr, "pipeline model eval: --ref, --model and --frames are required")
		return 2
	}
	cfg.Confidence = float32(conf)
	for _, c := range strings.Split(*classes, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cfg.Classes = append(cfg.Classes, c)
		}
	}
	res, err := quant.Evaluate(cfg, quietLog())
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline model eval:", err)
		return 1
	}
	printEval(os.Stdout, cfg, res, *asJSON)
	return 0
}

func printEval(w io.Writer, cfg quant.EvalConfig, r quant.EvalResult, asJSON bool) {
	if asJSON {
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintln(w, string(b))
		return
	}
	fmt.Fprintf(w, "frames %d (skipped %d) of %s, confidence %.2f, IoU 0.5, same class\n", r.Frames, cfg.Skip, cfg.Frames, cfg.Confidence)
	fmt.Fprintf(w, "reference detections %d, variant detections %d, matched %d\n", r.RefDetections, r.VariantDetections, r.Matched)
	fmt.Fprintf(w, "precision %.4f  recall %.4f  mean |score diff| %.4f  mAP@0.5 vs FP32 %.4f (classes with >= %d reference detections; all classes %.4f)\n",
		r.Precision, r.Recall, r.MeanScoreDiff, r.MAP50, r.MinRef, r.MAP50All)
	for _, c := range r.Classes {
		note := ""
		if c.Ref < r.MinRef {
			note = "  (too few to count in mAP)"
		}
		fmt.Fprintf(w, "  %-14s %5d reference detections  AP@0.5 %.4f%s\n", c.Label, c.Ref, c.AP, note)
	}
	fmt.Fprintf(w, "mean latency incl. preprocessing: reference %.1f ms, variant %.1f ms (%.2fx)\n", r.RefMeanMs, r.VariantMeanMs, r.RefMeanMs/r.VariantMeanMs)
}
