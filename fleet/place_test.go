package fleet

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPlanHonoursCapacityAndLabels(t *testing.T) {
	v := view{
		members: map[string]Member{
			"a":   {Node: "a", Capacity: 2},
			"b":   {Node: "b", Capacity: 2},
			"gpu": {Node: "gpu", Capacity: 1, Labels: []string{"gpu"}},
		},
		holder: map[string]string{},
		cameras: []Camera{{ID: "c1"}, {ID: "c2"}, {ID: "c3"}, {ID: "c4"}, {ID: "c5"}, {ID: "c6"},
			{ID: "g1", Requires: []string{"gpu"}}, {ID: "x1", Requires: []string{"lidar"}}},
	}
	assign, unplaceable, waiting := v.plan()
	require.Equal(t, []string{"x1"}, unplaceable, "nobody offers lidar")
	counts := map[string]int{}
	for cam, node := range assign {
		counts[node]++
		if cam == "g1" {
			require.Equal(t, "gpu", node)
		}
	}
	require.LessOrEqual(t, counts["a"], 2)
	require.LessOrEqual(t, counts["b"], 2)
	require.LessOrEqual(t, counts["gpu"], 1)
	require.Len(t, assign, 5, "five slots")
	require.Len(t, waiting, 2, "two cameras wait for room")
}

func TestGiveAwayHasHysteresis(t *testing.T) {
	now := time.Now()
	old := map[string]time.Time{}
	cams := cameras(7)
	for _, c := range cams {
		old[c.ID] = now.Add(-time.Hour)
	}
	v := view{members: map[string]Member{"a": {Node: "a"}, "b": {Node: "b"}, "c": {Node: "c"}}, holder: map[string]string{}, cameras: cams}
	for i, c := range cams {
		v.holder[c.ID] = []string{"a", "a", "a", "a", "b", "b", "b"}[i]
	}
	// a 4, b 3, c 0 joins: a gives to c; then b gives to c; then nobody.
	moves := 0
	for range 10 {
		moved := false
		for _, me := range []string{"a", "b", "c"} {
			cam, to := v.giveAway(me, old, now, time.Minute)
			if cam == "" {
				continue
			}
			require.Equal(t, "c", to)
			v.holder[cam] = to
			moves, moved = moves+1, true
		}
		if !moved {
			break
		}
	}
	require.Equal(t, map[string]int{"a": 3, "b": 2, "c": 2}, v.count())
	require.Equal(t, 2, moves, "two moves balance 4/3/0 and then nothing moves")
	// A spread of one never moves (the reverse move would be due next).
	v = view{members: map[string]Member{"a": {Node: "a"}, "b": {Node: "b"}}, holder: map[string]string{"cam1": "a", "cam2": "a", "cam3": "b"}, cameras: cameras(3)}
	cam, _ := v.giveAway("a", old, now, time.Minute)
	require.Empty(t, cam)
	// Cameras held shorter than min_hold stay.
	v.holder["cam3"] = "a"
	cam, _ = v.giveAway("a", map[string]time.Time{"cam1": now, "cam2": now, "cam3": now}, now, time.Minute)
	require.Empty(t, cam)
}
