// Package event defines the events Osprey emits: what a consumer on NATS, in a
// JSONL file or on stdout receives. Frames may be dropped; events, once created,
// are never dropped silently (see docs/design.md). The JSON form is described by
// schema.json in this package and versioned by SchemaVersion.
package event

import (
	"crypto/rand"
	_ "embed"
	"encoding/binary"
	"strings"
	"sync"
	"time"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/object"
)

// SchemaVersion is the version of the event JSON layout, sent in every event.
const SchemaVersion = 1

// Schema is the JSON Schema (draft 2020-12) every emitted event validates against.
//
//go:embed schema.json
var Schema []byte

// Type names what happened. It is also the last part of the NATS subject.
type Type string

// The event types.
const (
	TrackStarted Type = "track.started"
	TrackEnded   Type = "track.ended"
	ZoneEntered  Type = "zone.entered"
	ZoneLeft     Type = "zone.left"
	Loitering    Type = "zone.loitering"
	LineCrossed  Type = "line.crossed"
	SourceUp     Type = "source.up"
	SourceDown   Type = "source.down"
	// ClipReady says a recorded clip for another event is final (or, with
	// ClipError, that there is none). ClipOf names that event.
	ClipReady Type = "clip.ready"
)

// Types lists every event type, for validation and documentation.
var Types = []Type{TrackStarted, TrackEnded, ZoneEntered, ZoneLeft, Loitering, LineCrossed, SourceUp, SourceDown, ClipReady}

// Event is one thing that happened on one stream. Boxes are normalised to the
// frame size (x, y, w, h in [0,1]) so consumers need not know the resolution.
type Event struct {
	Schema     int        `json:"schema"`
	ID         string     `json:"id"`
	Type       Type       `json:"type"`
	Pipeline   string     `json:"pipeline"`
	Stream     string     `json:"stream"`
	Time       time.Time  `json:"time"`
	FrameSeq   uint64     `json:"frame_seq,omitempty"`
	TrackID    uint64     `json:"track_id,omitempty"`
	Label      string     `json:"label,omitempty"`
	Confidence float64    `json:"confidence,omitempty"`
	Box        *geom.Rect `json:"box,omitempty"`

	// Zone is set on zone.* events.
	Zone string `json:"zone,omitempty"`
	// Occupancy is the number of tracks in the zone after a zone.* event.
	Occupancy *int `json:"occupancy,omitempty"`
	// Line and Direction ("in" or "out") are set on line.crossed.
	Line      string `json:"line,omitempty"`
	Direction string `json:"direction,omitempty"`
	// Count is the running total for the line and direction after a crossing.
	Count int `json:"count,omitempty"`
	// Dwell is the time in seconds a track has been in a zone (zone.left,
	// zone.loitering) or has existed (track.ended).
	Dwell float64 `json:"dwell,omitempty"`
	// Reason says why a source went down.
	Reason string `json:"reason,omitempty"`
	// Snapshot references a stored JPEG for this event, when snapshots are on.
	Snapshot string `json:"snapshot,omitempty"`
	// Clip is a recorded MP4 clip's path relative to the recorder's dir
	// (clip.ready).
	Clip string `json:"clip,omitempty"`
	// ClipDuration is the clip's length in seconds (clip.ready).
	ClipDuration float64 `json:"clip_duration,omitempty"`
	// ClipOf is the ID of the event a clip.ready is for.
	ClipOf string `json:"clip_of,omitempty"`
	// ClipError says why there is no clip (clip.ready without Clip).
	ClipError string `json:"clip_error,omitempty"`
	// Attributes and Children are the secondary models' answers about the
	// event's track (secondary:), when there are any.
	Attributes []object.Attribute `json:"attributes,omitempty"`
	Children   []Child            `json:"children,omitempty"`

	// Node is the fleet node that processed the stream (fleet mode only).
	Node string `json:"node,omitempty"`
	// Lease is the revision at which Node acquired the stream's lease: it
	// grows with every change of holder, so a consumer that has seen a
	// higher lease for the stream can drop events of a lower one stamped
	// after that (fleet mode only; docs/fleet.md).
	Lease uint64 `json:"lease,omitempty"`
}

// Child is a secondary detector's finding inside the event's track (a
// face in a person), its box normalised to the frame like Box.
type Child struct {
	Model      string    `json:"model"`
	Label      string    `json:"label"`
	Confidence float32   `json:"confidence"`
	Box        geom.Rect `json:"box"`
}

// New returns an event of type t with a fresh unique ID, the schema version and
// the current UTC wall-clock time.
func New(t Type, pipeline, stream string) Event {
	now := time.Now().UTC()
	return Event{Schema: SchemaVersion, ID: NewID(now), Type: t, Pipeline: pipeline, Stream: stream, Time: now}
}

// Subject returns the NATS subject of e under prefix:
// <prefix>.<pipeline>.<stream>.<type>, e.g. osprey.lobby.door-cam.line.crossed.
func (e Event) Subject(prefix string) string {
	return strings.Join([]string{prefix, SubjectToken(e.Pipeline), SubjectToken(e.Stream), string(e.Type)}, ".")
}

// SubjectToken makes s safe as one NATS subject token: dots, spaces and
// wildcards become '_'.
func SubjectToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', ' ', '*', '>', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

var (
	idMu   sync.Mutex
	lastMs uint64
	lastRn [10]byte
)

// NewID returns a ULID (26 characters, Crockford base32): time-ordered to the
// millisecond and monotonic within one process, so IDs sort in creation order.
// It doubles as the Nats-Msg-Id used for JetStream de-duplication.
func NewID(t time.Time) string {
	ms := uint64(t.UnixMilli())
	idMu.Lock()
	var rn [10]byte
	if ms <= lastMs {
		// Same millisecond (or clock stepped back): increment the random part so
		// IDs stay strictly increasing.
		ms = lastMs
		rn = lastRn
		for i := len(rn) - 1; i >= 0; i-- {
			rn[i]++
			if rn[i] != 0 {
				break
			}
		}
	} else {
		_, _ = rand.Read(rn[:])
	}
	lastMs, lastRn = ms, rn
	idMu.Unlock()

	var b [16]byte
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	copy(b[6:], rn[:])
	// 128 bits -> 26 base32 characters, most significant first.
	var out [26]byte
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
