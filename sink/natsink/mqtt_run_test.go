package natsink_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/app"
	"github.com/osprey-vision/osprey/components"
	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/mqtttest"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// mqttRunDuration is how long TestMQTTPipelineRun runs the pipeline:
// 8s always, OSPREY_MQTT_RUN=60s for the measurement in docs/mqtt.md.
func mqttRunDuration(t *testing.T) time.Duration {
	if v := os.Getenv("OSPREY_MQTT_RUN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("OSPREY_MQTT_RUN=%q: use a Go duration like 60s", v)
		}
		return d
	}
	return 8 * time.Second
}

// debianMQTTServer runs Debian's nats-server with examples/nats/mqtt.conf
// (ports and store moved to free ones and a temp dir) and returns its NATS
// URL and MQTT address.
func debianMQTTServer(t *testing.T) (natsURL, mqttAddr string) {
	t.Helper()
	bin := "/usr/sbin/nats-server"
	realpart.File(t, realpart.NATSServer, bin)
	conf, err := os.ReadFile("../../examples/nats/mqtt.conf")
	if err != nil {
		t.Fatal(err)
	}
	np, mp := freePort(t), freePort(t)
	c := strings.NewReplacer("0.0.0.0:4222", fmt.Sprintf("127.0.0.1:%d", np), "0.0.0.0:1883", fmt.Sprintf("127.0.0.1:%d", mp),
		"/var/lib/nats", t.TempDir()).Replace(string(conf))
	path := filepath.Join(t.TempDir(), "mqtt.conf")
	if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	mqttAddr = fmt.Sprintf("127.0.0.1:%d", mp)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", mqttAddr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server -c %s: MQTT listener not up", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", np), mqttAddr
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestMQTTPipelineRun runs a real pipeline (COCO SSD on vtest.avi paced at
// 10 fps, looped) publishing to Debian's nats-server configured as
// docs/mqtt.md says, with mosquitto_sub subscribed to the event topics, and
// checks mosquitto_sub received every event the JSONL sink wrote, by ID;
// afterwards the retained state matches the last events and the
// availability topic says offline.
func TestMQTTPipelineRun(t *testing.T) {
	model, _ := filepath.Abs("../../models/ssd_mobilenet_v2_coco.onnx")
	realpart.File(t, realpart.SSDModel, model)
	vtest := "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
	realpart.File(t, realpart.SampleVideo, vtest)
	natsURL, mqttAddr := debianMQTTServer(t)
	events := mqtttest.Subscribe(t, mqttAddr, "osprey/lobby/probe/probe/probe", "osprey/lobby/+/+/+")

	jsonl := filepath.Join(t.TempDir(), "events.jsonl")
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "p.yaml"), []byte(fmt.Sprintf(`name: lobby
mode: live
latency_budget: 1s
streams:
  - {id: plaza, url: "file://%s", loop: true, realtime: true}
model: {path: %s, format: ssd, threads: 2}
detect: {confidence: 0.5, classes: [person]}
track: {max_lost: 1s}
zones:
  - {name: road, stream: plaza, polygon: [[0.30, 0.38], [0.75, 0.38], [0.75, 0.70], [0.30, 0.70]]}
lines:
  - {name: walkway, stream: plaza, from: [0.55, 0.30], to: [0.55, 0.80]}
sinks:
  jsonl: {path: %s}
  nats:
    url: %s
    jetstream: {stream: OSPREY, create: true}
    snapshots: {types: [line.crossed, zone.entered], crop: true}
    mqtt: {broker: %s}
`, vtest, model, jsonl, natsURL, mqttAddr)), components.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run := mqttRunDuration(t)
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	start := time.Now()
	if err := a.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	elapsed := time.Since(start)

	var written []event.Event
	f, err := os.Open(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("jsonl: %v", err)
		}
		written = append(written, e)
	}
	f.Close()
	want := map[string]event.Event{}
	for _, e := range written {
		want[e.ID] = e
	}
	got := map[string]bool{}
	dups := 0
	timeout := time.After(20 * time.Second)
	for len(got) < len(want) {
		select {
		case l := <-events:
			topic, payload, _ := strings.Cut(l, " ")
			var e event.Event
			if err := json.Unmarshal([]byte(payload), &e); err != nil {
				t.Fatalf("mosquitto_sub %s: %v", topic, err)
			}
			w, ok := want[e.ID]
			if !ok {
				t.Fatalf("mosquitto_sub got event %s on %s that the JSONL sink did not write", e.ID, topic)
			}
			if topic != "osprey/lobby/plaza/"+strings.ReplaceAll(string(w.Type), ".", "/") {
				t.Fatalf("%s event on %s", w.Type, topic)
			}
			if got[e.ID] {
				dups++
			}
			got[e.ID] = true
		case <-timeout:
			t.Fatalf("mosquitto_sub received %d of the %d events the JSONL sink wrote", len(got), len(want))
		}
	}
	types := map[event.Type]int{}
	for _, e := range written {
		types[e.Type]++
	}
	t.Logf("%v run: JSONL %d events, mosquitto_sub %d (%d duplicates); by type %v", elapsed.Round(time.Second), len(want), len(got), dups, types)
	if types[event.TrackStarted] == 0 || types[event.ZoneEntered] == 0 {
		t.Fatalf("the run produced too few events to mean anything: %v", types)
	}

	// The retained state is what the last events said.
	out, _ := exec.Command("mosquitto_sub", "-h", "127.0.0.1", "-p", mqttAddr[strings.LastIndex(mqttAddr, ":")+1:], "-V", "mqttv311",
		"-t", "osprey/lobby/status", "-t", "osprey/lobby/plaza/zone/+/occupancy", "-t", "osprey/lobby/plaza/line/+/+",
		"-t", "homeassistant/#", "--retained-only", "-W", "2", "-v").Output()
	state := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		topic, payload, _ := strings.Cut(line, " ")
		state[topic] = payload
	}
	wantState := map[string]string{"osprey/lobby/status": "offline", "osprey/lobby/plaza/zone/road/occupancy": "0",
		"osprey/lobby/plaza/line/walkway/in": "0", "osprey/lobby/plaza/line/walkway/out": "0"}
	for _, e := range written {
		switch {
		case e.Zone == "road" && e.Occupancy != nil:
			wantState["osprey/lobby/plaza/zone/road/occupancy"] = strconv.Itoa(*e.Occupancy)
		case e.Type == event.LineCrossed:
			wantState["osprey/lobby/plaza/line/walkway/"+e.Direction] = strconv.Itoa(e.Count)
		}
	}
	for topic, v := range wantState {
		if state[topic] != v {
			t.Errorf("retained %s = %q, want %q (from the JSONL events)", topic, state[topic], v)
		}
	}
	if types[event.ZoneEntered]+types[event.LineCrossed] > 0 {
		jpg, _ := exec.Command("mosquitto_sub", "-h", "127.0.0.1", "-p", mqttAddr[strings.LastIndex(mqttAddr, ":")+1:], "-V", "mqttv311",
			"-t", "osprey/lobby/plaza/snapshot/latest/jpeg", "--retained-only", "-C", "1", "-W", "2", "-N").Output()
		if len(jpg) < 100 || jpg[0] != 0xFF || jpg[1] != 0xD8 {
			t.Errorf("retained snapshot: %d bytes, not a JPEG", len(jpg))
		}
		t.Logf("retained snapshot: %d bytes of JPEG", len(jpg))
	}
	var discovery []string
	for topic := range state {
		if strings.HasPrefix(topic, "homeassistant/") {
			discovery = append(discovery, topic)
		}
	}
	slices.Sort(discovery)
	t.Logf("discovery topics: %q", discovery)
	if len(discovery) != 5 {
		t.Errorf("%d discovery topics, want 5 (2 zone, 2 line, 1 image)", len(discovery))
	}
}
