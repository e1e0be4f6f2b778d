package natsink

import (
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/sink/hass"
	"github.com/osprey-vision/osprey/sink/spool"

	"github.com/osprey-vision/osprey/stages"
)

// Config configures the NATS sink: the `sinks.nats` block of a pipeline YAML.
// Start from DefaultConfig, decode the YAML over it, set Pipeline, then call
// Validate (New calls it too). Validate's errors are stages.FieldErrors with
// paths relative to the section.
type Config struct {
	// URL is the server URL list (comma-separated nats:// or tls:// URLs). Empty
	// starts an embedded nats-server in this process (see Embedded).
	URL string `yaml:"url"`
	// SubjectPrefix is the first subject token: <prefix>.<pipeline>.<stream>.<type>.
	SubjectPrefix string `yaml:"subject_prefix"`
	// Pipeline is the pipeline name, from the pipeline file's name (not a
	// key of this section: the plugin sets it).
	Pipeline string `yaml:"-"`
	// Node is the fleet node's name, put on detections messages (not a
	// key of this section: the plugin sets it).
	Node string `yaml:"-"`
	// Embedded configures the in-process server used when URL is empty.
	Embedded EmbeddedConfig `yaml:"embedded"`

	// Credentials is a .creds file (JWT + nkey seed) for decentralised auth.
	Credentials string `yaml:"credentials"`
	// NKeySeed is a file holding an nkey user seed (SU...).
	NKeySeed string `yaml:"nkey_seed"`
	// User and Password authenticate with a user/password pair.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// Token authenticates with a bearer token.
	Token string `yaml:"token"`
	// TLS configures server verification and a client certificate.
	TLS TLSConfig `yaml:"tls"`

	// JetStream, when set, publishes with acknowledgements into a stream;
	// when nil the sink uses core NATS publish (acknowledged by a flush).
	JetStream *JetStreamConfig `yaml:"jetstream"`
	// Spool configures the buffer between Write and the server.
	Spool SpoolConfig `yaml:"spool"`
	// Detections publishes every frame's detections on
	// <prefix>.<pipeline>.<stream>.detections (core NATS, dropped when
	// disconnected, never spooled). Off by default: it is a high rate.
	Detections bool `yaml:"detections"`

	// Snapshots, when set, stores a JPEG for selected event types in a
	// JetStream object store and puts its name in the event's snapshot field.
	// Needs jetstream, and frames whose image is still held (see Write).
	Snapshots *SnapshotConfig `yaml:"snapshots"`

	// MQTT, when set, serves the events to MQTT clients (the embedded
	// server's MQTT listener) and keeps zone, line and snapshot state with
	// Home Assistant discovery configs on the broker (sink/hass). See
	// docs/mqtt.md.
	MQTT *MQTTConfig `yaml:"mqtt"`
	// Streams returns the pipeline's streams with their zones and lines, for
	// the MQTT state entities (not a key of this section: the plugin sets it).
	Streams func() []hass.Stream `yaml:"-"`

	// ConnectTimeout bounds one connection attempt (default 5s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// PublishTimeout bounds the wait for a JetStream ack or a flush (default 5s).
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// CloseTimeout bounds how long Close keeps delivering spooled events
	// (default 5s); what is left stays in the spool for the next start.
	CloseTimeout time.Duration `yaml:"close_timeout"`
}

// EmbeddedConfig configures the in-process nats-server.
type EmbeddedConfig struct {
	// Host to listen on (default 127.0.0.1).
	Host string `yaml:"host"`
	// Port to listen on (default 4222; -1 picks a free port).
	Port int `yaml:"port"`
	// StoreDir is the JetStream store directory (default
	// $TMPDIR/osprey-nats/<pipeline>). JetStream is always on when embedded.
	StoreDir string `yaml:"store_dir"`
}

// MQTTConfig is the `mqtt` block: the embedded server's MQTT listener and
// the broker the state publisher connects to.
type MQTTConfig struct {
	// Listen is the host:port of the embedded server's MQTT listener (port
	// -1 picks a free one). Only without url: an external server's MQTT
	// listener is set in its own config.
	Listen string `yaml:"listen"`
	// Broker is the MQTT address (host:port or tcp://host:port) the state
	// publisher connects to: default the listener; required with url.
	Broker string `yaml:"broker"`
	// User and Password authenticate the state publisher to the broker.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// Discovery publishes Home Assistant discovery configs (default true).
	Discovery *bool `yaml:"discovery"`
	// DiscoveryPrefix is Home Assistant's discovery prefix (default
	// homeassistant).
	DiscoveryPrefix string `yaml:"discovery_prefix"`
}

// TLSConfig holds PEM file paths. CA alone verifies the server; Cert and Key
// together add a client certificate.
type TLSConfig struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// JetStreamConfig selects acknowledged publishing into a stream.
type JetStreamConfig struct {
	// Stream is the stream name (default OSPREY).
	Stream string `yaml:"stream"`
	// Create creates or updates the stream at Connect; otherwise it must exist.
	// With the embedded server the stream is always created.
	Create bool `yaml:"create"`
	// Subjects the stream captures when created (default
	// <prefix>.<pipeline>.*.*.*: events only, not control or detections).
	Subjects []string `yaml:"subjects"`
	// MaxAge is how long the stream keeps events (0: forever).
	MaxAge time.Duration `yaml:"max_age"`
	// Replicas is the stream's replica count (default 1; 3 in a cluster).
	Replicas int `yaml:"replicas"`
	// Domain is the JetStream domain to use, for a stream on a site hub
	// reached through a leaf node (examples/nats/leaf-device.conf).
	Domain string `yaml:"domain"`
	// DuplicateWindow is how long the stream remembers message IDs to drop
	// replays (default 2m). Replays after an outage or crash longer than this
	// may be stored twice.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
}

// SnapshotConfig selects event snapshots.
type SnapshotConfig struct {
	// Bucket is the object store bucket (default OSPREY_SNAPSHOTS), created
	// when missing.
	Bucket string `yaml:"bucket"`
	// Types lists the event types that get a snapshot (default
	// track.started, line.crossed, zone.loitering).
	Types []string `yaml:"types"`
	// Crop stores the event's box (with a margin) instead of the whole frame.
	Crop bool `yaml:"crop"`
	// Quality is the JPEG quality, 1-100 (default 80).
	Quality int `yaml:"quality"`
	// MaxAge is how long the bucket keeps snapshots (0: forever).
	MaxAge time.Duration `yaml:"max_age"`
}

// SpoolConfig configures the event buffer.
type SpoolConfig struct {
	// Dir is the on-disk spool directory. Empty keeps events in a bounded
	// memory queue instead: they survive an outage but not a crash.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the spool (default 64 MiB); when full the oldest events
	// are dropped and counted.
	MaxBytes int64 `yaml:"max_bytes"`
	// Fsync is the spool's fsync policy: always (default), interval, never.
	Fsync string `yaml:"fsync"`
}

// DefaultConfig returns the defaults to decode a YAML block over.
func DefaultConfig() Config {
	return Config{
		SubjectPrefix:  "osprey",
		Embedded:       EmbeddedConfig{Host: "127.0.0.1", Port: 4222},
		Spool:          SpoolConfig{MaxBytes: 64 << 20},
		ConnectTimeout: 5 * time.Second,
		PublishTimeout: 5 * time.Second,
		CloseTimeout:   5 * time.Second,
	}
}

// withDefaults fills zero fields so a Config built in code needs no boilerplate.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = d.SubjectPrefix
	}
	if c.Embedded.Host == "" {
		c.Embedded.Host = d.Embedded.Host
	}
	if c.Embedded.Port == 0 {
		c.Embedded.Port = d.Embedded.Port
	}
	if c.Embedded.StoreDir == "" && c.Pipeline != "" {
		c.Embedded.StoreDir = filepath.Join(os.TempDir(), "osprey-nats", event.SubjectToken(c.Pipeline))
	}
	if c.Spool.MaxBytes == 0 {
		c.Spool.MaxBytes = d.Spool.MaxBytes
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = d.PublishTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = d.CloseTimeout
	}
	if c.URL == "" && c.JetStream != nil {
		c.JetStream.Create = true
	}
	if sc := c.Snapshots; sc != nil {
		cp := *sc
		if cp.Bucket == "" {
			cp.Bucket = "OSPREY_SNAPSHOTS"
		}
		if len(cp.Types) == 0 {
			cp.Types = []string{string(event.TrackStarted), string(event.LineCrossed), string(event.Loitering)}
		}
		if cp.Quality == 0 {
			cp.Quality = 80
		}
		c.Snapshots = &cp
	}
	if mc := c.MQTT; mc != nil {
		cp := *mc
		if cp.Discovery == nil {
			on := true
			cp.Discovery = &on
		}
		if cp.DiscoveryPrefix == "" {
			cp.DiscoveryPrefix = "homeassistant"
		}
		c.MQTT = &cp
	}
	if js := c.JetStream; js != nil {
		cp := *js
		if cp.Stream == "" {
			cp.Stream = "OSPREY"
		}
		if len(cp.Subjects) == 0 {
			cp.Subjects = []string{c.SubjectPrefix + "." + event.SubjectToken(c.Pipeline) + ".*.*.*"}
		}
		if cp.Replicas == 0 {
			cp.Replicas = 1
		}
		if cp.DuplicateWindow == 0 {
			cp.DuplicateWindow = 2 * time.Minute
		}
		c.JetStream = &cp
	}
	return c
}

// Validate checks the configuration and reports every problem at once, each
// naming its field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(path, format string, a ...any) { errs = append(errs, stages.Errorf(path, format, a...)) }
	if c.Pipeline == "" {
		bad("", "the pipeline name is empty: set Config.Pipeline")
	}
	if strings.ContainsAny(c.SubjectPrefix, " \t*>") || strings.HasPrefix(c.SubjectPrefix, ".") || strings.HasSuffix(c.SubjectPrefix, ".") {
		bad("subject_prefix", "%q is not a valid subject prefix: use tokens of letters, digits, '-' and '_' separated by dots", c.SubjectPrefix)
	}
	for _, u := range strings.Split(c.URL, ",") {
		if c.URL == "" {
			break
		}
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || p.Host == "" {
			bad("url", "%q is not a server URL: use nats://host:4222 (or leave it empty for an embedded server)", redact(u))
			continue
		}
		switch p.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			bad("url", "%q has scheme %q: use nats://, tls://, ws:// or wss://", redact(u), p.Scheme)
		}
	}
	if c.URL == "" && (c.Embedded.Port < -1 || c.Embedded.Port > 65535) {
		bad("embedded.port", "%d is out of range: use 1-65535, or -1 for a free port", c.Embedded.Port)
	}
	auth := 0
	for _, set := range []bool{c.Credentials != "", c.NKeySeed != "", c.User != "", c.Token != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		bad("credentials", "credentials, nkey_seed, user and token are alternatives: set only one")
	}
	if c.Password != "" && c.User == "" {
		bad("password", "is set without user")
	}
	for _, f := range []struct{ name, path string }{{"credentials", c.Credentials}, {"nkey_seed", c.NKeySeed}, {"tls.ca", c.TLS.CA}, {"tls.cert", c.TLS.Cert}, {"tls.key", c.TLS.Key}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad(f.name, "file %s: %v", f.path, errors.Unwrap(err))
		}
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		bad("tls.cert", "tls.cert and tls.key must be set together")
	}
	if js := c.JetStream; js != nil {
		if strings.ContainsAny(js.Stream, " .*>/\\") {
			bad("jetstream.stream", "%q is not a valid stream name: no spaces, dots, wildcards or slashes", js.Stream)
		}
		if js.Replicas < 1 || js.Replicas > 5 {
			bad("jetstream.replicas", "%d is out of range: use 1 to 5", js.Replicas)
		}
		if js.MaxAge < 0 {
			bad("jetstream.max_age", "%v is negative", js.MaxAge)
		}
		if js.DuplicateWindow < 0 || (js.MaxAge > 0 && js.DuplicateWindow > js.MaxAge) {
			bad("jetstream.duplicate_window", "%v must be positive and not longer than max_age", js.DuplicateWindow)
		}
	}
	if sc := c.Snapshots; sc != nil {
		if c.JetStream == nil {
			bad("snapshots", "needs jetstream: snapshots are stored in a JetStream object store")
		}
		if strings.ContainsAny(sc.Bucket, " .*>/\\") {
			bad("snapshots.bucket", "%q is not a valid bucket name: use letters, digits, '-' and '_'", sc.Bucket)
		}
		for _, typ := range sc.Types {
			if !slices.Contains(event.Types, event.Type(typ)) {
				bad("snapshots.types", "unknown event type %q", typ)
			}
		}
		if sc.Quality < 1 || sc.Quality > 100 {
			bad("snapshots.quality", "%d is out of range: use 1 to 100", sc.Quality)
		}
	}
	if mc := c.MQTT; mc != nil {
		errs = append(errs, mc.validate(c.URL != "")...)
	}
	if c.Spool.MaxBytes < 64<<10 {
		bad("spool.max_bytes", "%d is too small: use at least 65536", c.Spool.MaxBytes)
	}
	if _, err := spool.ParseSyncPolicy(c.Spool.Fsync); err != nil {
		bad("spool.fsync", "%q is unknown: use always, interval or never", c.Spool.Fsync)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"connect_timeout", c.ConnectTimeout}, {"publish_timeout", c.PublishTimeout}, {"close_timeout", c.CloseTimeout}} {
		if d.d < 0 {
			bad(d.name, "%v is negative", d.d)
		}
	}
	return errors.Join(errs...)
}

// validate checks the mqtt block; external is true when url is set.
func (m MQTTConfig) validate(external bool) []error {
	var errs []error
	bad := func(path, format string, a ...any) { errs = append(errs, stages.Errorf(path, format, a...)) }
	if external && m.Listen != "" {
		bad("mqtt.listen", "only the embedded server (url empty) gets an MQTT listener from Osprey: enable mqtt in your nats-server's config (docs/mqtt.md) and set mqtt.broker to its address")
	}
	if external && m.Broker == "" {
		bad("mqtt.broker", "is empty, and url is set: set the host:port of your server's MQTT listener (docs/mqtt.md)")
	}
	if !external && m.Listen == "" {
		bad("mqtt.listen", "is empty: set host:port for the embedded server's MQTT listener, e.g. 127.0.0.1:1883")
	}
	if m.Listen != "" {
		host, port, err := net.SplitHostPort(m.Listen)
		n, perr := strconv.Atoi(port)
		switch {
		case err != nil:
			bad("mqtt.listen", "%q is not host:port: use e.g. 127.0.0.1:1883 (0.0.0.0:1883 for every interface)", m.Listen)
		case perr != nil || n == 0 || n < -1 || n > 65535:
			bad("mqtt.listen", "port %q is out of range: use 1-65535, or -1 for a free port", port)
		case host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /:"):
			bad("mqtt.listen", "host %q is not an address or a name", host)
		}
	}
	if m.Broker != "" {
		if _, err := hass.BrokerURL(m.Broker); err != nil {
			bad("mqtt.broker", "%q: use host:port or tcp://host:port", m.Broker)
		}
	}
	if m.Password != "" && m.User == "" {
		bad("mqtt.password", "is set without mqtt.user")
	}
	if p := m.DiscoveryPrefix; strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		bad("mqtt.discovery_prefix", "%q is not a topic prefix: no wildcards, no leading or trailing '/'", p)
	}
	return errs
}

// redact hides credentials in a URL list so it can be logged.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil {
			// Unparseable: hide everything before '@' if any.
			if at := strings.LastIndex(u, "@"); at >= 0 {
				parts[i] = "***" + u[at:]
			}
			continue
		}
		if p.User != nil {
			p.User = nil
			parts[i] = strings.Replace(p.String(), "://", "://***@", 1)
			continue
		}
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// ServerURL returns the configured server URL list ("" for an embedded
// server): fleet mode connects there when fleet.nats is empty.
func (c Config) ServerURL() string { return c.URL }

// ClientOptions returns the credentials and TLS options of the section as
// nats.go options (fleet mode reuses them when fleet.nats is empty).
func (c Config) ClientOptions() ([]nats.Option, error) { return clientOptions(c.withDefaults()) }
