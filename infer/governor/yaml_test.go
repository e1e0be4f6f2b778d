package governor

import (
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// The detect.governor block decodes strictly with the project's YAML library.
func TestYAML(t *testing.T) {
	src := `
target_p99: 120ms
window: 30
down_after: 1
up_after: 3
headroom: 0.7
levels:
  - { name: fp32 }
  - { name: int8, variant: models/ssd_mobilenet_v2_coco.int8.onnx }
  - { name: int8-every2, variant: models/ssd_mobilenet_v2_coco.int8.onnx, every: 2, threads: 1 }
`
	var c Config
	if err := yaml.UnmarshalWithOptions([]byte(src), &c, yaml.DisallowUnknownField()); err != nil {
		t.Fatal(err)
	}
	if c.TargetP99 != 120*time.Millisecond || len(c.Levels) != 3 || c.Levels[2].Every != 2 || c.Levels[2].Threads != 1 || c.Levels[1].Variant == "" {
		t.Fatalf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalWithOptions([]byte("target_p99: 1s\nlevel: []\n"), &c, yaml.DisallowUnknownField()); err == nil {
		t.Fatal("unknown key accepted")
	}
}
