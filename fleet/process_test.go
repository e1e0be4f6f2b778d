package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/osprey-vision/osprey/internal/modroot"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/rtsptest"
	"github.com/osprey-vision/osprey/internal/syncbuf"
	"github.com/osprey-vision/osprey/sink/spool"
)

const sampleData = "/usr/share/doc/opencv-doc/examples/data/"

// TestProcesses runs three nodes as three processes of the real binary
// (built here) on a 3-server cluster with nine cameras: three test://
// patterns, three looped files and three RTSP cameras from GStreamer's RTSP
// server, through the BlazeFace detector, the tracker and zones. Every node
// publishes each frame's detections with its node name (that is how the
// test sees who processes what) and its events into a 3-replica JetStream
// stream through its own spool.
//
// It kills a node with SIGKILL and measures, per moved camera, the time from
// the kill to its first frame on a survivor; the victim restarts with the
// same name and spool. At the end every node is killed too, and restarted
// with no camera to run, so it only replays its spool. Then it compares, per
// process lifetime, the events the pipeline created (osprey_events_total,
// scraped just before the kill), the events the NATS sink accepted into its
// spool (osprey_events_accepted_total) and the events stored in JetStream
// (by ID, de-duplicated by Nats-Msg-Id). Nothing accepted into a spool may
// be missing. OSPREY_FLEET_KILLS=10 repeats the kill (p50 and max);
// OSPREY_FLEET_FSYNC=always|interval|never sets the spools' fsync.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes (~40s)")
	}
	root, err := modroot.FromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	ort := filepath.Join(root, "third_party/lib/libonnxruntime.so")
	realpart.File(t, realpart.ORT, ort)
	model := filepath.Join(root, "third_party/blazeface/ONNX/face_detection_front_128x128_barracuda.onnx")
	realpart.File(t, realpart.BlazeFace, model)
	// Megamind.avi: BlazeFace finds its faces (about one event a second
	// per camera); on vtest.avi's distant walkers it finds none.
	megamind := sampleData + "Megamind.avi"
	realpart.File(t, realpart.SampleVideo, megamind)
	fsync := os.Getenv("OSPREY_FLEET_FSYNC")
	if fsync == "" {
		fsync = "always"
	}
	if _, err := spool.ParseSyncPolicy(fsync); err != nil {
		t.Fatalf("OSPREY_FLEET_FSYNC: %v", err)
	}
	cam := rtsptest.Start(t, rtsptest.FreePort(t), megamind)
	bin := filepath.Join(t.TempDir(), "pipeline")
	build := exec.Command("go", "build", "-o", bin, "./cmd/pipeline")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	srvs := runCluster(t, 3)
	all := urls(srvs)
	dir := t.TempDir()
	const ncams, perNode = 9, 3
	var streams, zones strings.Builder
	for i := 1; i <= ncams; i++ {
		switch {
		case i <= 3:
			fmt.Fprintf(&streams, "  - {id: cam%d, url: \"test://?fps=5&w=320&h=240\"}\n", i)
			continue
		case i <= 6:
			fmt.Fprintf(&streams, "  - {id: cam%d, url: \"file://%s\", loop: true, realtime: true}\n", i, megamind)
		default:
			fmt.Fprintf(&streams, "  - {id: cam%d, url: %q, tcp: true}\n", i, cam.URL())
		}
		// The left half: faces walking or turning across its edge enter
		// and leave it.
		fmt.Fprintf(&zones, "  - {name: left, stream: cam%d, polygon: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}\n", i)
	}
	file := filepath.Join(dir, "ft.yaml")
	yaml := fmt.Sprintf(`name: ft
latency_budget: 300ms
fleet: {nats: %q, lease_ttl: 2s, heartbeat: 400ms, replicas: 3, rebalance: 1s, min_hold: 2s}
streams:
%smodel: {path: %s, format: blazeface, providers: [cpu], threads: 1}
detect: {confidence: 0.5}
track: {max_lost: 1s}
zones:
%ssinks:
  nats:
    url: SINKURL
    detections: true
    jetstream: {stream: FT, create: true, replicas: 3}
    spool: {dir: %s/spool-NODE, fsync: %s}
metrics: {listen: "METRICS"}
`, all, streams.String(), model, zones.String(), dir, fsync)
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

	// Each node's sink reaches one server through a proxy the test cuts
	// before a kill, so the victim dies with events in its spool (with a
	// reachable server they are acknowledged within milliseconds). The
	// fleet's own connection is direct: the cut does not fence the node.
	sinkProxy := map[string]*proxy{}
	for i, n := range []string{"a", "b", "c"} {
		sinkProxy[n] = newProxy(t, srvs[i].Addr().String())
	}
	procs := map[string]*nodeProc{}
	var lives []*lifetime
	start := func(name, spec string) *lifetime {
		port := freePort(t)
		spec = strings.ReplaceAll(spec, "spool-NODE", "spool-"+name)
		spec = strings.ReplaceAll(spec, "METRICS", fmt.Sprintf("127.0.0.1:%d", port))
		spec = strings.ReplaceAll(spec, "SINKURL", sinkProxy[name].URL())
		f := filepath.Join(dir, name+".yaml")
		must(t, os.WriteFile(f, []byte(spec), 0o644))
		l := &lifetime{node: name, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", port), start: time.Now()}
		l.p = runNode(t, bin, ort, f, name)
		procs[name] = l.p
		lives = append(lives, l)
		return l
	}
	current := func(name string) *lifetime {
		for i := len(lives) - 1; i >= 0; i-- {
			if lives[i].node == name {
				return lives[i]
			}
		}
		return nil
	}
	// cut disconnects the nodes' sinks and lets them spool for a while.
	cut := func(names ...string) {
		for _, n := range names {
			sinkProxy[n].Cut()
		}
		time.Sleep(3 * time.Second)
	}
	// kill scrapes the node's counters, then kills it with SIGKILL at once,
	// and lets its sink's server be reached again (for its restart).
	kill := func(name string) time.Time {
		defer sinkProxy[name].Restore(t)
		l := current(name)
		c, err := scrape(l.metrics)
		if err != nil {
			t.Fatalf("node %s metrics: %v", name, err)
		}
		scraped := time.Now()
		must(t, l.p.cmd.Process.Signal(syscall.SIGKILL))
		killed := time.Now()
		<-l.p.done
		l.end, l.counters, l.gap = killed, c, killed.Sub(scraped)
		return killed
	}
	for _, n := range []string{"a", "b", "c"} {
		start(n, yaml)
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
	balanced := func() bool {
		for _, n := range []string{"a", "b", "c"} {
			select {
			case <-current(n).p.done:
				t.Fatalf("node %s exited:\n%s", n, current(n).p.stderr.String())
			default:
			}
		}
		h := held()
		return len(h["a"]) == perNode && len(h["b"]) == perNode && len(h["c"]) == perNode
	}
	lastLog := time.Now()
	began := time.Now()
	waitFor(t, 60*time.Second, "every camera processed, three per node", func() bool {
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			t.Logf("processing: %v", held())
		}
		return balanced()
	})
	t.Logf("all nine cameras processed, three per node, %v after the start", time.Since(began).Round(100*time.Millisecond))

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
		cut(victim)
		mu.Lock()
		mark = time.Now()
		firstOn = map[string]map[string]time.Time{}
		mu.Unlock()
		killed := kill(victim)
		waitFor(t, 30*time.Second, "the killed node's cameras on survivors", func() bool {
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
			start(victim, yaml)
			waitFor(t, 60*time.Second, "the restarted node back with a share", balanced)
		}
	}
	sort.Slice(failovers, func(i, j int) bool { return failovers[i] < failovers[j] })
	t.Logf("failover, kill -9 to the first frame on a survivor, %d cameras over %d kills: p50 %v, max %v (lease_ttl 2s, heartbeat 400ms)",
		len(failovers), kills, failovers[len(failovers)/2].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond))

	// The end: every node killed while it runs (the victim of the last kill
	// first restarts, so its replay is covered too), then restarted with a
	// file whose only camera no node can run: they replay their spools and
	// create nothing.
	if kills > 0 {
		start(victims[(kills-1)%len(victims)], yaml)
		waitFor(t, 60*time.Second, "the restarted node back with a share", balanced)
	}
	cut("a", "b", "c")
	for _, n := range []string{"a", "b", "c"} {
		kill(n)
	}
	drain := regexp.MustCompile(`(?s)streams:\n.*?model:`).ReplaceAllString(yaml,
		"streams:\n  - {id: idle, url: \"test://\", requires: [nowhere]}\nmodel:")
	drain = regexp.MustCompile(`(?s)zones:\n.*?sinks:`).ReplaceAllString(drain, "sinks:")
	for _, n := range []string{"a", "b", "c"} {
		start(n, drain).drain = true
	}
	for _, n := range []string{"a", "b", "c"} {
		l := current(n)
		waitFor(t, 60*time.Second, "node "+n+" to replay its spool", func() bool {
			c, err := scrape(l.metrics)
			if err != nil || !c.has("osprey_events_spooled") || c["osprey_events_spooled"] != 0 {
				return false
			}
			l.counters = c
			return true
		})
		l.p.stop(t)
		l.end = time.Now()
	}

	stored, msgs := storedEvents(t, all, "FT")
	report(t, fsync, lives, stored, msgs)
}

// lifetime is one run of a node process, from its start to its kill.
type lifetime struct {
	node       string
	p          *nodeProc
	metrics    string
	start, end time.Time
	counters   counters      // scraped just before the end
	gap        time.Duration // from the scrape to the kill
	drain      bool          // started only to replay its spool
}

// replayed returns how many events the process found in its spool at start
// (its log line).
func (l *lifetime) replayed() int {
	m := regexp.MustCompile(`replaying events spooled by a previous run".*? events=(\d+)`).FindStringSubmatch(l.p.stderr.String())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// counters are a /metrics scrape, summed over labels.
type counters map[string]float64

func (c counters) has(name string) bool { _, ok := c[name]; return ok }

func scrape(url string) (counters, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := counters{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name := line[:sp]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		out[strings.TrimSpace(name)] += v
	}
	return out, sc.Err()
}

// storedEvent is the part of a stored event the comparison needs.
type storedEvent struct {
	id, node, typ string
	created       time.Time // from the ULID: when the pipeline made it
}

// storedEvents reads every message of the stream: the events by ID and the
// message count (equal unless an ID was stored twice).
func storedEvents(t *testing.T, url, stream string) (map[string]storedEvent, int) {
	t.Helper()
	nc, err := nats.Connect(url)
	must(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	must(t, err)
	info, err := s.Info(ctx)
	must(t, err)
	total := int(info.State.Msgs)
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	must(t, err)
	out := map[string]storedEvent{}
	for n := 0; n < total; {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		must(t, err)
		got := 0
		for m := range batch.Messages() {
			got++
			var e struct{ ID, Node, Type string }
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				t.Fatalf("stored event %q: %v", m.Data(), err)
			}
			out[e.ID] = storedEvent{id: e.ID, node: e.Node, typ: e.Type, created: ulidTime(t, e.ID)}
		}
		if got == 0 {
			t.Fatalf("read %d of %d stored events: %v", n, total, batch.Error())
		}
		n += got
	}
	return out, total
}

// ulidTime decodes the millisecond time of a ULID (event.NewID).
func ulidTime(t *testing.T, id string) time.Time {
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	if len(id) != 26 {
		t.Fatalf("event ID %q is not a ULID", id)
	}
	var ms uint64
	for _, c := range id[:10] {
		i := strings.IndexRune(crockford, c)
		if i < 0 {
			t.Fatalf("event ID %q is not a ULID", id)
		}
		ms = ms<<5 | uint64(i)
	}
	return time.UnixMilli(int64(ms))
}

// report compares created, accepted and stored per lifetime and in total,
// logs it, and fails if an event accepted into a spool is not stored or an
// ID is stored twice.
func report(t *testing.T, fsync string, lives []*lifetime, stored map[string]storedEvent, msgs int) {
	t.Helper()
	var created, accepted, dups, replayed, inFlight, kills int
	var maxGap time.Duration
	attributed := 0
	for i, l := range lives {
		n := 0
		for _, e := range stored {
			// ULIDs carry milliseconds: a lifetime starts after the previous
			// one of the node ended, and the process takes longer than 1 ms
			// to start.
			if e.node == l.node && !e.created.Before(l.start.Truncate(time.Millisecond)) && !e.created.After(l.end) {
				n++
			}
		}
		attributed += n
		c, a := int(l.counters["osprey_events_total"]), int(l.counters["osprey_events_accepted_total"])
		d, r := int(l.counters["osprey_events_duplicates_total"]), l.replayed()
		created += c
		accepted += a
		dups += d
		replayed += r
		what := "killed"
		if l.drain {
			what = "replay only, clean stop"
			if c != 0 || n != 0 {
				t.Errorf("lifetime %d (%s, replay only) created %d events, %d stored", i, l.node, c, n)
			}
		} else {
			kills++
			maxGap = max(maxGap, l.gap)
			if n < a {
				t.Errorf("lifetime %d (%s): %d events accepted into the spool, only %d stored", i, l.node, a, n)
			}
			if c > n {
				inFlight += c - n
			}
		}
		t.Logf("lifetime %d %s (%s, %v): created %d, accepted into spool %d, in the spool at the end %d, stored %d, replayed at start %d, duplicates acked %d",
			i, l.node, what, l.end.Sub(l.start).Round(100*time.Millisecond), c, a, int(l.counters["osprey_events_spooled"]), n, r, d)
	}
	if msgs != len(stored) {
		t.Errorf("stream holds %d messages for %d event IDs: an ID was stored twice", msgs, len(stored))
	}
	if attributed != len(stored) {
		t.Errorf("%d stored events belong to no node lifetime (of %d)", len(stored)-attributed, len(stored))
	}
	if created == 0 {
		t.Fatal("the pipelines created no events")
	}
	types := map[string]int{}
	for _, e := range stored {
		types[e.typ]++
	}
	t.Logf("events, fsync %s, %d kills -9: created %d, accepted into spools %d, stored %d (%d messages), replayed from spools %d, duplicates dropped by JetStream %d, created but not stored (lost between the fan-out and the spool at a kill) %d; scrape to kill at most %v; stored by type %v",
		fsync, kills, created, accepted, len(stored), msgs, replayed, dups, inFlight, maxGap.Round(time.Microsecond), types)
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
	p.cmd.Stdout = io.Discard
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
