package natsink_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// Bad mqtt blocks in a pipeline file are reported with file:line:col and
// the field, through the real loader and registry.
func TestMQTTConfigErrorsArePositioned(t *testing.T) {
	model, _ := filepath.Abs("../../models/ssd_mobilenet_v2_coco.onnx")
	realpart.File(t, realpart.SSDModel, model)
	head := "name: lobby\nstreams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\nsinks:\n  nats:\n"
	for _, tt := range []struct{ name, section, err string }{
		{"bad listen", "    mqtt: { listen: \"1883\" }\n",
			`p.yaml:6:21: sinks.nats.mqtt.listen: "1883" is not host:port`},
		{"listen port", "    mqtt:\n      listen: 127.0.0.1:99999\n",
			`p.yaml:7:15: sinks.nats.mqtt.listen: port "99999" is out of range`},
		{"external url, no broker", "    url: nats://hub:4222\n    mqtt: { discovery: true }\n",
			`p.yaml:7:11: sinks.nats.mqtt.broker: is empty, and url is set`},
		{"external url with listen", "    url: nats://hub:4222\n    mqtt: { listen: 0.0.0.0:1883, broker: hub:1883 }\n",
			`p.yaml:7:21: sinks.nats.mqtt.listen: only the embedded server`},
		{"unknown key", "    mqtt: { listen: 127.0.0.1:1883, retain: true }\n",
			`p.yaml:6:37: sinks.nats.mqtt.retain: unknown field "retain"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("p.yaml", []byte(head+tt.section), components.Builtin())
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got\n%v\nwant it to contain\n%s", err, tt.err)
			}
		})
	}
}
