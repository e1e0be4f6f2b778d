package preview

import (
	"fmt"
	"strings"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/object"
	"github.com/osprey-vision/osprey/stages"
)

// frameMsg is the per-frame message on the "meta" DataChannel.
type frameMsg struct {
	Type string `json:"type"` // "frame"
	Seq  uint64 `json:"seq"`
	// RTP is the RTP timestamp of the video frame this metadata belongs to;
	// the page matches it against requestVideoFrameCallback's rtpTimestamp.
	RTP uint32 `json:"rtp"`
	// CapturedMs is the capture wall-clock time in Unix milliseconds.
	CapturedMs float64 `json:"captured_ms"`
	// Width and Height are the frame size that Boxes refer to.
	Width  int `json:"width"`
	Height int `json:"height"`
	// EncWidth and EncHeight are the encoded video size.
	EncWidth  int      `json:"enc_width"`
	EncHeight int      `json:"enc_height"`
	Boxes     []boxMsg `json:"boxes"`
	// Motion and Regions are the motion gate's boxes and the crops the
	// detector ran on, in frame pixels; Skipped says the gate let the
	// detector skip the frame. The page draws them on request, so an
	// integrator can tune masks and thresholds.
	Motion  []geom.Rect `json:"motion,omitempty"`
	Regions []geom.Rect `json:"regions,omitempty"`
	Skipped bool        `json:"skipped,omitempty"`
}

// boxMsg is one tracked (ID > 0) or untracked (ID 0) object, in frame pixels.
type boxMsg struct {
	ID    uint64    `json:"id,omitempty"`
	Label string    `json:"label"`
	Score float64   `json:"score"`
	Box   geom.Rect `json:"box"`
	// Attrs are the track's secondary attributes as text ("colour: red
	// (0.91)"), Children its secondary detections (faces), when any.
	Attrs    string   `json:"attrs,omitempty"`
	Children []boxMsg `json:"children,omitempty"`
}

// answersOf formats a track's secondary answers (secondary:) for boxMsg.
func answersOf(t object.Track) (attrs string, children []boxMsg) {
	parts := make([]string, len(t.Attributes))
	for i, a := range t.Attributes {
		parts[i] = fmt.Sprintf("%s: %s (%.2f)", a.Name, a.Value, a.Confidence)
	}
	for _, c := range t.Children {
		children = append(children, boxMsg{Label: c.Label, Score: float64(c.Confidence), Box: c.Box})
	}
	return strings.Join(parts, ", "), children
}

// overlayMsg is sent once when the "meta" channel opens: the stream's zones
// and lines in normalised (0..1) coordinates.
type overlayMsg struct {
	Type  string        `json:"type"` // "overlays"
	Zones []zoneOverlay `json:"zones"`
	Lines []lineOverlay `json:"lines"`
}

type zoneOverlay struct {
	Name    string       `json:"name"`
	Polygon [][2]float64 `json:"polygon"`
}

type lineOverlay struct {
	Name string     `json:"name"`
	From [2]float64 `json:"from"`
	To   [2]float64 `json:"to"`
}

// Zone is a named polygon drawn over a stream, in normalised coordinates.
type Zone struct {
	Name    string
	Polygon []geom.Point
}

// Line is a named segment drawn over a stream, in normalised coordinates.
type Line struct {
	Name     string
	From, To geom.Point
}

// boxesOf prefers tracks (they carry IDs); a frame that has no tracker
// behind it shows its raw detections instead.
func boxesOf(f *stages.Frame) []boxMsg {
	if len(f.Tracks) > 0 {
		out := make([]boxMsg, len(f.Tracks))
		for i, t := range f.Tracks {
			out[i] = boxMsg{ID: t.ID, Label: t.Label, Score: t.Score, Box: t.Box}
			out[i].Attrs, out[i].Children = answersOf(t)
		}
		return out
	}
	out := make([]boxMsg, len(f.Detections))
	for i, d := range f.Detections {
		out[i] = boxMsg{Label: d.Label, Score: float64(d.Confidence), Box: d.Box}
	}
	return out
}

func newFrameMsg(f *stages.Frame, ts uint32, encW, encH int) frameMsg {
	return frameMsg{
		Type: "frame", Seq: f.Seq, RTP: ts,
		CapturedMs: float64(f.Captured.UnixNano()) / 1e6,
		Width:      f.Width, Height: f.Height,
		EncWidth: encW, EncHeight: encH,
		Boxes:   boxesOf(f),
		Motion:  f.Focus.Motion,
		Regions: f.Focus.Regions,
		Skipped: f.Focus.Skip,
	}
}

func newOverlayMsg(zones []Zone, lines []Line) overlayMsg {
	m := overlayMsg{Type: "overlays", Zones: []zoneOverlay{}, Lines: []lineOverlay{}}
	for _, z := range zones {
		zo := zoneOverlay{Name: z.Name, Polygon: make([][2]float64, len(z.Polygon))}
		for i, p := range z.Polygon {
			zo.Polygon[i] = [2]float64{p.X, p.Y}
		}
		m.Zones = append(m.Zones, zo)
	}
	for _, l := range lines {
		m.Lines = append(m.Lines, lineOverlay{Name: l.Name, From: [2]float64{l.From.X, l.From.Y}, To: [2]float64{l.To.X, l.To.Y}})
	}
	return m
}
