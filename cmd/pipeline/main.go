// Command pipeline runs, checks, benchmarks and inspects Osprey pipelines.
//
//	pipeline run pipelines/demo.yaml
//	pipeline validate pipelines/*.yaml
//	pipeline run --node a pipelines/fleet.yaml; pipeline fleet status pipelines/fleet.yaml
//	pipeline bench pipelines/demo.yaml
//	pipeline detect --model M --format ssd --json image.jpg
//	pipeline model import --from tfjs model.json --out model.onnx
//	pipeline events --stream door-cam
//	pipeline watch --viewers 5 --duration 30s
//	pipeline soak --duration 3m --plot docs/soak.svg pipelines/demo.yaml
package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// command is one subcommand: it gets its arguments (after the subcommand name)
// and returns the process exit code.
type command struct {
	run     func(ctx context.Context, args []string) int
	summary string
}

func commands() map[string]command {
	return map[string]command{
		"run":      {cmdRun, "run a pipeline file until interrupted"},
		"fleet":    {cmdFleet, "show a fleet's nodes, cameras and lease holders (fleet status)"},
		"validate": {cmdValidate, "check pipeline files without running them"},
		"bench":    {cmdBench, "run a pipeline offline and report throughput and latency against baselines"},
		"detect":   {cmdDetect, "run the detector on images or a video and print or draw detections"},
		"model":    {cmdModel, "import (TF.js -> ONNX), inspect, quantise models"},
		"events":   {cmdEvents, "print events from NATS"},
		"watch":    {cmdWatch, "connect WebRTC viewers to a running pipeline's preview and report what arrives"},
		"soak":     {cmdSoak, "run a pipeline at full rate for a while and check memory, fds, goroutines, Mats and latency stay flat"},
		"track":    {cmdTrack, "run the tracker on MOTChallenge detections (track --det), or score results (track eval)"},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(cmds)
		return 2
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "pipeline: unknown command %q\n", args[0])
		usage(cmds)
		return 2
	}
	return c.run(ctx, args[1:])
}

func usage(cmds map[string]command) {
	fmt.Fprintln(os.Stderr, "usage: pipeline <command> [flags] [args]\n\ncommands:")
	for _, name := range slices.Sorted(maps.Keys(cmds)) {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", name, cmds[name].summary)
	}
}
