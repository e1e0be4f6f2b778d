package natsink

import (
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// TestDecodeYAML decodes a sinks.nats block the way the pipeline loader does
// (strict, over DefaultConfig) and checks every field lands.
func TestDecodeYAML(t *testing.T) {
	src := `
url: nats://osprey:pw@10.0.0.2:4222
subject_prefix: site-a
user: osprey
password: pw
jetstream: { stream: FLEET, create: true, subjects: ["site-a.*.*.*.*"], max_age: 168h, replicas: 3, duplicate_window: 5m, domain: site }
spool: { dir: /var/lib/osprey/spool, max_bytes: 1048576, fsync: interval }
snapshots: { types: [line.crossed], crop: true, quality: 70 }
detections: true
close_timeout: 10s
`
	cfg := DefaultConfig()
	if err := yaml.UnmarshalWithOptions([]byte(src), &cfg, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	cfg.Pipeline = "lobby"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	js := cfg.JetStream
	if cfg.SubjectPrefix != "site-a" || js.Stream != "FLEET" || js.MaxAge != 168*time.Hour || js.Replicas != 3 ||
		js.DuplicateWindow != 5*time.Minute || js.Domain != "site" || cfg.Spool.MaxBytes != 1<<20 || cfg.Spool.Fsync != "interval" ||
		!cfg.Snapshots.Crop || cfg.Snapshots.Quality != 70 || !cfg.Detections || cfg.CloseTimeout != 10*time.Second ||
		cfg.PublishTimeout != 5*time.Second || cfg.Embedded.Port != 4222 {
		t.Fatalf("decoded %+v / %+v", cfg, *js)
	}
	err := yaml.UnmarshalWithOptions([]byte("jetstream: { strem: X }\n"), &cfg, yaml.Strict())
	if err == nil || !strings.Contains(err.Error(), `unknown field "strem"`) {
		t.Fatalf("unknown key: %v", err)
	}
}
