package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/onnxgraph"
	"github.com/osprey-vision/osprey/infer/tfjs"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// cmdModelImport converts a TF.js graph model to ONNX:
//
//	pipeline model import --from tfjs model.json --out model.onnx [--input T[=NAME]] [--output T=NAME ...] [--batch N]
func cmdModelImport(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("pipeline model import", flag.ContinueOnError)
	from := fs.String("from", "tfjs", "source format (only tfjs)")
	out := fs.String("out", "", "ONNX file to write")
	input := fs.String("input", "", "TF tensor to feed, optionally TENSOR=NAME (default: the COCO-SSD resized image batch, named image)")
	shape := fs.String("input-shape", "", "NHWC shape of --input, N for the dynamic batch (e.g. N,300,300,3)")
	batch := fs.Int64("batch", 0, "fix the batch size (needed by OpenCV DNN); 0 keeps it dynamic")
	opset := fs.Int64("opset", 13, "ONNX opset to declare")
	var outputs multiFlag
	fs.Var(&outputs, "output", "TF tensor to export as TENSOR=NAME (repeatable; default COCO-SSD scores and boxes)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if *from != "tfjs" {
		fmt.Fprintf(os.Stderr, "pipeline model import: --from %q is not supported: only tfjs\n", *from)
		return 1
	}
	if len(pos) != 1 || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: pipeline model import --from tfjs <model.json> --out <file.onnx> [--input TENSOR[=NAME]] [--output TENSOR=NAME ...] [--batch N]")
		return 2
	}
	opts := tfjs.Options{Batch: *batch, Opset: *opset}
	if *input != "" {
		opts.Input, opts.InputName, _ = strings.Cut(*input, "=")
	}
	if *shape != "" {
		for _, p := range strings.Split(*shape, ",") {
			p = strings.TrimSpace(p)
			if p == "N" || p == "?" || p == "-1" {
				opts.InputShape = append(opts.InputShape, -1)
				continue
			}
			d, err := strconv.ParseInt(p, 10, 64)
			if err != nil || d <= 0 {
				fmt.Fprintf(os.Stderr, "pipeline model import: --input-shape %q: %q is not a size (use numbers and N)\n", *shape, p)
				return 1
			}
			opts.InputShape = append(opts.InputShape, d)
		}
	}
	for _, o := range outputs {
		t, name, ok := strings.Cut(o, "=")
		if !ok || t == "" || name == "" {
			fmt.Fprintf(os.Stderr, "pipeline model import: --output %q: want TENSOR=NAME\n", o)
			return 1
		}
		opts.Outputs = append(opts.Outputs, tfjs.Output{Tensor: t, Name: name})
	}
	m, err := tfjs.Convert(pos[0], opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline model import:", err)
		return 1
	}
	if err := onnxgraph.Save(m, *out); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline model import:", err)
		return 1
	}
	printSummary(os.Stdout, *out, m)
	return 0
}

// cmdModelInspect prints a model's inputs, outputs, opset, parameter count
// and operator histogram, then the format auto-detection picks and why.
func cmdModelInspect(ctx context.Context, args []string) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(os.Stderr, "usage: pipeline model inspect <file.onnx>")
		return 2
	}
	m, err := onnxgraph.Load(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline model inspect:", err)
		return 1
	}
	printSummary(os.Stdout, args[0], m)
	printFormat(os.Stdout, args[0], m)
	return 0
}

func printSummary(w io.Writer, path string, m *onnxModel) {
	g := m.Graph
	fmt.Fprintf(w, "model   %s\nopset   %d (IR %d, producer %s)\nparams  %d\n", path, onnxgraph.Opset(m), m.IrVersion, m.ProducerName, onnxgraph.ParamCount(g))
	inits := map[string]bool{}
	for _, t := range g.Initializer {
		inits[t.Name] = true
	}
	for _, in := range g.Input {
		if !inits[in.Name] {
			fmt.Fprintf(w, "input   %s %s %v\n", in.Name, elemName(in), onnxgraph.Dims(in))
		}
	}
	for _, o := range g.Output {
		fmt.Fprintf(w, "output  %s %s %v\n", o.Name, elemName(o), onnxgraph.Dims(o))
	}
	hist := map[string]int{}
	for _, n := range g.Node {
		hist[n.OpType]++
	}
	ops := make([]string, 0, len(hist))
	for op := range hist {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool {
		if hist[ops[i]] != hist[ops[j]] {
			return hist[ops[i]] > hist[ops[j]]
		}
		return ops[i] < ops[j]
	})
	fmt.Fprintf(w, "nodes   %d\n", len(g.Node))
	for _, op := range ops {
		fmt.Fprintf(w, "  %-20s %d\n", op, hist[op])
	}
}

// printFormat prints the format model.format auto would choose and why.
func printFormat(w io.Writer, path string, m *onnxModel) {
	fi := infer.InspectModel(path, m, infer.DETROptions{})
	if fi.Err != nil {
		fmt.Fprintf(w, "format  none detected: %v\n", fi.Err)
		return
	}
	fmt.Fprintf(w, "format  %s\nreason  %s\n", fi.Format, fi.Reason)
	if fi.Resize != "" {
		fmt.Fprintf(w, "resize  %s (metadata %s)\n", fi.Resize, infer.MetaResize)
	}
	if fi.Labels != nil {
		fmt.Fprintf(w, "labels  %d from metadata: %s\n", len(fi.Labels), strings.Join(fi.Labels[:min(5, len(fi.Labels))], ", "))
	}
}

type onnxModel = onnx.ModelProto

func elemName(vi *onnx.ValueInfoProto) string {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return "?"
	}
	return strings.ToLower(onnx.TensorProto_DataType(tt.ElemType).String())
}
