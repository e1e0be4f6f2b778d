package hass

import (
	"strings"

	"github.com/osprey-vision/osprey/event"
)

// The retained state topics. Each has six levels (availability three), so a
// NATS subscriber or JetStream stream filtering events (<prefix>.<pipeline>.*.*.*,
// five tokens) never receives them as events.

// topicToken makes s safe as one MQTT topic level that nats-server maps to one
// NATS subject token: the subject-safe form, with '/', '+' and '#' also
// replaced, since MQTT reads them as a level separator and wildcards.
func topicToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '/', '+', '#':
			return '_'
		}
		return r
	}, event.SubjectToken(s))
}

// idToken makes s safe for a Home Assistant discovery node_id or object_id
// (character class [a-zA-Z0-9_-]).
func idToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

// EventTopic returns the MQTT topic an event arrives on when nats-server's
// MQTT listener serves the NATS subjects: the subject with '.' read as '/',
// e.g. osprey/lobby/door-cam/line/crossed.
func EventTopic(prefix string, e event.Event) string {
	return strings.ReplaceAll(e.Subject(prefix), ".", "/")
}

// topics names the state topics of one pipeline.
type topics struct {
	base string // <prefix>/<pipeline>
}

func newTopics(prefix, pipeline string) topics {
	return topics{base: strings.ReplaceAll(prefix, ".", "/") + "/" + topicToken(pipeline)}
}

// Availability is "online" while the publisher is connected and "offline"
// after it closes or (as its MQTT will) loses the connection.
func (t topics) availability() string { return t.base + "/status" }

// zoneOccupancy holds the number of tracks in a zone, as decimal text.
func (t topics) zoneOccupancy(stream, zone string) string {
	return t.base + "/" + topicToken(stream) + "/zone/" + topicToken(zone) + "/occupancy"
}

// lineCount holds a line's crossings in one direction ("in" or "out") since
// the pipeline started, as decimal text.
func (t topics) lineCount(stream, line, dir string) string {
	return t.base + "/" + topicToken(stream) + "/line/" + topicToken(line) + "/" + dir
}

// snapshot holds the latest event snapshot of a stream, a JPEG.
func (t topics) snapshot(stream string) string {
	return t.base + "/" + topicToken(stream) + "/snapshot/latest/jpeg"
}
