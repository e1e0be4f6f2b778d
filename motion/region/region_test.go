package region

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/geom"
)

func TestPlanRegions(t *testing.T) {
	share := func(s float64) Config { c := Defaults(); c.FullFrameShare = s; c.MaxDownscale = 2; return c }
	capped := share(0.9)
	capped.Max = 2
	full := []geom.Rect{{W: 768, H: 576}}
	for _, tc := range []struct {
		name          string
		cfg           Config
		motion, track []geom.Rect
		inW, inH      int
		want          []geom.Rect
		wantFull      bool
	}{
		{name: "nothing to look at", cfg: Defaults(), inW: 300, inH: 300},
		{name: "small box gets a model-size crop centred on it", cfg: Defaults(), inW: 300, inH: 300,
			motion: []geom.Rect{{X: 400, Y: 300, W: 20, H: 40}},
			want:   []geom.Rect{{X: 260, Y: 170, W: 300, H: 300}}},
		{name: "crop near a corner is shifted inside the frame", cfg: Defaults(), inW: 300, inH: 300,
			motion: []geom.Rect{{X: 700, Y: 500, W: 20, H: 40}},
			want:   []geom.Rect{{X: 468, Y: 276, W: 300, H: 300}}},
		{name: "overlapping padded boxes cluster", cfg: Defaults(), inW: 300, inH: 300,
			motion: []geom.Rect{{X: 400, Y: 300, W: 20, H: 40}, {X: 430, Y: 300, W: 20, H: 40}},
			want:   []geom.Rect{{X: 275, Y: 170, W: 300, H: 300}}},
		{name: "far boxes get separate crops sorted top to bottom", cfg: Defaults(), inW: 300, inH: 300,
			motion: []geom.Rect{{X: 700, Y: 500, W: 20, H: 40}, {X: 50, Y: 50, W: 20, H: 40}},
			want:   []geom.Rect{{X: 0, Y: 0, W: 300, H: 300}, {X: 468, Y: 276, W: 300, H: 300}}},
		{name: "overlapping crops merge when one crop costs no more", cfg: Defaults(), inW: 300, inH: 300,
			motion: []geom.Rect{{X: 300, Y: 300, W: 20, H: 40}, {X: 420, Y: 300, W: 20, H: 40}},
			want:   []geom.Rect{{X: 220, Y: 170, W: 300, H: 300}}},
		{name: "track boxes count like motion", cfg: Defaults(), inW: 300, inH: 300,
			track: []geom.Rect{{X: 100, Y: 100, W: 50, H: 100}},
			want:  []geom.Rect{{X: 0, Y: 0, W: 300, H: 300}}},
		{name: "cap merges the cheapest pair", cfg: capped, inW: 300, inH: 300,
			motion: []geom.Rect{{X: 50, Y: 50, W: 20, H: 40}, {X: 700, Y: 500, W: 20, H: 40}, {X: 700, Y: 50, W: 20, H: 40}},
			want:   []geom.Rect{{X: 0, Y: 0, W: 300, H: 300}, {X: 258, Y: 40, W: 510, H: 510}}},
		{name: "crops covering most of the frame fall back to it", cfg: capped, inW: 300, inH: 300,
			motion: []geom.Rect{{X: 50, Y: 50, W: 20, H: 40}, {X: 700, Y: 500, W: 20, H: 40}, {X: 700, Y: 50, W: 20, H: 40}, {X: 50, Y: 500, W: 20, H: 40}},
			want:   full, wantFull: true},
		{name: "big object gets a crop bigger than the model input", cfg: share(0.9), inW: 300, inH: 300,
			motion: []geom.Rect{{X: 200, Y: 100, W: 300, H: 400}},
			want:   []geom.Rect{{X: 62, Y: 0, W: 576, H: 576}}},
		{name: "a crop the model would shrink runs the full frame by default", cfg: func() Config { c := Defaults(); c.FullFrameShare = 0.9; return c }(), inW: 300, inH: 300,
			motion: []geom.Rect{{X: 200, Y: 100, W: 300, H: 400}},
			want:   full, wantFull: true},
		{name: "big object with the default share runs full frame", cfg: Defaults(), inW: 300, inH: 300,
			motion: []geom.Rect{{X: 200, Y: 100, W: 300, H: 400}},
			want:   full, wantFull: true},
		{name: "crop keeps a wide model's aspect", cfg: Defaults(), inW: 640, inH: 360,
			motion: []geom.Rect{{X: 400, Y: 300, W: 20, H: 40}},
			want:   []geom.Rect{{X: 90, Y: 140, W: 640, H: 360}}},
		{name: "dynamic model input runs full frame", cfg: Defaults(), inW: -1, inH: -1,
			motion: []geom.Rect{{X: 400, Y: 300, W: 20, H: 40}},
			want:   full, wantFull: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanRegions(tc.cfg, tc.motion, tc.track, 768, 576, tc.inW, tc.inH)
			require.Equal(t, tc.want, p.Regions)
			require.Equal(t, tc.wantFull, p.FullFrame)
		})
	}
}

func TestPlanRegionsFrameSmallerThanModel(t *testing.T) {
	cfg := Defaults()
	cfg.FullFrameShare = 1
	p := PlanRegions(cfg, []geom.Rect{{X: 100, Y: 100, W: 20, H: 20}}, nil, 320, 240, 300, 300)
	require.Equal(t, []geom.Rect{{X: 0, Y: 0, W: 300, H: 240}}, p.Regions)
}

func TestMerge(t *testing.T) {
	a := geom.Rect{W: 300, H: 300}
	for _, tc := range []struct {
		name    string
		regions []geom.Rect
		found   []Found
		want    []Kept
	}{
		{name: "piece cut by an inner edge is dropped when another region saw the whole",
			regions: []geom.Rect{a, {X: 250, W: 300, H: 300}},
			found: []Found{
				{Region: 1, Box: geom.Rect{X: 0, Y: 50, W: 20, H: 100}, Score: 0.95},
				{Region: 0, Box: geom.Rect{X: 230, Y: 50, W: 40, H: 100}, Score: 0.9},
			},
			want: []Kept{{Index: 1, Box: geom.Rect{X: 230, Y: 50, W: 40, H: 100}}}},
		{name: "pieces cut by adjacent regions are joined",
			regions: []geom.Rect{a, {X: 300, W: 300, H: 300}},
			found: []Found{
				{Region: 0, Box: geom.Rect{X: 280, Y: 50, W: 20, H: 100}, Score: 0.6},
				{Region: 1, Box: geom.Rect{X: 0, Y: 52, W: 20, H: 98}, Score: 0.7},
			},
			want: []Kept{{Index: 1, Box: geom.Rect{X: 280, Y: 50, W: 40, H: 100}, Joined: true}}},
		{name: "one object seen whole by two overlapping regions is kept once",
			regions: []geom.Rect{a, {X: 100, W: 300, H: 300}},
			found: []Found{
				{Region: 0, Box: geom.Rect{X: 150, Y: 50, W: 40, H: 100}, Score: 0.9},
				{Region: 1, Box: geom.Rect{X: 52, Y: 52, W: 40, H: 100}, Score: 0.8},
			},
			want: []Kept{{Index: 0, Box: geom.Rect{X: 150, Y: 50, W: 40, H: 100}}}},
		{name: "overlapping boxes of one region are left to the detector's NMS",
			regions: []geom.Rect{a},
			found: []Found{
				{Region: 0, Box: geom.Rect{X: 110, Y: 120, W: 30, H: 60}, Score: 0.8},
				{Region: 0, Box: geom.Rect{X: 100, Y: 50, W: 60, H: 150}, Score: 0.9},
			},
			want: []Kept{{Index: 1, Box: geom.Rect{X: 100, Y: 50, W: 60, H: 150}}, {Index: 0, Box: geom.Rect{X: 110, Y: 120, W: 30, H: 60}}}},
		{name: "different classes do not de-duplicate",
			regions: []geom.Rect{a, {X: 100, W: 300, H: 300}},
			found: []Found{
				{Region: 0, Box: geom.Rect{X: 150, Y: 50, W: 40, H: 100}, Class: 1, Score: 0.9},
				{Region: 1, Box: geom.Rect{X: 50, Y: 50, W: 40, H: 100}, Class: 2, Score: 0.8},
			},
			want: []Kept{{Index: 0, Box: geom.Rect{X: 150, Y: 50, W: 40, H: 100}}, {Index: 1, Box: geom.Rect{X: 150, Y: 50, W: 40, H: 100}}}},
		{name: "a region edge on the frame border cuts nothing; a lone cut piece is kept, clipped",
			regions: []geom.Rect{{X: 468, Y: 276, W: 300, H: 300}},
			found: []Found{
				{Region: 0, Box: geom.Rect{X: 280, Y: 280, W: 30, H: 30}, Score: 0.5},
				{Region: 0, Box: geom.Rect{X: -10, Y: 100, W: 40, H: 80}, Score: 0.4},
				{Region: 3, Box: geom.Rect{X: 0, Y: 0, W: 10, H: 10}, Score: 0.9},
			},
			want: []Kept{{Index: 0, Box: geom.Rect{X: 748, Y: 556, W: 20, H: 20}}, {Index: 1, Box: geom.Rect{X: 468, Y: 376, W: 30, H: 80}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Merge(tc.regions, 768, 576, tc.found, DefaultMergeOptions()))
		})
	}
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Defaults().Validate())
	bad := Config{Max: 0, Margin: -1, FullFrameShare: 1.5, MaxDownscale: 0.5}
	require.EqualError(t, bad.Validate(),
		"max: must be in 1..16, got 0: each region is one detector run, so a high cap costs more than one full-frame run\n"+
			"margin: must be in 0..2 (a share of a box's larger side), got -1\n"+
			"full_frame_share: must be in (0,1] (a share of the frame area), got 1.5\n"+
			"max_downscale: must be in 1..10 (how much a crop may shrink to the model input; 1 never shrinks), got 0.5")
	require.NoError(t, CheckModelInput(300, 300))
	require.EqualError(t, CheckModelInput(-1, -1),
		"enabled: the model's input size is dynamic (-1x-1), so regions cannot be sized to it: set regions.enabled: false, or use a model with a fixed input size")
}
