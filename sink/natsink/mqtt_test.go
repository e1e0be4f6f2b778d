package natsink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/mqtttest"
	"github.com/osprey-vision/osprey/sink/hass"
)

// Every event written to the sink reaches mosquitto_sub through the
// embedded server's MQTT listener, on osprey/<pipeline>/<stream>/<type with
// '/' for '.'>, as the same JSON; mosquitto_sub also gets the retained
// discovery configs and state.
func TestMQTTEmbeddedListenerMosquitto(t *testing.T) {
	s := newSink(t, Config{Pipeline: "lobby", Embedded: EmbeddedConfig{Port: -1, StoreDir: t.TempDir()},
		MQTT: &MQTTConfig{Listen: "127.0.0.1:-1"},
		Streams: func() []hass.Stream {
			return []hass.Stream{{ID: "door-cam", Zones: []string{"entrance"}, Lines: []string{"gate"}}}
		}})
	addr := s.MQTTAddr()
	if addr == "" || strings.HasSuffix(addr, ":-1") {
		t.Fatalf("MQTT address %q", addr)
	}
	lines := mqtttest.Subscribe(t, addr, "osprey/lobby/probe/probe/probe", "osprey/#", "homeassistant/#")
	want := map[string]event.Event{}
	for i, typ := range event.Types {
		e := sampleEvent(typ, "lobby", "door-cam", i)
		want[e.ID] = e
		if err := s.Write(context.Background(), frameWith("door-cam", e)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{} // topic -> last payload
	timeout := time.After(15 * time.Second)
	for len(want) > 0 {
		var l string
		select {
		case l = <-lines:
		case <-timeout:
			t.Fatalf("%d events not received over MQTT", len(want))
		}
		topic, payload, _ := strings.Cut(l, " ")
		got[topic] = payload
		var e event.Event
		if strings.Count(topic, "/") != 4 || json.Unmarshal([]byte(payload), &e) != nil {
			continue // state, status, discovery
		}
		w, ok := want[e.ID]
		if !ok {
			continue
		}
		validate(t, []byte(payload))
		if wantTopic := "osprey/lobby/door-cam/" + strings.ReplaceAll(string(w.Type), ".", "/"); topic != wantTopic || topic != hass.EventTopic("osprey", w) {
			t.Fatalf("%s event on %q, want %q", w.Type, topic, wantTopic)
		}
		delete(want, e.ID)
	}
	// The line.crossed sample has count 5 in; zone events set occupancy.
	waitFor(t, 10*time.Second, "state over MQTT", func() bool {
		for {
			select {
			case l := <-lines:
				topic, payload, _ := strings.Cut(l, " ")
				got[topic] = payload
				continue
			default:
			}
			break
		}
		return got["osprey/lobby/door-cam/line/gate/in"] == "5" && got["osprey/lobby/status"] == "online" &&
			got["homeassistant/binary_sensor/osprey_lobby/door-cam_zone_entrance_occupied/config"] != ""
	})
	if st := s.Stats(); st.MQTT == nil || st.MQTT.Published == 0 || !st.MQTT.Connected {
		t.Fatalf("stats %+v, mqtt %+v", st, st.MQTT)
	}
}

// An external server: the state publisher connects to mqtt.broker, here an
// in-process nats-server with its own MQTT listener (what docs/mqtt.md asks
// of a server's config).
func TestMQTTExternalServerBroker(t *testing.T) {
	ext := runMQTTServer(t)
	s := newSink(t, Config{URL: ext.nats, Pipeline: "lobby", MQTT: &MQTTConfig{Broker: ext.mqtt}})
	lines := mqtttest.Subscribe(t, ext.mqtt, "osprey/lobby/probe/probe/probe", "osprey/lobby/+/+/+", "osprey/lobby/status")
	e := sampleEvent(event.ZoneEntered, "lobby", "yard", 3)
	if err := s.Write(context.Background(), frameWith("yard", e)); err != nil {
		t.Fatal(err)
	}
	var sawEvent, sawOnline bool
	timeout := time.After(15 * time.Second)
	for !sawEvent || !sawOnline {
		select {
		case l := <-lines:
			sawEvent = sawEvent || strings.HasPrefix(l, "osprey/lobby/yard/zone/entered {")
			sawOnline = sawOnline || l == "osprey/lobby/status online"
		case <-timeout:
			st, _ := s.StateStats()
			t.Fatalf("event %v, online %v; state %+v", sawEvent, sawOnline, st)
		}
	}
}

// mqttServer is an external nats-server with an MQTT listener.
type mqttServer struct{ nats, mqtt string }

func runMQTTServer(t *testing.T) mqttServer {
	t.Helper()
	opts := &server.Options{ServerName: "external"}
	opts.MQTT.Host, opts.MQTT.Port = "127.0.0.1", -1
	srv := runServer(t, opts)
	return mqttServer{nats: srv.ClientURL(), mqtt: fmt.Sprintf("127.0.0.1:%d", opts.MQTT.Port)}
}

func TestValidateMQTT(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"embedded", Config{Pipeline: "p", MQTT: &MQTTConfig{Listen: "127.0.0.1:1883"}}, ""},
		{"embedded, every interface", Config{Pipeline: "p", MQTT: &MQTTConfig{Listen: ":1883"}}, ""},
		{"external", Config{Pipeline: "p", URL: "nats://h:4222", MQTT: &MQTTConfig{Broker: "h:1883"}}, ""},
		{"no listen", Config{Pipeline: "p", MQTT: &MQTTConfig{}},
			"mqtt.listen: is empty: set host:port for the embedded server's MQTT listener, e.g. 127.0.0.1:1883"},
		{"bad listen", Config{Pipeline: "p", MQTT: &MQTTConfig{Listen: "1883"}},
			`mqtt.listen: "1883" is not host:port: use e.g. 127.0.0.1:1883 (0.0.0.0:1883 for every interface)`},
		{"listen port", Config{Pipeline: "p", MQTT: &MQTTConfig{Listen: "127.0.0.1:70000"}},
			`mqtt.listen: port "70000" is out of range: use 1-65535, or -1 for a free port`},
		{"external without broker", Config{Pipeline: "p", URL: "nats://h:4222", MQTT: &MQTTConfig{}},
			"mqtt.broker: is empty, and url is set: set the host:port of your server's MQTT listener (docs/mqtt.md)"},
		{"external with listen", Config{Pipeline: "p", URL: "nats://h:4222", MQTT: &MQTTConfig{Listen: ":1883", Broker: "h:1883"}},
			"mqtt.listen: only the embedded server (url empty) gets an MQTT listener from Osprey: enable mqtt in your nats-server's config (docs/mqtt.md) and set mqtt.broker to its address"},
		{"bad broker", Config{Pipeline: "p", URL: "nats://h:4222", MQTT: &MQTTConfig{Broker: "ssl://h:8883"}},
			`mqtt.broker: "ssl://h:8883": use host:port or tcp://host:port`},
		{"password without user", Config{Pipeline: "p", MQTT: &MQTTConfig{Listen: ":1883", Password: "x"}},
			"mqtt.password: is set without mqtt.user"},
		{"discovery prefix", Config{Pipeline: "p", MQTT: &MQTTConfig{Listen: ":1883", DiscoveryPrefix: "ha/#"}},
			`mqtt.discovery_prefix: "ha/#" is not a topic prefix: no wildcards, no leading or trailing '/'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Fatalf("error\n got %q\nwant %q", got, tt.err)
			}
		})
	}
}

// A listener that cannot start (its port taken) fails Connect, naming it.
func TestMQTTListenPortInUse(t *testing.T) {
	taken := runMQTTServer(t).mqtt
	s, err := New(Config{Pipeline: "lobby", Embedded: EmbeddedConfig{Port: -1, StoreDir: t.TempDir()},
		MQTT: &MQTTConfig{Listen: taken}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	err = s.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "(mqtt "+taken+")") || !strings.Contains(err.Error(), "mqtt.listen") {
		t.Fatalf("connect with the MQTT port taken: %v", err)
	}
}
