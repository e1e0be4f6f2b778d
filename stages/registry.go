package stages

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/object"
)

// Registry maps what a pipeline file names to the components that implement
// it: URL schemes to sources, top-level keys to stages, keys under `sinks:`
// to sinks. It is built explicitly (package components lists the built-ins);
// tests build their own. The config loader decodes each section into the
// component's own type and runs the component's own checks, so neither the
// loader nor this package imports a component.
type Registry struct {
	sources map[string]SourcePlugin
	stages  []StagePlugin
	sinks   map[string]SinkPlugin
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{sources: map[string]SourcePlugin{}, sinks: map[string]SinkPlugin{}}
}

// AddSource registers p for each of its URL schemes. Registering a scheme
// twice is a programming error in the registry's list and panics.
func (r *Registry) AddSource(p SourcePlugin) *Registry {
	for _, s := range p.Schemes {
		if _, dup := r.sources[s]; dup {
			panic(fmt.Sprintf("stages: source scheme %q registered twice", s))
		}
		r.sources[s] = p
	}
	return r
}

// AddStage appends p to the pipeline: stages run in the order they were
// added. A top-level key claimed twice panics.
func (r *Registry) AddStage(p StagePlugin) *Registry {
	for _, k := range p.Keys {
		if _, ok := r.StageOwning(k); ok {
			panic(fmt.Sprintf("stages: top-level key %q claimed by two stages", k))
		}
	}
	r.stages = append(r.stages, p)
	return r
}

// AddSink registers p under its key in `sinks:`; a key registered twice panics.
func (r *Registry) AddSink(p SinkPlugin) *Registry {
	if _, dup := r.sinks[p.Key]; dup {
		panic(fmt.Sprintf("stages: sink %q registered twice", p.Key))
	}
	r.sinks[p.Key] = p
	return r
}

// Source returns the source for a URL scheme ("file", "rtsp", "gst"...).
func (r *Registry) Source(scheme string) (SourcePlugin, bool) {
	p, ok := r.sources[scheme]
	return p, ok
}

// Schemes returns the registered URL schemes, sorted.
func (r *Registry) Schemes() []string { return sortedKeys(r.sources) }

// Stages returns the stage plugins in pipeline order.
func (r *Registry) Stages() []StagePlugin { return slices.Clone(r.stages) }

// StreamKeys returns every key a streams[] item may carry for a stage.
func (r *Registry) StreamKeys() map[string]StagePlugin {
	out := map[string]StagePlugin{}
	for _, p := range r.stages {
		for _, k := range p.StreamKeys {
			out[k] = p
		}
	}
	return out
}

// StageOwning returns the stage plugin that owns a top-level key.
func (r *Registry) StageOwning(key string) (StagePlugin, bool) {
	for _, p := range r.stages {
		if slices.Contains(p.Keys, key) {
			return p, true
		}
	}
	return StagePlugin{}, false
}

// Sink returns the sink registered under key.
func (r *Registry) Sink(key string) (SinkPlugin, bool) {
	p, ok := r.sinks[key]
	return p, ok
}

// SinkKeys returns the registered sink keys, sorted.
func (r *Registry) SinkKeys() []string { return sortedKeys(r.sinks) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Spec declares one component's configuration: the decode target with its
// defaults set, and the component's own checks. Build one with NewSpec.
type Spec struct {
	defaults func() any
	validate func(cfg any, env Env) error
}

// NewSpec returns the spec of a config type C. defaults returns C with every
// default set (the loader decodes the YAML over it); validate, which may be
// nil, reports every problem at once as errors whose paths are relative to
// the component's own section (see Errorf).
func NewSpec[C any](defaults func() C, validate func(c *C, env Env) error) Spec {
	return Spec{
		defaults: func() any { c := defaults(); return &c },
		validate: func(cfg any, env Env) error {
			c, err := typed[C](cfg)
			if err != nil {
				return err
			}
			if validate == nil {
				return nil
			}
			return validate(c, env)
		},
	}
}

// Defaults returns a new decode target (a pointer to the config type) with
// its defaults set.
func (s Spec) Defaults() any { return s.defaults() }

// Validate runs the component's checks on a decoded target.
func (s Spec) Validate(cfg any, env Env) error { return s.validate(cfg, env) }

// Env is what a component's checks may know about the pipeline around it.
type Env struct {
	// Pipeline is the pipeline's name.
	Pipeline string
	// Streams are the stream IDs, in file order.
	Streams []string
	// Live is true in live mode (deadlines, latest-frame queues).
	Live bool
	// Resolve turns a path written in the pipeline file into one to open
	// (relative paths are tried from the working directory, then from the
	// pipeline file's directory's parent).
	Resolve func(path string) string
}

// SourcePlugin builds the sources of the URL schemes it registers.
type SourcePlugin struct {
	// Schemes are the URL schemes it serves ("file", "rtsp", "v4l2", "gst", "test").
	Schemes []string
	// Spec is the configuration of one streams[] item (id and url included).
	Spec Spec
	// Build returns the source for a decoded, validated item. It must not
	// connect: the runner calls Connect.
	Build func(cfg any, res *Resources) (Source, error)
}

// StagePlugin builds pipeline stages from the top-level keys it owns.
type StagePlugin struct {
	// Name is the stage's name in logs, metrics and `queues:`.
	Name string
	// Keys are the top-level pipeline keys this plugin owns (detect owns
	// model and detect). Spec's type has one yaml field per key.
	Keys []string
	// Spec is the configuration of those keys, decoded together.
	Spec Spec
	// StreamKeys are keys of Keys that a streams[] item may carry too, to
	// override the top-level section for that stream (streams[].motion).
	// Spec's type must then implement StreamOverrider.
	StreamKeys []string
	// Build returns the stages to run, in order (none: the plugin is off for
	// this pipeline). Stages are built before sinks, so Build may provide
	// values in res for the sinks (Overlays).
	Build func(cfg any, res *Resources) ([]StageSpec, error)
}

// SinkPlugin builds a sink from its section under `sinks:`.
type SinkPlugin struct {
	// Key is the sink's key under `sinks:` and its name in metrics.
	Key string
	// Spec is the configuration of its section.
	Spec Spec
	// Link, when set, is the queue in front of the sink instead of the
	// pipeline's `queues.sinks` (a preview keeps only the newest frames).
	// Event sinks get a blocking queue whatever it says.
	Link *Link
	// Control is true for sinks that answer requests about the running
	// pipeline through Resources.Control: the pipeline then keeps the latest
	// frame of each stream for snapshot requests.
	Control bool
	// Build returns the sink for a decoded, validated section. It must not
	// connect: the runner calls Connect.
	Build func(cfg any, res *Resources) (Sink, error)
}

// Resources is what the pipeline gives the components it builds, instead of
// setters called after construction. What one component provides another
// (the track stage's zones and lines for the preview) goes through Shared.
type Resources struct {
	// Pipeline is the pipeline's name.
	Pipeline string
	// Node is the fleet node's name ("" outside fleet mode).
	Node string
	// Streams are the stream IDs in file order.
	Streams []string
	// StreamURL returns a stream's URL as written, credentials included
	// (never log it: redact first), or "" for an unknown stream. It follows
	// hot reloads. A recorder uses it to copy a camera's encoded stream.
	StreamURL func(stream string) string
	// Camera reports whether a stream's source is a live camera (RTSP,
	// V4L2, GStreamer: its source config has a Camera method that says so),
	// false for recordings, test patterns and unknown streams; nil counts as
	// false everywhere. It follows hot reloads. Stages pick camera defaults
	// with it (motion gating).
	Camera func(stream string) bool
	// Live is true in live mode.
	Live bool
	// Log is the component's logger (the pipeline's, with the component named).
	Log *slog.Logger
	// Metrics registers the component's own Prometheus collectors.
	Metrics prometheus.Registerer
	// Now is the wall clock (tests may replace it).
	Now func() time.Time
	// Resolve turns a path from the pipeline file into one to open; never nil
	// in Resources handed to Build (the identity when there is no file).
	Resolve func(path string) string
	// Emit delivers events that belong to no frame (source up/down, the
	// tracks a stopping stage ends) to the event sinks, losslessly. It is
	// safe to call from any goroutine once the pipeline runs.
	Emit func(stream string, evs ...event.Event)
	// SourceState is told of every change of a source's health.
	SourceState func(SourceState)
	// Shared holds what one component provides the others (the zones and
	// lines to draw on a preview); one value per pipeline, shared by every
	// copy of its Resources.
	Shared *Shared
	// Stats returns live pipeline statistics for dashboards.
	Stats func() LiveStats
	// Saturated reports whether the detector is at capacity on busy CPUs:
	// background work (preview encoding) then yields.
	Saturated func() bool
	// Control answers requests about the running pipeline (NATS control).
	Control Control
	// Background, when set, runs fn on an OS thread with the pipeline's
	// background scheduling (`scheduling:`: a lower class, nice value or
	// CPUs; the pipeline logs a refusal once and runs fn anyway) and
	// returns when fn does. Run a goroutine's whole encoding loop
	// (preview, MJPEG, recording) in it, as the goroutine's last call: the
	// goroutine stays on the lowered thread, which ends with it. Work that a
	// blocking queue waits on (event sinks) must not use it, or the
	// detector could wait for a thread the kernel runs last.
	Background func(fn func())
}

// RunInBackground runs fn through r.Background, or directly when r has none.
func (r *Resources) RunInBackground(fn func()) {
	if r != nil && r.Background != nil {
		r.Background(fn)
		return
	}
	fn()
}

// Shared is what components provide each other while a pipeline is built
// (stages first, then sinks) and while it runs. It is safe for concurrent use.
type Shared struct {
	mu         sync.Mutex
	overlays   func(stream string) Overlay
	tracks     func(stream string) []object.Track
	modelInput func() (w, h int)
	redacted   func(stream string) bool
}

// ProvideRedaction registers the function that says whether a stream's
// pictures reach the sinks redacted (the privacy stage calls it).
func (s *Shared) ProvideRedaction(fn func(stream string) bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.redacted = fn
	s.mu.Unlock()
}

// Redacted reports whether stream's pictures reach the sinks redacted: a
// recorder must then encode them instead of copying the camera's stream.
func (s *Shared) Redacted(stream string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	fn := s.redacted
	s.mu.Unlock()
	return fn != nil && fn(stream)
}

// ProvideTracks registers the function that returns a stream's current
// tracks (the track stage calls it; motion gating reads it).
func (s *Shared) ProvideTracks(fn func(stream string) []object.Track) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.tracks = fn
	s.mu.Unlock()
}

// Tracks returns stream's current tracks; nil when no stage provides them.
func (s *Shared) Tracks(stream string) []object.Track {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	fn := s.tracks
	s.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(stream)
}

// ProvideModelInput registers the function that returns the detector's
// input size in pixels (<= 0 when dynamic); the detect stage calls it.
func (s *Shared) ProvideModelInput(fn func() (w, h int)) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.modelInput = fn
	s.mu.Unlock()
}

// ModelInput returns the detector's input size; ok is false before a
// detect stage provides it.
func (s *Shared) ModelInput() (w, h int, ok bool) {
	if s == nil {
		return 0, 0, false
	}
	s.mu.Lock()
	fn := s.modelInput
	s.mu.Unlock()
	if fn == nil {
		return 0, 0, false
	}
	w, h = fn()
	return w, h, true
}

// ProvideOverlays registers the function that returns a stream's zones and
// lines (the stage that owns them calls it when built).
func (s *Shared) ProvideOverlays(fn func(stream string) Overlay) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.overlays = fn
	s.mu.Unlock()
}

// Overlays returns stream's zones and lines; empty when no stage provides them.
func (s *Shared) Overlays(stream string) Overlay {
	if s == nil {
		return Overlay{}
	}
	s.mu.Lock()
	fn := s.overlays
	s.mu.Unlock()
	if fn == nil {
		return Overlay{}
	}
	return fn(stream)
}

// Named returns a copy of res whose logger names the component.
func (res *Resources) Named(kind, name string) *Resources {
	c := *res
	if c.Log != nil {
		c.Log = c.Log.With(kind, name)
	}
	return &c
}

// SourceState is a source's health at one transition.
type SourceState struct {
	// Stream is the stream ID.
	Stream string
	// Up is true once frames flow, false when the stream was lost or ended.
	Up bool
	// Reason says why the stream went down ("" when up).
	Reason string
	// URL is the stream URL with credentials redacted.
	URL string
	// At is when the transition was observed.
	At time.Time
}

// Overlay is what a preview draws over a stream besides boxes: its zones
// and lines, in normalised [0,1] coordinates.
type Overlay struct {
	Zones []OverlayZone
	Lines []OverlayLine
}

// OverlayZone is a named polygon.
type OverlayZone struct {
	Name    string       `json:"name"`
	Polygon []geom.Point `json:"polygon"`
}

// OverlayLine is a named segment.
type OverlayLine struct {
	Name string     `json:"name"`
	From geom.Point `json:"from"`
	To   geom.Point `json:"to"`
}

// LiveStats is the pipeline's recent activity, for dashboards: frames per
// second out of the pipeline per stream, drops by stage/reason since start,
// and mean stage latency over the last poll window.
type LiveStats struct {
	FPS     map[string]float64 `json:"fps"`
	Drops   map[string]uint64  `json:"drops"`
	StageMs map[string]float64 `json:"stage_ms"`
}

// Control is what the running pipeline answers on request (NATS control
// subjects). Implementations are safe for concurrent use and quick.
type Control interface {
	// Stats returns pipeline statistics, encoded as JSON in replies.
	Stats() any
	// Streams returns the streams and their state, encoded as JSON.
	Streams() any
	// Snapshot returns a JPEG of the latest frame of stream, or an error
	// (unknown stream, no frame yet) for the requester.
	Snapshot(stream string) ([]byte, error)
}

// StreamOverrider is implemented by stage configs with StreamKeys. After
// decoding the top-level keys, the loader calls OverrideFor for each stream
// item that carries key and decodes the item's node over the returned
// target: a pointer to the stream's own copy of the top-level value, which
// the config keeps for that stream.
type StreamOverrider interface {
	OverrideFor(key, stream string) any
}

// StreamForgetter is an optional interface for stages that keep per-stream
// state: when a stream is removed at run time (hot reload) the runner's
// owner calls ForgetStream and emits the events it returns (tracks ended).
type StreamForgetter interface {
	ForgetStream(stream string) []event.Event
}

// Reconfigurer is an optional interface for stages that apply a new
// configuration of their plugin's keys while running (hot reload). cfg is
// the new decoded section (the plugin's Spec type). It returns the streams
// whose behaviour changed, or an error when the change needs a restart.
type Reconfigurer interface {
	Reconfigure(cfg any) (changed []string, err error)
}

// NewSourcePlugin returns a source plugin for a config type C.
func NewSourcePlugin[C any](schemes []string, defaults func() C, validate func(*C, Env) error, build func(*C, *Resources) (Source, error)) SourcePlugin {
	return SourcePlugin{Schemes: schemes, Spec: NewSpec(defaults, validate), Build: func(cfg any, res *Resources) (Source, error) {
		c, err := typed[C](cfg)
		if err != nil {
			return nil, err
		}
		return build(c, res)
	}}
}

// NewStagePlugin returns a stage plugin for a config type C, whose yaml
// fields are the top-level keys it owns.
func NewStagePlugin[C any](name string, keys []string, defaults func() C, validate func(*C, Env) error, build func(*C, *Resources) ([]StageSpec, error)) StagePlugin {
	return StagePlugin{Name: name, Keys: keys, Spec: NewSpec(defaults, validate), Build: func(cfg any, res *Resources) ([]StageSpec, error) {
		c, err := typed[C](cfg)
		if err != nil {
			return nil, err
		}
		return build(c, res)
	}}
}

// NewSinkPlugin returns a sink plugin for a config type C.
func NewSinkPlugin[C any](key string, defaults func() C, validate func(*C, Env) error, build func(*C, *Resources) (Sink, error)) SinkPlugin {
	return SinkPlugin{Key: key, Spec: NewSpec(defaults, validate), Build: func(cfg any, res *Resources) (Sink, error) {
		c, err := typed[C](cfg)
		if err != nil {
			return nil, err
		}
		return build(c, res)
	}}
}

// ConfigAs returns a decoded section as its config type C (tools such as
// bench read and adjust a component's settings before building).
func ConfigAs[C any](cfg any) (*C, bool) {
	c, ok := cfg.(*C)
	return c, ok
}

func typed[C any](cfg any) (*C, error) {
	c, ok := cfg.(*C)
	if !ok {
		return nil, fmt.Errorf("stages: config of type %T given to a component of %T", cfg, (*C)(nil))
	}
	return c, nil
}
