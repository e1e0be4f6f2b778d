package natsink

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/geom"
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
	// Node and Lease say which fleet node processed the frame under which
	// lease (fleet mode only, as on events).
	Node  string `json:"node,omitempty"`
	Lease uint64 `json:"lease,omitempty"`
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
	for _, det := range f.Detections {
		b := det.Box
		d.Detections = append(d.Detections, Detection{Label: det.Label, Confidence: det.Confidence,
			Box: geom.Rect{X: b.X / w, Y: b.Y / h, W: b.W / w, H: b.H / h}})
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
