// Package governor holds an inference latency budget by stepping through
// configured quality levels (model variant, detect.every, threads):
// down to a faster level when the windowed p99 latency exceeds the target,
// back up when there is headroom, with hysteresis so it does not oscillate.
//
// It is pure logic: the detect stage feeds it one latency per inference
// and applies the level it returns.
package governor

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/osprey-vision/osprey/stages"
)

// Level is one operating point. Levels are ordered from best quality (index
// 0) to fastest.
type Level struct {
	// Name labels the level in logs and metrics.
	Name string `yaml:"name"`
	// Variant is the model file to run at this level; "" keeps the
	// configured model.
	Variant string `yaml:"variant"`
	// Every runs detection on every Nth frame (0 or 1: every frame).
	Every int `yaml:"every"`
	// Threads is ONNX Runtime's intra-op thread count at this level (0:
	// the model's own setting). Against a competing process one thread can
	// be faster than two: a parallel section waits for its slowest thread,
	// and on a contended core that is the one the other process holds.
	Threads int `yaml:"threads"`
}

// Config is the `detect.governor` block.
type Config struct {
	// TargetP99 is the latency budget for the 99th percentile.
	TargetP99 time.Duration `yaml:"target_p99"`
	// Window is how many latency samples make one decision window.
	Window int `yaml:"window"`
	// Levels from best quality to fastest; at least one.
	Levels []Level `yaml:"levels"`
	// DownAfter consecutive windows over target step one level faster.
	DownAfter int `yaml:"down_after"`
	// UpAfter consecutive windows under Headroom*TargetP99 step one level
	// better.
	UpAfter int `yaml:"up_after"`
	// Headroom is the fraction of TargetP99 the p99 must stay under before
	// stepping up; the band between it and 1 is the hysteresis.
	Headroom float64 `yaml:"headroom"`
}

// Defaults applied by New to zero fields.
const (
	DefaultWindow    = 30
	DefaultDownAfter = 1
	DefaultUpAfter   = 3
	DefaultHeadroom  = 0.7
	// maxUpPenalty caps how much a failed step up stretches UpAfter.
	maxUpPenalty = 16
	// maxChanges bounds the change history Changes returns.
	maxChanges = 256
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("governor: bad config")

// configError is a governor configuration problem; it matches ErrConfig.
type configError string

func (e configError) Error() string { return string(e) }

// Is makes errors.Is(err, ErrConfig) hold.
func (configError) Is(target error) bool { return target == ErrConfig }

// Validate reports every problem at once, each a stages.FieldError at its
// YAML field relative to the governor's section.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, f string, a ...any) {
		errs = append(errs, &stages.FieldError{Path: path, Err: configError(fmt.Sprintf(f, a...))})
	}
	if c.TargetP99 <= 0 {
		bad("target_p99", "must be > 0 (e.g. 120ms)")
	}
	if c.Window < 0 {
		bad("window", "must be >= 0, got %d", c.Window)
	}
	if len(c.Levels) == 0 {
		bad("levels", "empty: list at least one level, best quality first")
	}
	for i, l := range c.Levels {
		if l.Every < 0 {
			bad(fmt.Sprintf("levels[%d].every", i), "must be >= 0, got %d", l.Every)
		}
		if l.Threads < 0 {
			bad(fmt.Sprintf("levels[%d].threads", i), "must be >= 0 (0: the model's threads), got %d", l.Threads)
		}
	}
	if c.DownAfter < 0 || c.UpAfter < 0 {
		bad("down_after", "down_after and up_after must be >= 0")
	}
	if c.Headroom < 0 || c.Headroom >= 1 {
		bad("headroom", "must be in (0,1), got %g", c.Headroom)
	}
	return errors.Join(errs...)
}

// Governor turns latency observations into a level. Safe for concurrent use.
type Governor struct {
	mu     sync.Mutex
	cfg    Config
	level  int
	window []time.Duration
	over   int // consecutive windows over target
	under  int // consecutive windows under the headroom
	// upPenalty[l] multiplies UpAfter for stepping up from l: a step up
	// that had to be undone within a few windows makes the next try wait
	// longer, so a level that cannot hold the budget is not retried every
	// few seconds.
	upPenalty []int
	lastUp    int // windows since the last step up (-1: none)
	lastP99   time.Duration
	changes   []Change
}

// Change records one level switch.
type Change struct {
	At       time.Time
	From, To int
	P99      time.Duration
}

// New returns a governor at level 0 with defaults applied to zero fields.
// Call cfg.Validate first for user-facing errors; New clamps what it must.
func New(cfg Config) *Governor {
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = DefaultDownAfter
	}
	if cfg.UpAfter <= 0 {
		cfg.UpAfter = DefaultUpAfter
	}
	if cfg.Headroom <= 0 || cfg.Headroom >= 1 {
		cfg.Headroom = DefaultHeadroom
	}
	if len(cfg.Levels) == 0 {
		cfg.Levels = []Level{{Name: "default"}}
	}
	pen := make([]int, len(cfg.Levels))
	for i := range pen {
		pen[i] = 1
	}
	return &Governor{cfg: cfg, window: make([]time.Duration, 0, cfg.Window), upPenalty: pen, lastUp: -1}
}

// Observe records one inference latency measured at time at and returns
// the level to use next and whether it just changed.
func (g *Governor) Observe(latency time.Duration, at time.Time) (level int, changed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.window = append(g.window, latency)
	if len(g.window) < g.cfg.Window {
		return g.level, false
	}
	p99 := percentile(g.window, 0.99)
	g.window = g.window[:0]
	g.lastP99 = p99
	if g.lastUp >= 0 {
		g.lastUp++
	}
	target := g.cfg.TargetP99
	switch {
	case p99 > target:
		g.over++
		g.under = 0
	case float64(p99) < g.cfg.Headroom*float64(target):
		g.under++
		g.over = 0
	default:
		g.over, g.under = 0, 0
	}
	from := g.level
	switch {
	case g.over >= g.cfg.DownAfter && g.level < len(g.cfg.Levels)-1:
		g.level++
		// A step up undone within a few windows: that level cannot hold
		// the budget under the current load; wait longer before retrying.
		if g.lastUp >= 0 && g.lastUp <= 2*g.cfg.UpAfter {
			g.upPenalty[g.level] = min(2*g.upPenalty[g.level], maxUpPenalty)
		}
		g.lastUp = -1
	case g.under >= g.cfg.UpAfter*g.upPenalty[g.level] && g.level > 0:
		g.level--
		g.lastUp = 0
	default:
		return g.level, false
	}
	g.over, g.under = 0, 0
	g.changes = append(g.changes, Change{At: at, From: from, To: g.level, P99: p99})
	if len(g.changes) > maxChanges {
		g.changes = slices.Delete(g.changes, 0, len(g.changes)-maxChanges)
	}
	return g.level, true
}

// Level returns the current level index (0 = best quality).
func (g *Governor) Level() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.level
}

// Current returns the current level's settings.
func (g *Governor) Current() Level {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg.Levels[g.level]
}

// Levels returns the configured levels.
func (g *Governor) Levels() []Level { return slices.Clone(g.cfg.Levels) }

// LastP99 is the p99 of the last complete window (0 before the first).
func (g *Governor) LastP99() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastP99
}

// Changes returns the latest level switches (at most 256), oldest first.
func (g *Governor) Changes() []Change {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.changes)
}

// percentile returns the q-quantile (nearest rank) of xs; xs is reordered.
func percentile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
