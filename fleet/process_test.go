package fleet

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/osprey-vision/osprey/internal/modroot"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/syncbuf"
)

// TestProcesses runs three nodes as three processes of the real binary
// (built here) on a 3-server cluster, six test:// cameras and the BlazeFace
// detector; every node publishes each frame's detections with its node
// name, which is how the test sees who processes what. It kills a node with
// SIGKILL and measures, per moved camera, the time from the kill to its
// first frame on a survivor. OSPREY_FLEET_KILLS=10 repeats the kill (the
// victim restarts between kills) and reports p50 and max.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes (~30s)")
	}
	root, err := modroot.FromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	ort := filepath.Join(root, "third_party/lib/libonnxruntime.so")
	realpart.File(t, realpart.ORT, ort)
	model := filepath.Join(root, "third_party/blazeface/ONNX/face_detection_front_128x128_barracuda.onnx")
	realpart.File(t, realpart.BlazeFace, model)
	bin := filepath.Join(t.TempDir(), "pipeline")
	build := exec.Command("go", "build", "-o", bin, "./cmd/pipeline")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	srvs := runCluster(t, 3)
	all := urls(srvs)
	dir := t.TempDir()
	var streams strings.Builder
	const ncams = 6
	for i := 1; i <= ncams; i++ {
		fmt.Fprintf(&streams, "  - {id: cam%d, url: \"test://?fps=5&w=320&h=240\"}\n", i)
	}
	file := filepath.Join(dir, "ft.yaml")
	yaml := fmt.Sprintf(`name: ft
latency_budget: 300ms
fleet: {nats: %q, lease_ttl: 2s, heartbeat: 400ms, replicas: 3, rebalance: 1s, min_hold: 2s}
streams:
%smodel: {path: %s, format: blazeface, providers: [cpu], threads: 1}
detect: {confidence: 0.5}
sinks:
  nats:
    url: %q
    detections: true
    spool: {dir: %s/spool-NODE}
`, all, streams.String(), model, all, dir)
	must(t, os.WriteFile(file, []byte(yaml), 0o644))

	// Who processed what, from the detections every node publishes.
	nc, err := nats.Connect(all)
	must(t, err)
	defer nc.Close()
	var mu sync.Mutex
	last := map[string]string{}                  // camera -> node of its latest frame
	firstOn := map[string]map[string]time.Time{} // camera -> node -> first frame after mark
	var mark time.Time
	_, err = nc.Subscribe("osprey.ft.*.detections", func(m *nats.Msg) {
		var d struct {
			Stream, Node string
			Lease        uint64
		}
		if json.Unmarshal(m.Data, &d) != nil || d.Node == "" || d.Lease == 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		last[d.Stream] = d.Node
		if firstOn[d.Stream] == nil {
			firstOn[d.Stream] = map[string]time.Time{}
		}
		if _, ok := firstOn[d.Stream][d.Node]; !ok && !mark.IsZero() {
			firstOn[d.Stream][d.Node] = time.Now()
		}
	})
	must(t, err)

	procs := map[string]*nodeProc{}
	start := func(name string) *nodeProc {
		spec := strings.ReplaceAll(yaml, "spool-NODE", "spool-"+name)
		f := filepath.Join(dir, name+".yaml")
		must(t, os.WriteFile(f, []byte(spec), 0o644))
		p := runNode(t, bin, ort, f, name)
		procs[name] = p
		return p
	}
	for _, n := range []string{"a", "b", "c"} {
		start(n)
	}
	held := func() map[string][]string {
		mu.Lock()
		defer mu.Unlock()
		out := map[string][]string{}
		for cam, node := range last {
			out[node] = append(out[node], cam)
		}
		return out
	}
	lastLog := time.Now()
	waitFor(t, 40*time.Second, "every camera processed, two per node", func() bool {
		h := held()
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			t.Logf("processing: %v", h)
		}
		return len(h["a"]) == 2 && len(h["b"]) == 2 && len(h["c"]) == 2
	})

	// A second node called a refuses to start, saying why.
	dup := exec.Command(bin, "run", "--status", "off", "--node", "a", filepath.Join(dir, "a.yaml"))
	dup.Env = append(os.Environ(), "ORT_LIB="+ort)
	out, err := dup.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `node "a" is already running`) {
		t.Fatalf("a duplicate node started or did not say why: %v\n%s", err, out)
	}

	kills := 1
	if v, _ := strconv.Atoi(os.Getenv("OSPREY_FLEET_KILLS")); v > 0 {
		kills = v
	}
	victims := []string{"c", "a", "b"}
	var failovers []time.Duration
	for k := range kills {
		victim := victims[k%len(victims)]
		moved := slices.Clone(held()[victim])
		if len(moved) == 0 {
			t.Fatalf("kill %d: %s holds nothing", k+1, victim)
		}
		mu.Lock()
		mark = time.Now()
		firstOn = map[string]map[string]time.Time{}
		mu.Unlock()
		killed := time.Now()
		must(t, procs[victim].cmd.Process.Signal(syscall.SIGKILL))
		<-procs[victim].done
		waitFor(t, 20*time.Second, "the killed node's cameras on survivors", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, cam := range moved {
				if !slices.ContainsFunc(keys(firstOn[cam]), func(n string) bool { return n != victim }) {
					return false
				}
			}
			return true
		})
		mu.Lock()
		for _, cam := range moved {
			first := time.Time{}
			for n, at := range firstOn[cam] {
				if n != victim && (first.IsZero() || at.Before(first)) {
					first = at
				}
			}
			failovers = append(failovers, first.Sub(killed))
			t.Logf("kill %d (%s): %s on a survivor after %v", k+1, victim, cam, first.Sub(killed).Round(time.Millisecond))
		}
		mu.Unlock()
		if k+1 < kills {
			start(victim)
			waitFor(t, 40*time.Second, "the restarted node back with a share", func() bool {
				h := held()
				return len(h["a"]) == 2 && len(h["b"]) == 2 && len(h["c"]) == 2
			})
		}
	}
	sort.Slice(failovers, func(i, j int) bool { return failovers[i] < failovers[j] })
	t.Logf("failover, kill -9 to the first frame on a survivor, %d cameras over %d kills: p50 %v, max %v (lease_ttl 2s, heartbeat 400ms)",
		len(failovers), kills, failovers[len(failovers)/2].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond))
	for _, p := range procs {
		p.stop(t)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type nodeProc struct {
	cmd    *exec.Cmd
	stderr syncbuf.Buffer
	done   chan struct{}
}

func runNode(t testing.TB, bin, ort, file, name string) *nodeProc {
	t.Helper()
	p := &nodeProc{cmd: exec.Command(bin, "run", "--status", "off", "--node", name, file), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "ORT_LIB="+ort)
	p.cmd.Stderr = &p.stderr
	must(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("node %s stderr:\n%s", name, p.stderr.String())
		}
	})
	return p
}

// stop ends the node with SIGTERM (a clean stop: leases released).
func (p *nodeProc) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Errorf("node did not stop within 15s of SIGTERM")
	}
}
