// Package components lists Osprey's built-in components: the one place a
// new source, stage or sink is added (one package plus one line here).
// The config loader and the runner know components only through the
// registry this returns.
package components

import (
	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/cascade"
	"github.com/osprey-vision/osprey/motion"
	"github.com/osprey-vision/osprey/privacy"
	"github.com/osprey-vision/osprey/sink/jsonl"
	"github.com/osprey-vision/osprey/sink/natsink"
	"github.com/osprey-vision/osprey/sink/preview"
	"github.com/osprey-vision/osprey/sink/record"
	"github.com/osprey-vision/osprey/sink/webhook"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/stages/builtin"
)

// Builtin returns a registry of every built-in component. Stages run in the
// order listed.
func Builtin() *stages.Registry {
	return stages.NewRegistry().
		AddSource(capture.Plugin()).
		AddStage(motion.Plugin()).
		AddStage(builtin.DetectPlugin()).
		AddStage(builtin.TrackPlugin()).
		AddStage(cascade.Plugin()).
		AddStage(privacy.Plugin()). // last: every analytics stage sees the original picture
		AddSink(natsink.Plugin()).
		AddSink(preview.Plugin()).
		AddSink(jsonl.Plugin()).
		AddSink(jsonl.StdoutPlugin()).
		AddSink(webhook.Plugin()).
		AddSink(record.Plugin())
}
