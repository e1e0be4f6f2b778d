package natsink

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/osprey-vision/osprey/event"
)

// Controller is what the pipeline exposes over NATS request/reply. The sink
// calls its methods from NATS callback goroutines, possibly concurrently with
// the pipeline, so implementations must be safe for concurrent use and quick.
type Controller interface {
	// Stats returns pipeline statistics, encoded as JSON in the reply.
	Stats() any
	// Streams returns the streams and their state, encoded as JSON.
	Streams() any
	// Snapshot returns a JPEG of the latest frame of stream, or an error
	// (unknown stream, no frame yet) that is sent back to the requester.
	Snapshot(stream string) ([]byte, error)
}

// ErrorHeader carries a control error back to the requester; the body is empty.
const ErrorHeader = "Osprey-Error"

// SetController makes the sink answer control requests on
// <prefix>.<pipeline>.control.{stats,streams,snapshot}. Call it before Connect.
//   - stats: {"nats": Stats, "pipeline": c.Stats()}
//   - streams: c.Streams() as JSON
//   - snapshot: request body is the stream ID; the reply is image/jpeg.
//
// Failures reply with an empty body and the error text in the Osprey-Error header.
func (s *Sink) SetController(c Controller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctrl = c
}

// ControlSubject returns the subject for a control verb (stats, streams, snapshot).
func ControlSubject(prefix, pipeline, verb string) string {
	return strings.Join([]string{prefix, event.SubjectToken(pipeline), "control", verb}, ".")
}

func (s *Sink) subscribeControlLocked() error {
	if s.ctrl == nil {
		return nil
	}
	c := s.ctrl
	handlers := map[string]nats.MsgHandler{
		"stats": func(m *nats.Msg) {
			s.replyJSON(m, struct {
				NATS     Stats `json:"nats"`
				Pipeline any   `json:"pipeline"`
			}{s.Stats(), c.Stats()})
		},
		"streams": func(m *nats.Msg) { s.replyJSON(m, c.Streams()) },
		"snapshot": func(m *nats.Msg) {
			stream := strings.TrimSpace(string(m.Data))
			if stream == "" {
				s.replyErr(m, "natsink: snapshot request needs a stream id in the body")
				return
			}
			jpg, err := c.Snapshot(stream)
			if err != nil {
				s.replyErr(m, err.Error())
				return
			}
			r := nats.NewMsg(m.Reply)
			r.Header.Set("Content-Type", "image/jpeg")
			r.Data = jpg
			_ = m.RespondMsg(r)
		},
	}
	for _, verb := range []string{"stats", "streams", "snapshot"} {
		subj := ControlSubject(s.cfg.SubjectPrefix, s.cfg.Pipeline, verb)
		sub, err := s.nc.Subscribe(subj, handlers[verb])
		if err != nil {
			return fmt.Errorf("natsink: subscribe to %s: %w", subj, err)
		}
		s.ctrlSubs = append(s.ctrlSubs, sub)
	}
	// The server knows the subscriptions once Connect returns, so a request
	// right after it finds a responder (TestControl saw none, once, on a
	// loaded machine). A failed flush is not fatal: they arrive with the next
	// round trip.
	if err := s.nc.FlushTimeout(2 * time.Second); err != nil {
		s.log.Warn("natsink: control subscriptions not confirmed by the server yet", "err", err)
	}
	return nil
}

func (s *Sink) replyJSON(m *nats.Msg, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.replyErr(m, "natsink: encode reply: "+err.Error())
		return
	}
	r := nats.NewMsg(m.Reply)
	r.Header.Set("Content-Type", "application/json")
	r.Data = b
	_ = m.RespondMsg(r)
}

func (s *Sink) replyErr(m *nats.Msg, text string) {
	r := nats.NewMsg(m.Reply)
	r.Header.Set(ErrorHeader, text)
	_ = m.RespondMsg(r)
}
