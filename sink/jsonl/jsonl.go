// Package jsonl writes events (and optionally one line per frame) as JSON
// lines to a file or to standard output.
package jsonl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/stages"
)

// Sink writes JSON lines. Events are written in full before Write returns
// (to the OS: they survive a crash of the process, not of the machine);
// frame lines, when enabled, are buffered.
type Sink struct {
	name   string
	open   func() (io.WriteCloser, error)
	frames bool

	mu     sync.Mutex
	w      io.WriteCloser
	buf    *bufio.Writer
	enc    *json.Encoder
	closed bool
}

// NewFile returns a sink appending to path (created if missing). With frames
// set it also writes one line per frame with its tracks.
func NewFile(path string, frames bool) *Sink {
	return &Sink{name: path, frames: frames, open: func() (io.WriteCloser, error) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("jsonl: cannot open %s for appending events: %w", path, err)
		}
		return f, nil
	}}
}

// NewWriter returns a sink writing to w (standard output, say). Close does
// not close w.
func NewWriter(name string, w io.Writer, frames bool) *Sink {
	return &Sink{name: name, frames: frames, open: func() (io.WriteCloser, error) { return nopCloser{w}, nil }}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// EventsOnly implements stages.EventSink.
func (s *Sink) EventsOnly() bool { return !s.frames }

// Connect opens the file.
func (s *Sink) Connect(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		return nil
	}
	w, err := s.open()
	if err != nil {
		return err
	}
	s.w = w
	s.buf = bufio.NewWriterSize(w, 64<<10)
	s.enc = json.NewEncoder(s.buf)
	return nil
}

// frameLine is the per-frame record.
type frameLine struct {
	Kind     string      `json:"kind"`
	Stream   string      `json:"stream"`
	Seq      uint64      `json:"frame_seq"`
	Time     time.Time   `json:"time"`
	Width    int         `json:"width"`
	Height   int         `json:"height"`
	Inferred bool        `json:"inferred"`
	Tracks   []trackLine `json:"tracks"`
}

type trackLine struct {
	ID    uint64    `json:"track_id"`
	Label string    `json:"label"`
	Score float64   `json:"confidence"`
	Box   geom.Rect `json:"box"`
}

// Write implements stages.Sink.
func (s *Sink) Write(_ context.Context, f *stages.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enc == nil {
		return fmt.Errorf("jsonl: %s: %w", s.name, stages.ErrNotConnected)
	}
	if s.frames {
		fl := frameLine{Kind: "frame", Stream: f.Stream, Seq: f.Seq, Time: time.Now().UTC(), Width: f.Width, Height: f.Height, Inferred: f.Inferred, Tracks: make([]trackLine, len(f.Tracks))}
		for i, t := range f.Tracks {
			fl.Tracks[i] = trackLine{ID: t.ID, Label: t.Label, Score: t.Score, Box: t.Box}
		}
		if err := s.enc.Encode(fl); err != nil {
			return fmt.Errorf("jsonl: %s: %w", s.name, err)
		}
	}
	for _, e := range f.Events {
		if err := s.enc.Encode(e); err != nil {
			return fmt.Errorf("jsonl: %s: %w", s.name, err)
		}
	}
	if len(f.Events) > 0 {
		// Events are flushed at once: they must not sit in a buffer.
		if err := s.buf.Flush(); err != nil {
			return fmt.Errorf("jsonl: %s: %w", s.name, err)
		}
	}
	return nil
}

// Close flushes and closes the file. Safe to call twice.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.w == nil {
		s.closed = true
		return nil
	}
	s.closed = true
	err := s.buf.Flush()
	if cerr := s.w.Close(); err == nil {
		err = cerr
	}
	return err
}
