package motion

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		err  string
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "masks in range", edit: func(c *Config) {
			c.Masks = [][][]float64{{{0, 0}, {1, 0}, {1, 0.1}}, {{0.5, 0.5}, {0.6, 0.5}, {0.6, 0.6}, {0.5, 0.6}}}
		}},
		{name: "zero intervals", edit: func(c *Config) { c.Refresh, c.StationaryRecheck = 0, 0 }},
		{name: "threshold too high", edit: func(c *Config) { c.Threshold = 300 },
			err: "threshold: must be in 1..255, got 300: it is the grey-level change a pixel needs to count as moving; 20-40 suits most cameras"},
		{name: "threshold zero", edit: func(c *Config) { c.Threshold = 0 },
			err: "threshold: must be in 1..255, got 0: it is the grey-level change a pixel needs to count as moving; 20-40 suits most cameras"},
		{name: "min_area", edit: func(c *Config) { c.MinArea = 0 },
			err: "min_area: must be at least 1, got 0: it is the smallest motion blob, in pixels of the 180-row motion frame"},
		{name: "frame_height", edit: func(c *Config) { c.FrameHeight = 20 },
			err: "frame_height: must be in 36..1080, got 20: lower loses small objects, higher costs CPU; 180 suits most cameras"},
		{name: "mask point outside the frame", edit: func(c *Config) {
			c.Masks = [][][]float64{{{0, 0}, {1, 0}, {1.3, -0.2}}}
		}, err: "masks[0][2]: x=1.3 outside [0,1]: give mask points as fractions of the frame width and height, (0,0) top-left to (1,1) bottom-right\n" +
			"masks[0][2]: y=-0.2 outside [0,1]: give mask points as fractions of the frame width and height, (0,0) top-left to (1,1) bottom-right"},
		{name: "mask NaN", edit: func(c *Config) {
			c.Masks = [][][]float64{{{0, 0}, {1, 0}, {1, 1}}, {{0, 0}, {math.NaN(), 0}, {1, 1}}}
		}, err: "masks[1][1]: x=NaN outside [0,1]: give mask points as fractions of the frame width and height, (0,0) top-left to (1,1) bottom-right"},
		{name: "mask too few points and a bad pair", edit: func(c *Config) {
			c.Masks = [][][]float64{{{0, 0}, {1, 0, 2}}}
		}, err: "masks[0]: a polygon needs at least 3 points, got 2\nmasks[0][1]: a point is [x, y], got 3 numbers"},
		{name: "regions", edit: func(c *Config) { c.Regions.Max = 0; c.Regions.FullFrameShare = 0 },
			err: "regions.max: must be in 1..16, got 0: each region is one detector run, so a high cap costs more than one full-frame run\n" +
				"regions.full_frame_share: must be in (0,1] (a share of the frame area), got 0"},
		{name: "negative intervals", edit: func(c *Config) { c.Refresh, c.StationaryRecheck = -time.Second, -2*time.Second },
			err: "refresh: must not be negative, got -1s: it is the longest time between full-frame runs (0 turns the refresh off)\n" +
				"stationary_recheck: must not be negative, got -2s: it is how often stopped tracks are re-checked (0 means every frame)"},
		{name: "rate", edit: func(c *Config) { c.Rate = 0 },
			err: "rate: must be in (0,1], got 0: it is the new frame's weight in the background average; 0.02-0.1 suits most cameras"},
		{name: "whole_frame_share", edit: func(c *Config) { c.WholeFrameShare = 1.5 },
			err: "whole_frame_share: must be in (0,1], got 1.5: it is the share of the frame that, changing at once, counts as a light change or camera bump, not motion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.edit(&c)
			err := c.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.err)
		})
	}
}

func TestNewDetectorRejectsBadConfig(t *testing.T) {
	c := Defaults()
	c.Threshold = 300
	_, err := NewDetector(c)
	require.EqualError(t, err, "motion: threshold: must be in 1..255, got 300: it is the grey-level change a pixel needs to count as moving; 20-40 suits most cameras")
}
