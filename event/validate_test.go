package event

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/object"
)

func TestValidateAcceptsAndRejects(t *testing.T) {
	e := New(LineCrossed, "lobby", "cam")
	e.TrackID, e.Line, e.Direction, e.Count = 3, "gate", "in", 1
	e.Box = &geom.Rect{X: 0.1, Y: 0.1, W: 0.2, H: 0.3}
	b, err := json.Marshal(e)
	require.NoError(t, err)
	require.NoError(t, Validate(b))

	e.Direction = ""
	b, _ = json.Marshal(e)
	require.ErrorContains(t, Validate(b), "event: does not match the schema")
	require.ErrorContains(t, Validate([]byte("{")), "event: not JSON")
}

func TestIDsAreOrderedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := New(TrackStarted, "p", "s").ID
		require.Len(t, id, 26)
		require.False(t, seen[id])
		require.Greater(t, id, prev, "IDs sort in creation order")
		seen[id], prev = true, id
	}
}

func TestValidateClipReady(t *testing.T) {
	of := New(LineCrossed, "lobby", "cam").ID
	ok := New(ClipReady, "lobby", "cam")
	ok.Clip, ok.ClipDuration, ok.ClipOf = "clips/cam/"+of+".mp4", 10.5, of
	none := New(ClipReady, "lobby", "cam")
	none.ClipOf, none.ClipError = of, "event is older than the recording buffer"
	both := ok
	both.ClipError = "x"
	noOf := ok
	noOf.ClipOf = ""
	noDur := ok
	noDur.ClipDuration = 0
	abs := ok
	abs.Clip = "/etc/passwd"
	for _, c := range []struct {
		name string
		e    Event
		ok   bool
	}{{"clip", ok, true}, {"error", none, true}, {"clip and error", both, false}, {"no clip_of", noOf, false},
		{"no duration", noDur, false}, {"absolute path", abs, false}} {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.e)
			require.NoError(t, err)
			if c.ok {
				require.NoError(t, Validate(b))
			} else {
				require.Error(t, Validate(b))
			}
		})
	}
}

// TestValidateCascadeResults checks that secondary models' answers (a
// classifier's attribute, a face detector's child box) validate, and that
// a child without its box or an attribute scored above 1 does not.
func TestValidateCascadeResults(t *testing.T) {
	e := New(TrackStarted, "lobby", "cam")
	e.TrackID, e.Label, e.FrameSeq = 7, "person", 12
	e.Box = &geom.Rect{X: 0.1, Y: 0.1, W: 0.2, H: 0.5}
	e.Attributes = []object.Attribute{{Name: "colour", Value: "red", Confidence: 0.91}}
	e.Children = []Child{{Model: "faces", Label: "face", Confidence: 0.88, Box: geom.Rect{X: 0.15, Y: 0.12, W: 0.05, H: 0.05}}}
	b, err := json.Marshal(e)
	require.NoError(t, err)
	require.Contains(t, string(b), `"attributes":[{"name":"colour","value":"red","confidence":0.91}]`)
	require.NoError(t, Validate(b))

	bad := e
	bad.Attributes = []object.Attribute{{Name: "colour", Value: "red", Confidence: 1.5}}
	b, _ = json.Marshal(bad)
	require.ErrorContains(t, Validate(b), "does not match the schema")

	var m map[string]any
	b, _ = json.Marshal(e)
	require.NoError(t, json.Unmarshal(b, &m))
	delete(m["children"].([]any)[0].(map[string]any), "box")
	b, _ = json.Marshal(m)
	require.ErrorContains(t, Validate(b), "does not match the schema")
}
