// Package config decodes and validates pipeline files (pipelines/*.yaml).
//
// Every problem is reported at once, each with file:line:col, the field path
// and a hint: unknown keys (with the closest valid name), wrong types, bad
// durations, and every component's own validation (capture, model, tracker,
// zones and lines, sinks).
package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/osprey-vision/osprey/analytics"
	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/infer/governor"
	"github.com/osprey-vision/osprey/sink/natsink"
	"github.com/osprey-vision/osprey/sink/preview"
	"github.com/osprey-vision/osprey/stages"
	"github.com/osprey-vision/osprey/track"
)

// Mode says how sources are consumed.
type Mode string

// The modes.
const (
	// Live keeps latency bounded: queues keep the newest frames and drop older ones.
	Live Mode = "live"
	// Offline processes every frame: queues apply backpressure.
	Offline Mode = "offline"
)

// UnmarshalText parses a mode name.
func (m *Mode) UnmarshalText(b []byte) error {
	switch v := Mode(b); v {
	case Live, Offline:
		*m = v
		return nil
	}
	return fmt.Errorf("unknown mode %q (use live or offline)", b)
}

// Pipeline is one pipeline file.
type Pipeline struct {
	// Name identifies the pipeline in events and NATS subjects; defaults to
	// the file name without extension.
	Name string `yaml:"name"`
	// LatencyBudget is the most a frame may age between capture and the last
	// stage before it is dropped as stale; 0 disables the budget. It applies
	// in live mode only: offline runs process every frame.
	LatencyBudget time.Duration `yaml:"latency_budget"`
	// Mode is live or offline; empty picks offline when every stream is a
	// file read as fast as possible, live otherwise.
	Mode Mode `yaml:"mode"`
	// DrainTimeout bounds a graceful stop (default 10s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// OpenCVThreads sizes OpenCV's own thread pool for resizes and colour
	// conversions (default 1: the pipeline's stages already run in
	// parallel; 0: OpenCV's default of every core).
	OpenCVThreads *int `yaml:"opencv_threads"`

	Streams   []capture.Config `yaml:"streams"`
	Model     Model            `yaml:"model"`
	Detect    Detect           `yaml:"detect"`
	Track     track.Config     `yaml:"track"`
	Zones     []analytics.Zone `yaml:"zones"`
	Lines     []analytics.Line `yaml:"lines"`
	Analytics AnalyticsOptions `yaml:"analytics"`
	Queues    Queues           `yaml:"queues"`
	Sinks     Sinks            `yaml:"sinks"`
	Metrics   Metrics          `yaml:"metrics"`

	// File is the path the pipeline was loaded from (not a YAML key).
	File string `yaml:"-"`
}

// Model selects and configures the detector model.
type Model struct {
	Path           string   `yaml:"path"`
	Format         string   `yaml:"format"`
	Labels         string   `yaml:"labels"`
	Library        string   `yaml:"library"`
	Providers      []string `yaml:"providers"`
	Threads        int      `yaml:"threads"`
	InterOpThreads int      `yaml:"inter_op_threads"`
	// Spin keeps ONNX Runtime's idle threads busy-waiting (off by default).
	Spin   bool   `yaml:"spin"`
	Resize string `yaml:"resize"`
}

// Detect configures when and how the detector runs.
type Detect struct {
	Confidence float32  `yaml:"confidence"`
	IoU        float32  `yaml:"iou"`
	Classes    []string `yaml:"classes"`
	// Every runs inference on one frame in N per stream; the others only go
	// through the tracker's prediction, so tracks stay smooth at camera rate.
	Every int `yaml:"every"`
	// MaxFPS caps inference per stream (0: no cap); skipped frames are predicted.
	MaxFPS float64 `yaml:"max_fps"`
	// Batch is the most frames (across streams) in one inference run.
	Batch int `yaml:"batch"`
	// BatchTimeout is how long to wait to fill a batch.
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	// Workers is how many detector sessions run batches in parallel (each
	// with model.threads threads); output keeps input order. On small CPUs
	// two one-thread sessions beat one two-thread session.
	Workers int `yaml:"workers"`
	// Governor, when set, steps quality down (model variant, detect.every)
	// when inference latency exceeds its target, and back up with headroom.
	Governor *governor.Config `yaml:"governor"`
}

// AnalyticsOptions tunes zone and line analytics.
type AnalyticsOptions struct {
	Anchor   string  `yaml:"anchor"`
	LineBand float64 `yaml:"line_band"`
}

// Queues overrides the link in front of each stage. Unset links take the
// mode's default (live: latest, 2 frames; offline: block, 8 frames).
type Queues struct {
	Capture    *stages.Link `yaml:"capture"`
	Preprocess *stages.Link `yaml:"preprocess"`
	Detect     *stages.Link `yaml:"detect"`
	Track      *stages.Link `yaml:"track"`
	Sinks      *stages.Link `yaml:"sinks"`
}

// Sinks lists the sinks; a sink is on when its key is present.
type Sinks struct {
	NATS    *natsink.Config `yaml:"nats"`
	Preview *preview.Config `yaml:"preview"`
	JSONL   *JSONL          `yaml:"jsonl"`
	Stdout  *Stdout         `yaml:"stdout"`
}

// JSONL writes events (and optionally per-frame detections) to a file.
type JSONL struct {
	Path string `yaml:"path"`
	// Frames also writes one line per frame with its tracks.
	Frames bool `yaml:"frames"`
}

// Stdout prints events to standard output, one JSON object per line.
type Stdout struct {
	Frames bool `yaml:"frames"`
}

// Metrics configures the Prometheus /metrics and /healthz endpoint.
type Metrics struct {
	// Listen is host:port; empty disables the endpoint. Loopback by default.
	Listen string `yaml:"listen"`
}

// defaults returns a pipeline with every default set, before decoding.
func defaults() Pipeline {
	p := Pipeline{
		DrainTimeout: 10 * time.Second,
		Detect:       Detect{Confidence: infer.DefaultConfidence, IoU: infer.DefaultIoU, Every: 1, Batch: 1, BatchTimeout: 5 * time.Millisecond, Workers: 1},
		Track:        track.DefaultConfig(),
		Model:        Model{Providers: []string{"cpu"}},
		Analytics:    AnalyticsOptions{Anchor: analytics.AnchorBottomCenter, LineBand: analytics.DefaultLineBand},
	}
	nats := natsink.DefaultConfig()
	prev := preview.Defaults()
	p.Sinks = Sinks{NATS: &nats, Preview: &prev, JSONL: &JSONL{}, Stdout: &Stdout{}}
	return p
}

// InferConfig returns the detector configuration.
func (p *Pipeline) InferConfig() infer.Config {
	return infer.Config{
		Path: p.Model.Path, Format: p.Model.Format, Labels: p.Model.Labels, Library: p.Model.Library,
		Providers: p.Model.Providers, Threads: p.Model.Threads, InterOpThreads: p.Model.InterOpThreads, Spin: p.Model.Spin,
		Confidence: p.Detect.Confidence, IoU: p.Detect.IoU, Classes: p.Detect.Classes,
		Batch: p.Detect.Batch, Resize: p.Model.Resize,
	}
}

// AnalyticsConfig returns the zones, lines and options for the analytics engine.
func (p *Pipeline) AnalyticsConfig() analytics.Config {
	return analytics.Config{Zones: p.Zones, Lines: p.Lines, Anchor: p.Analytics.Anchor, LineBand: p.Analytics.LineBand}
}

// StreamIDs returns the stream IDs in file order.
func (p *Pipeline) StreamIDs() []string {
	ids := make([]string, len(p.Streams))
	for i, s := range p.Streams {
		ids[i] = s.ID
	}
	return ids
}

// Link returns the queue in front of stage (capture, preprocess, detect,
// track, sinks), with the mode's default when not overridden.
func (p *Pipeline) Link(stage string) stages.Link {
	var o *stages.Link
	switch stage {
	case "capture":
		o = p.Queues.Capture
	case "preprocess":
		o = p.Queues.Preprocess
	case "detect":
		o = p.Queues.Detect
	case "track":
		o = p.Queues.Track
	case "sinks":
		o = p.Queues.Sinks
	}
	l := stages.Link{Size: 8, Policy: stages.Block}
	if p.Mode == Live {
		switch stage {
		case "capture", "preprocess", "detect":
			// Keep the newest frames in front of the expensive stages: latency
			// stays bounded however fast the camera is.
			l = stages.Link{Size: 2, Policy: stages.Latest}
		case "sinks":
			l = stages.Link{Size: 4, Policy: stages.Latest}
		}
	}
	if o != nil {
		if o.Size > 0 {
			l.Size = o.Size
		}
		if o.Policy != "" {
			l.Policy = o.Policy
		}
	}
	return l
}

// resolveMode picks offline when every stream is a file read as fast as
// possible (no realtime pacing, no loop), live otherwise.
func (p *Pipeline) resolveMode() {
	if p.Mode != "" {
		return
	}
	p.Mode = Offline
	for _, s := range p.Streams {
		isFile := strings.HasPrefix(s.URL, "file://") || strings.HasPrefix(s.URL, "/") || !strings.Contains(s.URL, ":")
		if !isFile || s.Realtime || s.Loop {
			p.Mode = Live
			return
		}
	}
}

// validate checks cross-field rules and calls every component's Validate,
// reporting problems through add(path, message).
func (p *Pipeline) validate(add func(path string, err error)) {
	msg := func(path, format string, a ...any) { add(path, fmt.Errorf(format, a...)) }
	if p.Name == "" {
		msg("name", "required: give the pipeline a name (used in events and NATS subjects)")
	} else if event.SubjectToken(p.Name) != p.Name {
		msg("name", "%q can't be a NATS subject token: avoid dots, spaces, '*' and '>'", p.Name)
	}
	if p.LatencyBudget < 0 {
		msg("latency_budget", "must not be negative, got %s", p.LatencyBudget)
	}
	if n := p.OpenCVThreads; n != nil && (*n < 0 || *n > 256) {
		msg("opencv_threads", "must be in 0..256 (0: OpenCV's default), got %d", *n)
	}
	if p.DrainTimeout <= 0 {
		msg("drain_timeout", "must be > 0, got %s", p.DrainTimeout)
	}
	if len(p.Streams) == 0 {
		msg("streams", "required: list at least one stream with an id and a url")
	}
	seen := map[string]int{}
	for i, s := range p.Streams {
		path := fmt.Sprintf("streams[%d]", i)
		switch {
		case s.ID == "":
			msg(path+".id", "required: give each stream a unique id")
		case event.SubjectToken(s.ID) != s.ID:
			msg(path+".id", "%q can't be a NATS subject token: avoid dots, spaces, '*' and '>'", s.ID)
		default:
			if j, dup := seen[s.ID]; dup {
				msg(path+".id", "duplicate stream id %q (also streams[%d]): ids must be unique", s.ID, j)
			}
			seen[s.ID] = i
		}
		if s.URL == "" {
			msg(path+".url", "required: file:///path.mp4, rtsp://host/path, v4l2:///dev/video0, gst:<pipeline> or test://")
		} else {
			addAll(path, s.Validate(), add)
		}
	}
	p.validateLimits(add)
	p.validateModel(msg, add)
	if p.Detect.Every < 1 {
		msg("detect.every", "must be >= 1 (1 = every frame), got %d", p.Detect.Every)
	}
	if p.Detect.MaxFPS < 0 {
		msg("detect.max_fps", "must not be negative, got %g", p.Detect.MaxFPS)
	}
	if p.Detect.Batch < 1 || p.Detect.Batch > 64 {
		msg("detect.batch", "must be in 1..64, got %d", p.Detect.Batch)
	}
	if p.Detect.BatchTimeout < 0 {
		msg("detect.batch_timeout", "must not be negative, got %s", p.Detect.BatchTimeout)
	}
	if p.Detect.Workers < 1 || p.Detect.Workers > 16 {
		msg("detect.workers", "must be in 1..16, got %d", p.Detect.Workers)
	}
	if g := p.Detect.Governor; g != nil {
		addAll("detect.governor", g.Validate(), add)
		if p.Detect.Workers > 1 {
			msg("detect.governor", "needs detect.workers: 1 (the governor drives one detector session)")
		}
	}
	addAll("", p.Track.Validate(), add)
	addAll("", p.AnalyticsConfig().Validate(p.StreamIDs()), add)
	if s := p.Sinks.NATS; s != nil {
		s.Pipeline = p.Name
		addAll("sinks.nats", s.Validate(), add)
	}
	if s := p.Sinks.Preview; s != nil {
		addAll("sinks.preview", s.Validate(), add)
	}
	if s := p.Sinks.JSONL; s != nil && s.Path == "" {
		msg("sinks.jsonl.path", "required: the file to append events to")
	}
	if l := p.Metrics.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			msg("metrics.listen", "%q is not host:port (e.g. 127.0.0.1:9090)", l)
		}
	}
}

func (p *Pipeline) validateModel(msg func(path, format string, a ...any), add func(string, error)) {
	if p.Model.Path == "" {
		msg("model.path", "required: the ONNX model file (scripts/setup.sh makes models/ssd_mobilenet_v2_coco.onnx)")
		return
	}
	path := p.ModelPath()
	if st, err := os.Stat(path); err != nil {
		msg("model.path", "model file %s not found: run scripts/setup.sh to import the demo model, or fix the path (relative paths are from the pipeline file's directory's parent or the working directory)", path)
	} else if st.IsDir() {
		msg("model.path", "%s is a directory, not an ONNX model file", path)
	}
	cfg := p.InferConfig()
	cfg.Path = path
	addAll("", cfg.Validate(), add)
}

// ModelPath resolves model.path: absolute, or relative to the working
// directory, or else relative to the pipeline file's parent directory (so
// `pipeline run pipelines/demo.yaml` works from the repository root and a
// pipeline copied elsewhere still finds models/ next to its pipelines/).
func (p *Pipeline) ModelPath() string {
	return p.resolve(p.Model.Path)
}

func (p *Pipeline) resolve(path string) string {
	if path == "" || filepath.IsAbs(path) || p.File == "" {
		return path
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	alt := filepath.Join(filepath.Dir(filepath.Dir(p.File)), path)
	if _, err := os.Stat(alt); err == nil {
		return alt
	}
	return path
}
