package stages_test

import (
	"testing"

	"github.com/osprey-vision/osprey/capture"
	"github.com/osprey-vision/osprey/capture/capturetest"
	"github.com/osprey-vision/osprey/stages"
)

// The reload hub is the one Source the runner reads once EnableReload is on,
// so it passes the same conformance suite as capture's sources. It runs here,
// in an external test package, because capturetest and capture import stages.

// newHub returns a constructor of hubs over one capture source per URL.
func newHub(urls ...string) func(t *testing.T) stages.Source {
	return func(t *testing.T) stages.Source {
		t.Helper()
		var specs []stages.SourceSpec
		for i, u := range urls {
			id := string(rune('a' + i))
			src, err := capture.New(capture.Config{ID: id, URL: u}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			specs = append(specs, stages.SourceSpec{Stream: id, Source: src})
		}
		r := stages.NewRunner(stages.Graph{Sources: specs, SourceLink: stages.Link{Size: 1, Policy: stages.Block}}, nil, nil)
		r.EnableReload()
		return stages.HubSource(r)
	}
}

// One finite stream: the hub ends when its only stream ends.
func TestConformanceReloadHub(t *testing.T) {
	capturetest.Run(t, newHub("test://?w=160&h=120&fps=2&frames=4"),
		capturetest.Options{Finite: true, MaxFrames: 4, Paced: true})
}

// Two finite streams of different lengths: the hub ends after both.
func TestConformanceReloadHubTwoStreams(t *testing.T) {
	capturetest.Run(t, newHub("test://?w=160&h=120&fps=50&frames=6", "test://?w=64&h=48&fps=50&frames=3"),
		capturetest.Options{Finite: true, MaxFrames: 9})
}
