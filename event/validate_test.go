package event

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/geom"
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
