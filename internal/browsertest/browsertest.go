// Package browsertest drives Debian's headless Chromium against the preview
// page through tools/browser-test/preview.mjs (playwright-core, pinned by its
// lockfile; never a downloaded browser) and returns what the page saw.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/internal/modroot"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// Chromium is the browser the tests use: Debian's package.
const Chromium = "/usr/bin/chromium"

// Result is what preview.mjs prints: what the page saw while it watched.
type Result struct {
	Connected      bool     `json:"connected"`
	FramesDecoded  int      `json:"framesDecoded"`
	MetaMessages   int      `json:"metaMessages"`
	FramesSeen     int      `json:"framesSeen"`
	Matched        int      `json:"matched"`
	Unmatched      int      `json:"unmatched"`
	BoxesDrawn     int      `json:"boxesDrawn"`
	Overlays       bool     `json:"overlays"`
	LatencySamples int      `json:"latencySamples"`
	LatencyP50Ms   float64  `json:"latencyP50Ms"`
	LatencyP99Ms   float64  `json:"latencyP99Ms"`
	VideoWidth     int      `json:"videoWidth"`
	ElapsedMs      int      `json:"elapsedMs"`
	Error          string   `json:"error"`
	Console        []string `json:"console"`
}

// Browser runs the driver script.
type Browser struct {
	node, dir string
}

// Need returns a Browser, or stops t through realpart (a skip locally, a
// failure under CI or OSPREY_REQUIRE_PARTS=1) when Chromium, node or the
// driver's node_modules (scripts/setup.sh installs them) are missing. Call it
// before starting anything expensive.
func Need(t testing.TB) *Browser {
	t.Helper()
	realpart.File(t, realpart.Chromium, Chromium)
	node := realpart.Command(t, realpart.Node, "node")
	dir := filepath.Join(repoRoot(t), "tools", "browser-test")
	realpart.File(t, realpart.BrowserDriver, filepath.Join(dir, "node_modules", "playwright-core"))
	return &Browser{node: node, dir: dir}
}

// Watch opens url, watches for seconds (longer, up to 30 s more, until
// minDecoded frames were decoded), saves a screenshot when screenshot is not
// empty, and returns what the page saw.
func (b *Browser) Watch(url string, seconds, minDecoded int, screenshot string) (Result, error) {
	// The script bounds itself; the context only guards against a hung browser.
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+60)*time.Second)
	defer cancel()
	args := []string{"preview.mjs", "--url", url, "--seconds", strconv.Itoa(seconds), "--min-decoded", strconv.Itoa(minDecoded)}
	if screenshot != "" {
		args = append(args, "--screenshot", screenshot)
	}
	cmd := exec.CommandContext(ctx, b.node, args...)
	cmd.Dir = b.dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("browser-test: %w (output %q)", err, out)
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		return Result{}, fmt.Errorf("browser-test output %q: %w", out, err)
	}
	return r, nil
}

// ReviewResult is what tools/browser-test/review.mjs reports from the
// preview's review page.
type ReviewResult struct {
	Loaded          bool     `json:"loaded"`
	Rows            int      `json:"rows"`
	Clips           int      `json:"clips"`
	Series          int      `json:"series"`
	Bars            int      `json:"bars"`
	SnapshotsLoaded int      `json:"snapshotsLoaded"`
	Types           []string `json:"types"`
	ReadyState      int      `json:"readyState"`
	CurrentTime0    float64  `json:"currentTime0"`
	CurrentTime1    float64  `json:"currentTime1"`
	VideoWidth      int      `json:"videoWidth"`
	VideoError      string   `json:"videoError"`
	ElapsedMs       int      `json:"elapsedMs"`
	Error           string   `json:"error"`
	Console         []string `json:"console"`
}

// Review opens the review page at url, plays its first clip and reports
// what the page showed; screenshot, when set, is where the page goes.
func (b *Browser) Review(url, screenshot string) (ReviewResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"review.mjs", "--url", url}
	if screenshot != "" {
		args = append(args, "--screenshot", screenshot)
	}
	cmd := exec.CommandContext(ctx, b.node, args...)
	cmd.Dir = b.dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var r ReviewResult
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		return r, fmt.Errorf("browser-test review output %q: %v (exit: %v)", out, jerr, err)
	}
	if err != nil {
		return r, fmt.Errorf("browser-test review: %w: %s", err, r.Error)
	}
	return r, nil
}

func repoRoot(t testing.TB) string {
	root, err := modroot.FromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// FleetRow is one row of a fleet page table: its cells' text and links.
type FleetRow struct {
	Cells []string `json:"cells"`
	Links []string `json:"links"`
}

// FleetResult is what tools/browser-test/fleet.mjs reports from the
// preview's fleet page.
type FleetResult struct {
	Loaded   bool       `json:"loaded"`
	Enabled  bool       `json:"enabled"`
	Self     string     `json:"self"`
	OffShown bool       `json:"offShown"`
	Cameras  []FleetRow `json:"cameras"`
	Nodes    []FleetRow `json:"nodes"`
	Notes    string     `json:"notes"`
	// Followed is the first link to another node's preview, opened: the
	// stream that page selected, and whether it shows its fleet link.
	Followed *struct {
		URL       string `json:"url"`
		Camera    string `json:"camera"`
		Stream    string `json:"stream"`
		FleetLink bool   `json:"fleetLink"`
	} `json:"followed"`
	ElapsedMs int      `json:"elapsedMs"`
	Error     string   `json:"error"`
	Console   []string `json:"console"`
}

// Fleet opens the fleet page at url, reads its tables, follows a link to
// another node's preview and reports; screenshot, when set, is where the
// page goes.
func (b *Browser) Fleet(url, screenshot string) (FleetResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"fleet.mjs", "--url", url}
	if screenshot != "" {
		args = append(args, "--screenshot", screenshot)
	}
	cmd := exec.CommandContext(ctx, b.node, args...)
	cmd.Dir = b.dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var r FleetResult
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		return r, fmt.Errorf("browser-test fleet output %q: %v (exit: %v)", out, jerr, err)
	}
	if err != nil {
		return r, fmt.Errorf("browser-test fleet: %w: %s", err, r.Error)
	}
	return r, nil
}
