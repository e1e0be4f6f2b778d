package main

import (
	"context"
	"fmt"
	"os"
)

// cmdModel dispatches `pipeline model <sub>`: each subcommand lives in its own file.
func cmdModel(ctx context.Context, args []string) int {
	subs := map[string]func(context.Context, []string) int{
		"import":   cmdModelImport,   // model_import.go
		"inspect":  cmdModelInspect,  // model_import.go
		"quantize": cmdModelQuantize, // model_quant.go
		"fp16":     cmdModelFP16,     // model_quant.go
		"eval":     cmdModelEval,     // model_quant.go
		"prune":    cmdModelPrune,    // model_prune.go
	}
	if len(args) == 0 || subs[args[0]] == nil {
		fmt.Fprintln(os.Stderr, `usage: pipeline model <command>
  import    convert a TF.js graph model to ONNX (--from tfjs model.json --out m.onnx)
  inspect   print a model's inputs, outputs and operators
  quantize  make an INT8 (QDQ) variant calibrated on frames
  fp16      make an FP16 variant with FP32 inputs and outputs
  eval      compare a variant's detections against its FP32 parent`)
		return 2
	}
	return subs[args[0]](ctx, args[1:])
}
