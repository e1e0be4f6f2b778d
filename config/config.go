// Package config decodes and validates pipeline files (pipelines/*.yaml).
//
// The loader decodes the pipeline's own keys (name, latency_budget, mode,
// queues, metrics...) and hands every other section's YAML node to the
// component registered for it in a stages.Registry: a stream to the source of
// its URL scheme, the top-level keys a stage owns to that stage, each key
// under `sinks:` to its sink. It imports no component. Every problem is
// reported at once, each with file:line:col, the field path and a hint:
// unknown keys (with the closest valid name), wrong types, bad durations, and
// every component's own checks (whose paths are relative to their section).
package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/sched"
	"github.com/osprey-vision/osprey/stages"
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

// Pipeline is one pipeline file: the pipeline's own settings, and every
// component's section decoded into the component's own type.
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
	// Scheduling sets how the kernel schedules background threads against
	// inference (docs/design.md#scheduling).
	Scheduling Scheduling `yaml:"scheduling"`
	// Queues overrides the link in front of each stage.
	Queues Queues `yaml:"queues"`
	// Metrics configures the /metrics and /healthz endpoint.
	Metrics Metrics `yaml:"metrics"`
	// Fleet, when set, makes this pipeline one node of a fleet sharing its
	// streams over NATS (docs/fleet.md).
	Fleet *Fleet `yaml:"fleet"`

	// Streams are the streams in file order, each decoded by the source
	// registered for its URL scheme.
	Streams []Stream `yaml:"-"`
	// Stages are the registry's stage plugins in pipeline order, each with
	// its keys decoded (defaults where the file leaves them out).
	Stages []Section `yaml:"-"`
	// Sinks are the sinks present under `sinks:`, in file order.
	Sinks []Section `yaml:"-"`

	// File is the path the pipeline was loaded from (not a YAML key).
	File string `yaml:"-"`
	// Registry is the registry the file was decoded with.
	Registry *stages.Registry `yaml:"-"`
}

// Stream is one streams[] item.
type Stream struct {
	ID, URL string
	// Weight is the stream's share of the stages behind the admission point
	// in live mode (streams[].weight, default 1): a weight-2 stream gets two
	// frames per round to a weight-1 stream's one.
	Weight int
	// Requires lists the labels a fleet node must offer to run the stream
	// (streams[].requires; fleet mode only).
	Requires []string
	// Source is the plugin registered for the URL's scheme; Config its
	// decoded settings (the whole item).
	Source stages.SourcePlugin
	Config any
}

// Section is one component's decoded configuration.
type Section struct {
	// Name is the stage's name or the sink's key.
	Name string
	// Config is the decoded target of the plugin's Spec.
	Config any
	// Present is true when the file has any of the section's keys.
	Present bool
	// Stage or Sink is the plugin that decoded it.
	Stage stages.StagePlugin
	Sink  stages.SinkPlugin
}

// Queues overrides the link in front of each stage. Unset links take the
// mode's default (live: latest links keep each stream's newest frames and
// serve the streams in turn, 2 per stream at capture and 1 in front of
// detect; motion and preprocess pull through handoff links; offline: block,
// 8 frames).
type Queues struct {
	Capture    *stages.Link `yaml:"capture"`
	Preprocess *stages.Link `yaml:"preprocess"`
	Detect     *stages.Link `yaml:"detect"`
	Track      *stages.Link `yaml:"track"`
	Sinks      *stages.Link `yaml:"sinks"`
}

// Scheduling lowers the threads that do background work, so the kernel
// runs the detector first: the preview's encoders (WebRTC and MJPEG) and the
// recorder's. Event sinks stay at the pipeline's priority (their queues
// block, so a starved one would hold the detector back).
type Scheduling struct {
	// Background is the background threads' class: batch (SCHED_BATCH at
	// Nice, the default: about a tenth of a busy CPU at nice 10), idle
	// (SCHED_IDLE: only CPUs inference leaves free), nice (Nice only) or
	// normal (untouched).
	Background sched.Class `yaml:"background"`
	// Nice is the background threads' nice value for batch and nice
	// (default 10; 0..19, lowering works without privileges).
	Nice *int `yaml:"nice"`
	// CPUs, when set, confines background threads to these CPUs ("1",
	// "2-3"); they must be in the process's cpuset.
	CPUs string `yaml:"cpus"`
}

// BackgroundPolicy returns the policy for background threads (the file
// was validated, so its CPU list parses).
func (s Scheduling) BackgroundPolicy() sched.Policy {
	cpus, _ := sched.ParseCPUs(s.CPUs)
	return sched.Policy{Class: s.Background, Nice: s.Nice, CPUs: cpus}
}

// Metrics configures the Prometheus /metrics and /healthz endpoint.
type Metrics struct {
	// Listen is host:port; empty disables the endpoint. Loopback by default.
	Listen string `yaml:"listen"`
}

// defaults returns the pipeline's own settings with every default set.
func defaults() Pipeline {
	return Pipeline{DrainTimeout: 10 * time.Second, Scheduling: Scheduling{Background: sched.Batch}}
}

// Stage returns the decoded section of the stage plugin called name.
func (p *Pipeline) Stage(name string) (Section, bool) {
	for _, s := range p.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return Section{}, false
}

// Sink returns the decoded section of the sink under key, when present.
func (p *Pipeline) Sink(key string) (Section, bool) {
	for _, s := range p.Sinks {
		if s.Name == key {
			return s, true
		}
	}
	return Section{}, false
}

// RemoveSink turns the sink under key off (tools such as soak and bench).
func (p *Pipeline) RemoveSink(key string) {
	p.Sinks = slices.DeleteFunc(p.Sinks, func(s Section) bool { return s.Name == key })
}

// StageConfig returns a stage's decoded config as its type C.
func StageConfig[C any](p *Pipeline, name string) (*C, bool) {
	s, ok := p.Stage(name)
	if !ok {
		return nil, false
	}
	return stages.ConfigAs[C](s.Config)
}

// SinkConfig returns a present sink's decoded config as its type C.
func SinkConfig[C any](p *Pipeline, key string) (*C, bool) {
	s, ok := p.Sink(key)
	if !ok {
		return nil, false
	}
	return stages.ConfigAs[C](s.Config)
}

// Env returns what components' checks and builders know of the pipeline.
func (p *Pipeline) Env() stages.Env {
	return stages.Env{Pipeline: p.Name, Streams: p.StreamIDs(), Live: p.Mode == Live, Resolve: p.Resolve}
}

// Weights returns the streams' weights that differ from 1, for the runner.
func (p *Pipeline) Weights() map[string]int {
	w := map[string]int{}
	for _, s := range p.Streams {
		if s.Weight > 1 {
			w[s.ID] = s.Weight
		}
	}
	return w
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
		case "capture":
			// Each stream's newest 2 frames, served in turn (the runner's
			// fair queue), so latency stays bounded however fast the
			// cameras are and every camera gets its share.
			l = stages.Link{Size: 2, Policy: stages.Latest}
		case "motion", "preprocess":
			// The cheap per-frame stages pull from there as fast as they go.
			l = stages.Link{Policy: stages.Handoff}
		case "detect":
			// The admission point of the expensive stage: each stream's
			// newest prepared frame, served in turn when a detector is
			// free. Frames wait here, not in a stage's hands, so a stall
			// behind the detector leaves fresh frames, not aged ones.
			l = stages.Link{Size: 1, Policy: stages.Latest}
		case "sinks":
			l = stages.Link{Size: 4, Policy: stages.Latest}
		}
	}
	if o != nil {
		if o.Size > 0 {
			l.Size = o.Size
			if l.Policy == stages.Handoff {
				l.Policy = stages.Block // a size asks for a buffer
			}
		}
		if o.Policy != "" {
			l.Policy = o.Policy
		}
	}
	return l
}

// resolveMode picks offline when every stream is a file read as fast as
// possible (its source config's Paced reports false: no realtime pacing, no
// loop), live otherwise.
func (p *Pipeline) resolveMode() {
	if p.Mode != "" {
		return
	}
	p.Mode = Offline
	for _, s := range p.Streams {
		paced, _ := s.Config.(interface{ Paced() bool })
		if Scheme(s.URL) != "file" || paced == nil || paced.Paced() {
			p.Mode = Live
			return
		}
	}
}

// validate checks the pipeline's own settings, reporting problems through
// add(path, err). Components' sections are checked by their specs.
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
	p.Scheduling.validate(msg)
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
	}
	p.validateLimits(add)
	p.validateFleet(add)
	if l := p.Metrics.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			msg("metrics.listen", "%q is not host:port (e.g. 127.0.0.1:9090)", l)
		}
	}
}

// Resolve turns a path written in the pipeline file into one to open:
// absolute, or relative to the working directory, or else relative to the
// pipeline file's parent directory (so `pipeline run pipelines/demo.yaml`
// works from the repository root and a pipeline copied elsewhere still finds
// models/ next to its pipelines/).
func (p *Pipeline) Resolve(path string) string {
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

// Scheme returns a stream URL's scheme: "file" for bare paths, "gst" for
// "gst:<pipeline>", else the text before "://" (lowercase); "" when it has none.
func Scheme(url string) string {
	if url == "" || strings.HasPrefix(url, "/") || strings.HasPrefix(url, ".") {
		return "file"
	}
	i := strings.Index(url, ":")
	if i < 0 {
		return "file"
	}
	return strings.ToLower(url[:i])
}

// SectionKey returns the value of one of a stage section's top-level keys
// (nil when the section has no such field), for diffing two files.
func SectionKey(s Section, key string) any {
	if s.Config == nil {
		return nil
	}
	v := reflect.ValueOf(s.Config)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	f, ok := fieldByKey(v, key)
	if !ok {
		return nil
	}
	return f.Interface()
}

func (s Scheduling) validate(msg func(path, format string, a ...any)) {
	if n := s.Nice; n != nil && (*n < 0 || *n > 19) {
		msg("scheduling.nice", "must be in 0..19 (background threads are only ever lowered), got %d", *n)
	} else if n != nil && (s.Background == sched.Idle || s.Background == sched.Normal) {
		msg("scheduling.nice", "applies to background: batch or nice, not %s", s.Background)
	}
	if _, err := sched.ParseAllowed(s.CPUs); err != nil {
		msg("scheduling.cpus", "%v", err)
	}
}
