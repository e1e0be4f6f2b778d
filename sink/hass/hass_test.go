package hass

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/testlog"
)

// jpegBytes is a real JPEG (a 1x1 grey pixel), as natsink's snapshots are.
var jpegBytes = []byte{0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x03, 0x02, 0x02, 0x02, 0x02, 0x02, 0x03, 0x02, 0x02, 0x02, 0x03, 0x03, 0x03, 0x03, 0x04, 0x06, 0x04, 0x04, 0x04, 0x04, 0x04, 0x08, 0x06, 0x06, 0x05, 0x06, 0x09, 0x08, 0x0a, 0x0a, 0x09, 0x08, 0x09, 0x09, 0x0a, 0x0c, 0x0f, 0x0c, 0x0a, 0x0b, 0x0e, 0x0b, 0x09, 0x09, 0x0d, 0x11, 0x0d, 0x0e, 0x0f, 0x10, 0x10, 0x11, 0x10, 0x0a, 0x0c, 0x12, 0x13, 0x12, 0x10, 0x13, 0x0f, 0x10, 0x10, 0x10, 0xff, 0xc9, 0x00, 0x0b, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00, 0xff, 0xcc, 0x00, 0x06, 0x00, 0x10, 0x10, 0x05, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0xd2, 0xcf, 0x20, 0xff, 0xd9}

func newPublisher(t *testing.T, broker string, streams ...Stream) *Publisher {
	t.Helper()
	p, err := New(Config{Broker: broker, Prefix: "osprey", Pipeline: "lobby", DiscoveryPrefix: "homeassistant",
		Snapshots: true, Streams: func() []Stream { return streams }, ConnectTimeout: 2 * time.Second}, testlog.New(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func occupancy(n int) *int { return &n }

// wantDiscovery is every discovery topic for stream door-cam with zone
// entrance and line gate: the list docs/mqtt.md shows.
var wantDiscovery = []string{
	"homeassistant/binary_sensor/osprey_lobby/door-cam_zone_entrance_occupied/config",
	"homeassistant/image/osprey_lobby/door-cam_snapshot/config",
	"homeassistant/sensor/osprey_lobby/door-cam_line_gate_in/config",
	"homeassistant/sensor/osprey_lobby/door-cam_line_gate_out/config",
	"homeassistant/sensor/osprey_lobby/door-cam_zone_entrance_occupancy/config",
}

// State and discovery are retained on nats-server's MQTT store: a
// subscriber that connects afterwards (Home Assistant starting) gets every
// config, the latest state and "online"; after Close it gets "offline".
func TestRetainedStateAndDiscovery(t *testing.T) {
	_, addr := runMQTTServer(t)
	p := newPublisher(t, addr, Stream{ID: "door-cam", Zones: []string{"entrance"}, Lines: []string{"gate"}})
	e := event.New(event.ZoneEntered, "lobby", "door-cam")
	e.Zone, e.Occupancy = "entrance", occupancy(1)
	p.Observe(e, nil)
	e.Occupancy = occupancy(2)
	p.Observe(e, nil)
	l := event.New(event.LineCrossed, "lobby", "door-cam")
	l.Line, l.Direction, l.Count = "gate", "in", 3
	p.Observe(l, jpegBytes)
	waitFor(t, 10*time.Second, "state published", func() bool { st := p.Stats(); return st.Pending == 0 && st.Published > 0 })

	want := len(wantDiscovery) + 5 // status, occupancy, in, out, snapshot
	w := watchUntil(t, addr, 10*time.Second, "retained messages", func(w *watcher) bool { return len(w.snapshot()) >= want },
		"homeassistant/#", "osprey/#")
	msgs := w.snapshot()
	if len(msgs) != want {
		t.Errorf("%d retained topics, want %d", len(msgs), want)
	}
	for topic := range msgs {
		if !w.retained[topic] {
			t.Errorf("%s not delivered as retained", topic)
		}
	}
	if got := checkDiscovery(t, "homeassistant", msgs); !slices.Equal(got, wantDiscovery) {
		t.Fatalf("discovery topics\n got %q\nwant %q", got, wantDiscovery)
	}
	for topic, want := range map[string]string{
		"osprey/lobby/status":                           "online",
		"osprey/lobby/door-cam/zone/entrance/occupancy": "2",
		"osprey/lobby/door-cam/line/gate/in":            "3",
		"osprey/lobby/door-cam/line/gate/out":           "0",
		"osprey/lobby/door-cam/snapshot/latest/jpeg":    string(jpegBytes),
	} {
		if got, _ := w.get(topic); got != want {
			t.Errorf("%s = %q, want %q", topic, got, want)
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	watchUntil(t, addr, 5*time.Second, "offline after Close", func(w *watcher) bool { v, _ := w.get("osprey/lobby/status"); return v == "offline" },
		"osprey/lobby/status")
}

// A zone or line first seen in an event (added by a reload) gets its
// entities then.
func TestZoneFirstSeenInEvent(t *testing.T) {
	_, addr := runMQTTServer(t)
	p := newPublisher(t, addr)
	e := event.New(event.ZoneLeft, "lobby", "yard")
	e.Zone, e.Occupancy = "gate.west", occupancy(0)
	p.Observe(e, nil)
	waitFor(t, 10*time.Second, "state published", func() bool { return p.Stats().Pending == 0 })
	topic := "homeassistant/binary_sensor/osprey_lobby/yard_zone_gate_west_occupied/config"
	// Retained messages arrive in no set order: the availability topic the
	// configs point at may come after them.
	w := watchUntil(t, addr, 10*time.Second, "discovery for the new zone, its state and availability", func(w *watcher) bool {
		_, ok := w.get(topic)
		state, _ := w.get("osprey/lobby/yard/zone/gate_west/occupancy")
		status, _ := w.get("osprey/lobby/status")
		return ok && state == "0" && status == "online"
	}, "homeassistant/#", "osprey/#")
	checkDiscovery(t, "homeassistant", w.snapshot())
}

// A connection that drops without DISCONNECT leaves the will ("offline")
// on the availability topic; the publisher reconnects and publishes
// "online" and its latest state again.
func TestWillAndReconnect(t *testing.T) {
	_, addr := runMQTTServer(t)
	px := newProxy(t, addr)
	p := newPublisher(t, px.addr(), Stream{ID: "cam", Zones: []string{"z"}})
	waitFor(t, 10*time.Second, "connected and published", func() bool { st := p.Stats(); return st.Connected && st.Pending == 0 })
	w := watchUntil(t, addr, 5*time.Second, "online", func(w *watcher) bool { v, _ := w.get("osprey/lobby/status"); return v == "online" },
		"osprey/lobby/status", "osprey/lobby/cam/zone/z/occupancy")

	// The network stays down until the broker has sent the will: a
	// publisher back under the same client ID before the broker noticed the
	// drop takes the session over, and nats-server drops the old
	// connection's will then (as it may: the client is online again).
	px.cutAndRefuse()
	waitFor(t, 10*time.Second, "the will: offline", func() bool { return w.seen("osprey/lobby/status", "offline") })
	e := event.New(event.ZoneEntered, "lobby", "cam")
	e.Zone, e.Occupancy = "z", occupancy(4)
	p.Observe(e, nil) // while reconnecting
	px.accept()
	waitFor(t, 20*time.Second, "online again", func() bool { v, _ := w.get("osprey/lobby/status"); return v == "online" })
	waitFor(t, 10*time.Second, "latest state after reconnect", func() bool {
		v, _ := w.get("osprey/lobby/cam/zone/z/occupancy")
		return v == "4"
	})
}

// The broker down at start is not an error: state waits and is published
// once a broker listens there.
func TestBrokerUnreachableAtStart(t *testing.T) {
	_, addr := runMQTTServer(t)
	px := newProxy(t, addr)
	target := px.addr()
	px.l.Close() // nothing listens on target now
	p := newPublisher(t, target, Stream{ID: "cam", Lines: []string{"l"}})
	if st := p.Stats(); st.Connected || st.Pending == 0 {
		t.Fatalf("before the broker is up: %+v", st)
	}
	newProxyOn(t, target, addr)
	waitFor(t, 20*time.Second, "published once the broker is there", func() bool { return p.Stats().Pending == 0 })
	watchUntil(t, addr, 5*time.Second, "line count", func(w *watcher) bool { v, _ := w.get("osprey/lobby/cam/line/l/in"); return v == "0" },
		"osprey/lobby/cam/line/l/in")
	p.Close(context.Background()) // before the proxy's clean-up cuts it off
}

func TestBadAuthIsAnError(t *testing.T) {
	_, addr := runMQTTServerAuth(t, "osprey", "right")
	p, err := New(Config{Broker: addr, Prefix: "osprey", Pipeline: "lobby", User: "osprey", Password: "wrong"}, testlog.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	err = p.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "check sinks.nats.mqtt.user and password") {
		t.Fatalf("connect with a wrong password: %v", err)
	}
}

func TestBrokerURL(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"127.0.0.1:1883", "tcp://127.0.0.1:1883", ""},
		{"tcp://broker.lan:1883", "tcp://broker.lan:1883", ""},
		{":1883", "tcp://127.0.0.1:1883", ""},
		{"ssl://h:8883", "", `hass: "ssl://h:8883": use host:port or tcp://host:port`},
		{"h", "", `hass: "h" is not host:port: address h: missing port in address`},
		{"h:99999", "", `hass: "h:99999": port "99999" is not 1-65535`},
	} {
		got, err := BrokerURL(tt.in)
		es := ""
		if err != nil {
			es = err.Error()
		}
		if got != tt.want || es != tt.err {
			t.Errorf("BrokerURL(%q) = %q, %q; want %q, %q", tt.in, got, es, tt.want, tt.err)
		}
	}
}

// mosquitto_sub, the reference MQTT client, sees the same retained
// discovery configs and state as Home Assistant would.
func TestMosquittoSubSeesRetained(t *testing.T) {
	bin := realpart.Command(t, realpart.MosquittoClients, "mosquitto_sub")
	_, addr := runMQTTServer(t)
	p := newPublisher(t, addr, Stream{ID: "door-cam", Zones: []string{"entrance"}, Lines: []string{"gate"}})
	l := event.New(event.LineCrossed, "lobby", "door-cam")
	l.Line, l.Direction, l.Count = "gate", "out", 7
	p.Observe(l, jpegBytes)
	waitFor(t, 10*time.Second, "state published", func() bool { return p.Stats().Pending == 0 })
	host, port, _ := strings.Cut(addr, ":")
	want := append(slices.Clone(wantDiscovery), "osprey/lobby/status", "osprey/lobby/door-cam/line/gate/out",
		"osprey/lobby/door-cam/snapshot/latest/jpeg")
	// Up to three fresh subscriptions: see watchUntil for why one arriving
	// right after the PUBACKs may miss a retained message.
	var out []byte
	var missing []string
	for range 3 {
		var err error
		out, err = exec.Command(bin, "-h", host, "-p", port, "-V", "mqttv311", "-t", "homeassistant/#", "-t", "osprey/#",
			"--retained-only", "-W", "2", "-F", "%t %r").CombinedOutput()
		if err != nil && !strings.Contains(string(out), "Timed out") {
			// --retained-only exits at the first non-retained message, -W
			// bounds the wait; either is fine, anything else is not.
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 27 {
				t.Fatalf("mosquitto_sub: %v\n%s", err, out)
			}
		}
		got := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line == "Timed out" {
				continue
			}
			topic, retained, _ := strings.Cut(line, " ")
			if retained != "1" {
				t.Errorf("mosquitto_sub: %s not retained (%q)", topic, line)
			}
			got[topic] = true
		}
		missing = slices.DeleteFunc(slices.Clone(want), func(topic string) bool { return got[topic] })
		if len(missing) == 0 {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("mosquitto_sub did not get %q; got:\n%s", missing, out)
	}
	if os.Getenv("OSPREY_MQTT_VERBOSE") != "" {
		t.Logf("mosquitto_sub:\n%s", out)
	}
}
