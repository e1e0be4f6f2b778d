package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/sched"
	"github.com/osprey-vision/osprey/sink/jsonl"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/stages/builtin"
)

// writeModel makes a file for model.path to point at; config only checks it exists.
func writeModel(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.onnx")
	require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))
	return p
}

func good(model string) string {
	return `name: lobby
latency_budget: 200ms
streams:
  - id: demo
    url: file:///usr/share/doc/opencv-doc/examples/data/vtest.avi
    loop: true
    realtime: true
model:
  path: ` + model + `
  format: ssd
detect:
  confidence: 0.45
  classes: [person]
zones:
  - { name: entrance, stream: demo, polygon: [[0.1,0.5],[0.5,0.5],[0.5,1],[0.1,1]], loiter_after: 30s }
lines:
  - { name: gate, stream: demo, from: [0.2,0.6], to: [0.8,0.6] }
sinks:
  jsonl: { path: events.jsonl }
metrics: { listen: 127.0.0.1:9090 }
`
}

func TestParseGoodPipeline(t *testing.T) {
	model := writeModel(t)
	p, err := Parse("lobby.yaml", []byte(good(model)), components.Builtin())
	require.NoError(t, err)
	require.Equal(t, "lobby", p.Name)
	require.Equal(t, 200*time.Millisecond, p.LatencyBudget)
	require.Equal(t, Live, p.Mode, "a looping realtime file behaves like a camera")
	require.Equal(t, stages.Link{Size: 2, Policy: stages.Latest}, p.Link("capture"), "capture keeps each stream's newest frames")
	require.Equal(t, stages.Link{Policy: stages.Handoff}, p.Link("preprocess"), "the cheap stages pull")
	require.Equal(t, stages.Link{Size: 1, Policy: stages.Latest}, p.Link("detect"), "the detector's own admission point")
	require.Equal(t, stages.Link{Size: 8, Policy: stages.Block}, p.Link("track"))
	require.Equal(t, map[string]int{}, p.Weights(), "every stream weighs 1 unless it says otherwise")
	tc, ok := StageConfig[builtin.TrackConfig](p, "track")
	require.True(t, ok)
	require.Equal(t, 30*time.Second, tc.Zones[0].LoiterAfter)
	require.Equal(t, time.Second, tc.Track.MaxLost)
	_, ok = SinkConfig[jsonl.FileConfig](p, "jsonl")
	require.True(t, ok)
	_, ok = p.Sink("nats")
	require.False(t, ok, "absent sinks stay off")
	_, ok = p.Sink("preview")
	require.False(t, ok)
	dc, ok := StageConfig[builtin.DetectConfig](p, "detect")
	require.True(t, ok)
	require.Equal(t, 1, dc.Detect.Every, "defaults fill what the file leaves out")
	ic := dc.InferConfig(p.Resolve)
	require.Equal(t, float32(0.45), ic.Confidence)
	require.Equal(t, []string{"person"}, ic.Classes)
	sc, ok := p.Streams[0].Config.(*capture.Config)
	require.True(t, ok, "the stream is decoded by capture, its scheme's source")
	require.Equal(t, capture.DefaultStallTimeout, sc.StallTimeout, "capture's defaults, applied once")
	require.Equal(t, sched.Policy{Class: sched.Batch}, p.Scheduling.BackgroundPolicy(), "background threads are SCHED_BATCH (at the default nice 10) unless the file says otherwise")
}

func TestSchedulingSection(t *testing.T) {
	model := writeModel(t)
	conf := "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\nscheduling: {background: batch, nice: 15, cpus: \"0\"}\ndetect: {cpus: \"0\", nice: 0}\n"
	p, err := Parse("p.yaml", []byte(conf), components.Builtin())
	require.NoError(t, err)
	fifteen := 15
	require.Equal(t, sched.Policy{Class: sched.Batch, Nice: &fifteen, CPUs: sched.CPUs{0}}, p.Scheduling.BackgroundPolicy())
	dc, ok := StageConfig[builtin.DetectConfig](p, "detect")
	require.True(t, ok)
	zero := 0
	require.Equal(t, sched.Policy{Nice: &zero, CPUs: sched.CPUs{0}}, dc.Detect.ThreadPolicy())
}

func TestOfflineModeForPlainFiles(t *testing.T) {
	model := writeModel(t)
	p, err := Parse("x.yaml", []byte("streams: [{id: a, url: /tmp/a.mp4}]\nmodel: {path: "+model+", format: ssd}\n"), components.Builtin())
	require.NoError(t, err)
	require.Equal(t, Offline, p.Mode)
	require.Equal(t, "x", p.Name, "the name defaults to the file name")
	require.Equal(t, stages.Block, p.Link("capture").Policy)
}

func TestParseErrors(t *testing.T) {
	model := writeModel(t)
	tests := []struct {
		name string
		conf string
		err  string
	}{
		{
			name: "unknown key with suggestion",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\ndetect:\n  confidense: 0.4\n",
			err:  `p.yaml:4:3: detect.confidense: unknown field "confidense": did you mean "confidence"?`,
		},
		{
			name: "wrong type",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\ndetect:\n  every: often\n",
			err:  `p.yaml:4:10: detect.every: cannot unmarshal string into int`,
		},
		{
			name: "bad duration",
			conf: "latency_budget: 200 millis\nstreams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\n",
			err:  `p.yaml:1:17: latency_budget: time: unknown unit " millis" in duration "200 millis" (write a duration like "200ms", "1.5s" or "2m")`,
		},
		{
			name: "missing model",
			conf: "streams: [{id: a, url: test://}]\nmodel:\n  path: /nonexistent/model.onnx\n  format: ssd\n",
			err:  `p.yaml:3:9: model.path: model file /nonexistent/model.onnx not found: run scripts/setup.sh to import the demo model, or fix the path (relative paths are from the pipeline file's directory's parent or the working directory)`,
		},
		{
			name: "bad url scheme",
			conf: "streams:\n  - id: a\n    url: htp://cam/1\nmodel: {path: " + model + ", format: ssd}\n",
			err:  "p.yaml:3:10: streams[0].url: ",
		},
		{
			name: "duplicate stream id",
			conf: "streams:\n  - {id: a, url: test://}\n  - {id: a, url: test://}\nmodel: {path: " + model + ", format: ssd}\n",
			err:  `p.yaml:3:10: streams[1].id: duplicate stream id "a" (also streams[0]): ids must be unique`,
		},
		{
			name: "stream weight out of range",
			conf: "streams:\n  - {id: a, url: test://, weight: 0}\nmodel: {path: " + model + ", format: ssd}\n",
			err:  `p.yaml:2:35: streams[0].weight: must be a whole number from 1 to 100 (its share of the detector against weight-1 streams), got 0`,
		},
		{
			name: "zone on unknown stream",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\nzones:\n  - {name: z, stream: b, polygon: [[0,0],[1,0],[1,1]]}\n",
			err:  `p.yaml:4:23: zones[0].stream: unknown stream "b": the pipeline's streams are a`,
		},
		{
			name: "unknown format",
			conf: "streams: [{id: a, url: test://}]\nmodel:\n  path: " + model + "\n  format: yolov9\n",
			err:  `p.yaml:4:11: model.format: "yolov9" is unknown: use one of`,
		},
		{
			name: "motion mask point outside the frame",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\nmotion:\n  enabled: true\n  masks: [[[0, 0], [1.3, 0], [1, 1]]]\n",
			err:  `p.yaml:5:20: motion.masks[0][1]: x=1.3 outside [0,1]: give mask points as fractions`,
		},
		{
			name: "per-stream motion override out of range",
			conf: "streams:\n  - id: a\n    url: test://\n    motion: {threshold: 300}\nmodel: {path: " + model + ", format: ssd}\n",
			err:  `p.yaml:4:25: streams[0].motion.threshold: must be in 1..255, got 300`,
		},
		{
			name: "motion regions cap",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\nmotion: {regions: {max: 0}}\n",
			err:  `p.yaml:3:25: motion.regions.max: must be in 1..16, got 0`,
		},
		{
			name: "unknown mode has its position",
			conf: "mode: bogus\nstreams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\n",
			err:  `p.yaml:1:7: mode: unknown mode "bogus" (use live or offline)`,
		},
		{
			name: "unknown scheduling class",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\nscheduling:\n  background: fifo\n",
			err:  `p.yaml:4:15: scheduling.background: unknown scheduling class "fifo": use idle, batch, nice, normal`,
		},
		{
			name: "background nice only lowers",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\nscheduling: {background: batch, nice: -5}\n",
			err:  `p.yaml:3:39: scheduling.nice: must be in 0..19 (background threads are only ever lowered), got -5`,
		},
		{
			name: "nice with idle",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\nscheduling: {background: idle, nice: 5}\n",
			err:  `p.yaml:3:38: scheduling.nice: applies to background: batch or nice, not idle`,
		},
		{
			name: "background cpus do not parse",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\nscheduling:\n  cpus: 1-x\n",
			err:  `p.yaml:4:9: scheduling.cpus: "1-x" in "1-x": want CPU numbers and ranges like 0-1,3`,
		},
		{
			name: "background cpus outside the cpuset",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\nscheduling:\n  cpus: \"1000\"\n",
			err:  `p.yaml:4:9: scheduling.cpus: CPU 1000 is not available to this process (it may use `,
		},
		{
			name: "detect cpus outside the cpuset",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\ndetect:\n  cpus: 0,1000\n",
			err:  `p.yaml:4:9: detect.cpus: CPU 1000 is not available to this process (it may use `,
		},
		{
			name: "detect nice out of range",
			conf: "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\ndetect:\n  nice: 20\n",
			err:  `p.yaml:4:9: detect.nice: must be in -20..19 (below 0 needs CAP_SYS_NICE), got 20`,
		},
		{
			name: "syntax error",
			conf: "streams: [{id: a, url: test://}\nmodel: {\n",
			err:  `p.yaml:`,
		},
		{
			name: "empty file",
			conf: "",
			err:  `p.yaml:1:1: the file is empty: a pipeline needs at least streams and model`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.conf), components.Builtin())
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.err), "got:\n%s\nwant prefix:\n%s", err, tc.err)
		})
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	conf := `name: lobby
bogus: 1
streams:
  - {id: a, url: test://}
  - {id: a, url: "ftp://x"}
model:
  path: /missing.onnx
  format: ssd
detect:
  every: 0
`
	_, err := Parse("p.yaml", []byte(conf), components.Builtin())
	require.Error(t, err)
	var es Errors
	require.ErrorAs(t, err, &es)
	require.GreaterOrEqual(t, len(es), 1)
	// Unknown keys are reported before semantic checks run on a broken file.
	require.Contains(t, err.Error(), `p.yaml:2:1: bogus: unknown field "bogus"`)

	conf = strings.Replace(conf, "bogus: 1\n", "", 1)
	_, err = Parse("p.yaml", []byte(conf), components.Builtin())
	require.ErrorAs(t, err, &es)
	text := err.Error()
	for _, want := range []string{
		`p.yaml:4:`, // duplicate id at line 4 (second stream)
		`streams[1].id: duplicate stream id "a"`,
		`streams[1].url`,
		`model.path: model file /missing.onnx not found`,
		`p.yaml:9:10: detect.every: must be >= 1`,
	} {
		require.Contains(t, text, want)
	}
	require.GreaterOrEqual(t, len(es), 4, "every problem at once:\n%s", text)
}

func TestShippedPipelinesParse(t *testing.T) {
	files, err := filepath.Glob("../pipelines/*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f, components.Builtin())
			if err != nil && strings.Contains(err.Error(), "not found: run scripts/setup.sh") {
				realpart.Missing(t, realpart.SSDModel, err)
			}
			require.NoError(t, err)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/p.yaml", components.Builtin())
	require.EqualError(t, err, "/nonexistent/p.yaml: cannot read pipeline file: no such file or directory")
}

func TestStreamWeight(t *testing.T) {
	model := writeModel(t)
	conf := "streams:\n  - {id: a, url: test://, weight: 3}\n  - {id: b, url: test://}\nmodel: {path: " + model + ", format: ssd}\n"
	p, err := Parse("p.yaml", []byte(conf), components.Builtin())
	require.NoError(t, err, "weight is the pipeline's key, not the source's")
	require.Equal(t, map[string]int{"a": 3}, p.Weights())
}
