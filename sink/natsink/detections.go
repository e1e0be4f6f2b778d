package natsink

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/object"
	"github.com/osprey-vision/osprey/stages"
)

// Detections is the body published on <prefix>.<pipeline>.<stream>.detections
// when detections are on: every detection of one inferred frame. Boxes are
// normalised to the frame size like event boxes.
type Detections struct {
	Schema     int         `json:"schema"`
	Pipeline   string      `json:"pipeline"`
	Stream     string      `json:"stream"`
	Time       time.Time   `json:"time"`
	FrameSeq   uint64      `json:"frame_seq"`
	Detections []Detection `json:"detections"`
	// Tracks are the frame's tracks that carry secondary models' answers
	// (secondary:): their attributes and child detections.
	Tracks []TrackAnswers `json:"tracks,omitempty"`

	// Node and Lease say which fleet node processed the frame under which
	// lease (fleet mode only, as on events).
	Node  string `json:"node,omitempty"`
	Lease uint64 `json:"lease,omitempty"`
}

// TrackAnswers is one track's secondary answers in a Detections message;
// boxes normalised like the detections'.
type TrackAnswers struct {
	ID         uint64             `json:"id"`
	Label      string             `json:"label"`
	Box        geom.Rect          `json:"box"`
	Attributes []object.Attribute `json:"attributes,omitempty"`
	Children   []Detection        `json:"children,omitempty"`
}

// Detection is one detection in a Detections message.
type Detection struct {
	Label      string    `json:"label"`
	Confidence float32   `json:"confidence"`
	Box        geom.Rect `json:"box"`
}

// DetectionsSubject returns <prefix>.<pipeline>.<stream>.detections.
func DetectionsSubject(prefix, pipeline, stream string) string {
	return strings.Join([]string{prefix, event.SubjectToken(pipeline), event.SubjectToken(stream), "detections"}, ".")
}

// publishDetections sends f's detections with core NATS, never blocking: when
// disconnected the message is dropped and counted, like a frame.
func (s *Sink) publishDetections(f *stages.Frame) {
	nc := s.conn()
	if nc == nil || !nc.IsConnected() || f.Width == 0 || f.Height == 0 {
		s.detDropped.Add(1)
		return
	}
	d := Detections{Schema: event.SchemaVersion, Pipeline: s.cfg.Pipeline, Stream: f.Stream,
		Time: time.Now().UTC(), FrameSeq: f.Seq, Detections: make([]Detection, 0, len(f.Detections)),
		Node: s.cfg.Node, Lease: f.Lease}
	w, h := float64(f.Width), float64(f.Height)
	norm := func(b geom.Rect) geom.Rect { return geom.Rect{X: b.X / w, Y: b.Y / h, W: b.W / w, H: b.H / h} }
	for _, det := range f.Detections {
		d.Detections = append(d.Detections, Detection{Label: det.Label, Confidence: det.Confidence, Box: norm(det.Box)})
	}
	for _, t := range f.Tracks {
		if len(t.Attributes) == 0 && len(t.Children) == 0 {
			continue
		}
		ta := TrackAnswers{ID: t.ID, Label: t.Label, Box: norm(t.Box), Attributes: t.Attributes}
		for _, c := range t.Children {
			ta.Children = append(ta.Children, Detection{Label: c.Label, Confidence: c.Confidence, Box: norm(c.Box)})
		}
		d.Tracks = append(d.Tracks, ta)
	}
	body, err := json.Marshal(d)
	if err != nil {
		s.detDropped.Add(1)
		return
	}
	if err := nc.Publish(DetectionsSubject(s.cfg.SubjectPrefix, s.cfg.Pipeline, f.Stream), body); err != nil {
		s.detDropped.Add(1)
		return
	}
	s.detPub.Add(1)
}
