package hass

import (
	"encoding/json"
	"fmt"
)

// Home Assistant MQTT discovery: one retained config per entity on
// <discovery_prefix>/<component>/<node_id>/<object_id>/config, where node_id
// is osprey_<pipeline> and object_id names the stream and the object. Each
// stream is one device; its entities share the device block and the
// pipeline's availability topic.

// entityConfig is the subset of Home Assistant's MQTT entity options Osprey
// sets. Fields left empty are omitted, so one struct serves every component.
type entityConfig struct {
	Name               string  `json:"name"`
	UniqueID           string  `json:"unique_id"`
	StateTopic         string  `json:"state_topic,omitempty"`
	ValueTemplate      string  `json:"value_template,omitempty"`
	PayloadOn          string  `json:"payload_on,omitempty"`
	PayloadOff         string  `json:"payload_off,omitempty"`
	DeviceClass        string  `json:"device_class,omitempty"`
	StateClass         string  `json:"state_class,omitempty"`
	Icon               string  `json:"icon,omitempty"`
	ImageTopic         string  `json:"image_topic,omitempty"`
	ContentType        string  `json:"content_type,omitempty"`
	AvailabilityTopic  string  `json:"availability_topic"`
	PayloadAvailable   string  `json:"payload_available"`
	PayloadUnavailable string  `json:"payload_not_available"`
	Device             device  `json:"device"`
	Origin             origin  `json:"origin"`
	QoS                float64 `json:"qos"`
}

type device struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
}

// origin names the software behind the entity (Home Assistant logs it).
type origin struct {
	Name       string `json:"name"`
	SupportURL string `json:"support_url"`
}

const (
	online  = "online"
	offline = "offline"
)

// discoveryMsg is one retained discovery config.
type discoveryMsg struct {
	topic   string
	payload []byte
}

// discoverer builds the discovery configs of one pipeline.
type discoverer struct {
	prefix   string // discovery prefix, e.g. homeassistant
	pipeline string
	t        topics
}

func (d discoverer) topic(component, objectID string) string {
	return fmt.Sprintf("%s/%s/osprey_%s/%s/config", d.prefix, component, idToken(d.pipeline), idToken(objectID))
}

// base fills what every entity of stream shares.
func (d discoverer) base(stream, name, objectID string) entityConfig {
	return entityConfig{
		Name:               name,
		UniqueID:           "osprey_" + idToken(d.pipeline) + "_" + idToken(objectID),
		AvailabilityTopic:  d.t.availability(),
		PayloadAvailable:   online,
		PayloadUnavailable: offline,
		Device: device{
			Identifiers:  []string{"osprey_" + idToken(d.pipeline) + "_" + idToken(stream)},
			Name:         d.pipeline + " " + stream,
			Manufacturer: "Osprey",
			Model:        "video analytics stream",
		},
		Origin: origin{Name: "Osprey", SupportURL: "https://github.com/osprey-vision/osprey"},
		QoS:    1,
	}
}

func (d discoverer) msg(component, objectID string, c entityConfig) discoveryMsg {
	b, _ := json.Marshal(c) // only strings and numbers: Marshal cannot fail
	return discoveryMsg{topic: d.topic(component, objectID), payload: b}
}

// zone returns a zone's two entities: occupied (binary_sensor) and the
// occupancy count (sensor), both read from the occupancy topic.
func (d discoverer) zone(stream, zone string) []discoveryMsg {
	state := d.t.zoneOccupancy(stream, zone)
	occ := d.base(stream, zone+" occupied", stream+"_zone_"+zone+"_occupied")
	occ.StateTopic, occ.DeviceClass = state, "occupancy"
	occ.ValueTemplate = "{{ 'ON' if value | int(0) > 0 else 'OFF' }}"
	occ.PayloadOn, occ.PayloadOff = "ON", "OFF"
	cnt := d.base(stream, zone+" occupancy", stream+"_zone_"+zone+"_occupancy")
	cnt.StateTopic, cnt.StateClass, cnt.Icon = state, "measurement", "mdi:account-group"
	return []discoveryMsg{
		d.msg("binary_sensor", stream+"_zone_"+zone+"_occupied", occ),
		d.msg("sensor", stream+"_zone_"+zone+"_occupancy", cnt),
	}
}

// line returns a line's two counters, one per direction.
func (d discoverer) line(stream, line string) []discoveryMsg {
	var out []discoveryMsg
	for _, dir := range []string{"in", "out"} {
		id := stream + "_line_" + line + "_" + dir
		c := d.base(stream, line+" "+dir, id)
		c.StateTopic, c.StateClass, c.Icon = d.t.lineCount(stream, line, dir), "total_increasing", "mdi:counter"
		out = append(out, d.msg("sensor", id, c))
	}
	return out
}

// snapshot returns the image entity showing a stream's latest snapshot.
func (d discoverer) snapshot(stream string) discoveryMsg {
	id := stream + "_snapshot"
	c := d.base(stream, "snapshot", id)
	c.ImageTopic, c.ContentType = d.t.snapshot(stream), "image/jpeg"
	return d.msg("image", id, c)
}
