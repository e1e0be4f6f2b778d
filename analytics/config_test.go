package analytics

import (
	"math"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	streams := []string{"door-cam", "yard"}
	square := [][2]float64{{0.1, 0.5}, {0.5, 0.5}, {0.5, 1}, {0.1, 1}}
	tests := []struct {
		name string
		conf Config
		err  string
	}{
		{"valid", Config{
			Zones: []Zone{{Name: "entrance", Stream: "door-cam", Polygon: square, LoiterAfter: 30 * time.Second}},
			Lines: []Line{{Name: "gate", Stream: "door-cam", From: [2]float64{0.2, 0.6}, To: [2]float64{0.8, 0.6}}},
		}, ""},
		{"same names on different streams", Config{Zones: []Zone{
			{Name: "a", Stream: "door-cam", Polygon: square}, {Name: "a", Stream: "yard", Polygon: square}}}, ""},
		{"too few points", Config{Zones: []Zone{{Name: "a", Stream: "yard"}, {Name: "b", Stream: "yard", Polygon: square[:2]}}},
			"zones[0].polygon: needs at least 3 points, got 0\nzones[1].polygon: needs at least 3 points, got 2"},
		{"out of range", Config{Zones: []Zone{{Name: "a", Stream: "yard", Polygon: [][2]float64{{0, 0}, {1.2, 0}, {1, math.NaN()}}}}},
			"zones[0].polygon[1]: coordinates must be in [0,1] (normalised to the frame), got [1.2, 0]\nzones[0].polygon[2]: coordinates must be in [0,1] (normalised to the frame), got [1, NaN]"},
		{"collinear", Config{Zones: []Zone{{Name: "a", Stream: "yard", Polygon: [][2]float64{{0, 0}, {0.5, 0.5}, {1, 1}}}}},
			"zones[0].polygon: encloses no area: its points are collinear or repeated"},
		{"duplicate and missing names, unknown stream", Config{Zones: []Zone{
			{Name: "a", Stream: "yard", Polygon: square}, {Name: "a", Stream: "yard", Polygon: square},
			{Stream: "garage", Polygon: square}, {Name: "c", Polygon: square, LoiterAfter: -time.Second, Classes: []string{""}}}},
			`zones[1].name: "a" is already used by zones[0] on stream "yard": names must be unique per stream` + "\n" +
				"zones[2].name: required\n" +
				`zones[2].stream: unknown stream "garage": the pipeline's streams are door-cam, yard` + "\n" +
				"zones[3].stream: required: name one of the pipeline's streams (door-cam, yard)\n" +
				"zones[3].loiter_after: must be >= 0 (0 turns loitering off), got -1s\n" +
				"zones[3].classes[0]: must not be empty"},
		{"lines", Config{Lines: []Line{
			{Name: "g", Stream: "yard", From: [2]float64{0.5, 0.5}, To: [2]float64{0.5, 0.5}},
			{Name: "g", Stream: "yard", From: [2]float64{-1, 0}, To: [2]float64{0.5, 0.5}}}},
			"lines[0]: from and to are the same point: a line needs two distinct ends\n" +
				`lines[1].name: "g" is already used by lines[0] on stream "yard": names must be unique per stream` + "\n" +
				"lines[1].from: coordinates must be in [0,1] (normalised to the frame), got [-1, 0]"},
		{"anchor and band", Config{Anchor: "feet", LineBand: 0.7},
			"anchor: unknown anchor \"feet\": use bottom_center, center or top_center\nline_band: must be in [0, 0.5), got 0.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.conf.Validate(streams)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.err {
				t.Fatalf("error:\n%v\nwant:\n%s", err, tc.err)
			}
		})
	}
}
