package app

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/syncbuf"
)

// A governor level that names only threads opens a second session of the
// configured model with that many intra-op threads, and inference carries
// on through it: the governor's budget (1 ms) makes it step down at once.
func TestGovernorLevelWithThreads(t *testing.T) {
	model := needModel(t)
	matcheck.Leaks(t)
	cfg := parse(t, fmt.Sprintf(`name: governed
streams:
  - { id: pattern, url: "test://?fps=30&w=320&h=240" }
model: { path: %s, format: ssd, labels: coco, providers: [cpu], threads: 2 }
detect:
  workers: 1
  governor:
    target_p99: 1ms
    window: 5
    levels:
      - { name: two threads }
      - { name: one thread, threads: 1 }
`, model))
	var logBuf syncbuf.Buffer
	a, err := New(cfg, slog.New(slog.NewTextHandler(&logBuf, nil)), Options{MaxFrames: 40})
	require.NoError(t, err)
	wait, _ := runApp(t, a)
	require.NoError(t, wait())

	var ready, changed []string
	for _, l := range strings.Split(logBuf.String(), "\n") {
		switch {
		case strings.Contains(l, "detector ready"):
			ready = append(ready, l)
		case strings.Contains(l, "governor changed level"):
			changed = append(changed, l)
		}
	}
	require.NotContains(t, logBuf.String(), "cannot open model variant")
	require.Len(t, ready, 2, "the configured session and the level's: %v", ready)
	require.Contains(t, ready[0], "threads=2")
	require.Contains(t, ready[1], "threads=1")
	require.NotEmpty(t, changed)
	require.Contains(t, changed[0], `name="one thread"`)
	require.Contains(t, changed[0], "threads=1")
	snap := a.Metrics.Snapshot()
	require.Positive(t, snap.Streams["pattern"].Out)
	require.Positive(t, snap.Stages["detect"].Count, "inference ran")
}
