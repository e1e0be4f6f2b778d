package hass

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats-server/v2/server"
)

// runMQTTServer starts an in-process nats-server with JetStream and its MQTT
// listener on a free port, and returns the server and the MQTT host:port.
func runMQTTServer(t testing.TB) (*server.Server, string) { return runMQTTServerAuth(t, "", "") }

// runMQTTServerAuth is runMQTTServer with an MQTT user and password.
func runMQTTServerAuth(t testing.TB, user, password string) (*server.Server, string) {
	t.Helper()
	opts := &server.Options{ServerName: "hass-test", Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	opts.MQTT.Host, opts.MQTT.Port = "127.0.0.1", -1
	opts.MQTT.Username, opts.MQTT.Password = user, password
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server with MQTT did not start")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv, fmt.Sprintf("127.0.0.1:%d", opts.MQTT.Port)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// poll reports whether cond held within d, checking every 20 ms.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// watcher is an MQTT client (paho) that records the latest message per topic
// and whether it came as retained.
type watcher struct {
	mu       sync.Mutex
	last     map[string][]byte
	history  map[string][]string
	retained map[string]bool
	c        mqtt.Client
}

// watch connects a fresh client to addr and subscribes to filters at QoS 1.
// A fresh subscription gets the retained messages first: what Home
// Assistant sees when it (re)starts.
func watch(t testing.TB, addr string, filters ...string) *watcher {
	t.Helper()
	w := &watcher{last: map[string][]byte{}, history: map[string][]string{}, retained: map[string]bool{}}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("watch-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false)
	w.c = mqtt.NewClient(opts)
	if tok := w.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect to %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { w.c.Disconnect(100) })
	for _, f := range filters {
		tok := w.c.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) {
			w.mu.Lock()
			w.last[m.Topic()] = slices.Clone(m.Payload())
			w.history[m.Topic()] = append(w.history[m.Topic()], string(m.Payload()))
			w.retained[m.Topic()] = m.Retained()
			w.mu.Unlock()
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	return w
}

// watchUntil is watch until cond holds, with a fresh client each second,
// for at most d. nats-server stores a retained message in JetStream before
// it sends the PUBACK but adds it to the map new subscriptions read from
// asynchronously, so a subscriber arriving just after the PUBACK can miss
// it; a fresh subscription (Home Assistant restarting) gets it.
func watchUntil(t testing.TB, addr string, d time.Duration, what string, cond func(*watcher) bool, filters ...string) *watcher {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		w := watch(t, addr, filters...)
		if poll(time.Second, func() bool { return cond(w) }) {
			return w
		}
		w.c.Disconnect(0)
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

func (w *watcher) get(topic string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, ok := w.last[topic]
	return string(b), ok
}

// seen reports whether topic ever carried payload.
func (w *watcher) seen(topic, payload string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.history[topic], payload)
}

func (w *watcher) snapshot() map[string][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string][]byte, len(w.last))
	for k, v := range w.last {
		out[k] = v
	}
	return out
}

// The keys Osprey may set, per Home Assistant's MQTT discovery docs for
// binary_sensor, sensor and image (plus the options every MQTT entity
// shares). A key outside these is a typo Home Assistant would reject.
var (
	commonKeys = []string{"name", "unique_id", "availability_topic", "payload_available", "payload_not_available",
		"device", "origin", "qos", "icon", "object_id", "default_entity_id", "entity_category", "enabled_by_default",
		"json_attributes_topic", "json_attributes_template", "availability", "availability_mode", "availability_template", "encoding"}
	componentKeys = map[string][]string{
		"binary_sensor": {"state_topic", "value_template", "payload_on", "payload_off", "device_class", "expire_after", "force_update", "off_delay"},
		"sensor":        {"state_topic", "value_template", "device_class", "state_class", "unit_of_measurement", "expire_after", "force_update", "suggested_display_precision", "last_reset_value_template", "options"},
		"image":         {"image_topic", "url_topic", "content_type", "image_encoding", "url_template"},
	}
	originKeys         = []string{"name", "sw_version", "support_url"}
	deviceKeys         = []string{"identifiers", "connections", "name", "manufacturer", "model", "model_id", "sw_version", "hw_version", "serial_number", "suggested_area", "via_device", "configuration_url"}
	binaryDevClasses   = []string{"occupancy", "motion", "presence", "connectivity", "problem"}
	sensorStateClasses = []string{"measurement", "total", "total_increasing"}
	discoveryTopicRe   = regexp.MustCompile(`^([^/#+]+)/(binary_sensor|sensor|image)/([a-zA-Z0-9_-]+/)?([a-zA-Z0-9_-]+)/config$`)
)

// checkDiscovery checks every discovery config under prefix in msgs (the
// retained messages a fresh subscriber got) against Home Assistant's MQTT
// discovery rules, and checks the topics each config names hold retained
// values of the right form. It returns the discovery topics, sorted.
func checkDiscovery(t testing.TB, prefix string, msgs map[string][]byte) []string {
	t.Helper()
	var topics []string
	ids := map[string]string{}
	for topic, payload := range msgs {
		if !strings.HasPrefix(topic, prefix+"/") {
			continue
		}
		topics = append(topics, topic)
		m := discoveryTopicRe.FindStringSubmatch(topic)
		if m == nil || m[1] != prefix {
			t.Errorf("%s: not <prefix>/<component>/[<node_id>/]<object_id>/config with ids of [a-zA-Z0-9_-]", topic)
			continue
		}
		component := m[2]
		var cfg map[string]any
		if err := json.Unmarshal(payload, &cfg); err != nil {
			t.Errorf("%s: payload is not a JSON object: %v", topic, err)
			continue
		}
		allowed := append(slices.Clone(commonKeys), componentKeys[component]...)
		for k := range cfg {
			if !slices.Contains(allowed, k) {
				t.Errorf("%s: key %q is not a %s discovery option", topic, k, component)
			}
		}
		str := func(k string) string { s, _ := cfg[k].(string); return s }
		if str("name") == "" {
			t.Errorf("%s: no name", topic)
		}
		uid := str("unique_id")
		if uid == "" {
			t.Errorf("%s: no unique_id (Home Assistant needs it for the device registry)", topic)
		} else if other, dup := ids[uid]; dup {
			t.Errorf("%s: unique_id %q also used by %s", topic, uid, other)
		}
		ids[uid] = topic
		dev, _ := cfg["device"].(map[string]any)
		if dev == nil {
			t.Errorf("%s: no device block", topic)
		} else {
			for k := range dev {
				if !slices.Contains(deviceKeys, k) {
					t.Errorf("%s: device key %q is not a device option", topic, k)
				}
			}
			idl, _ := dev["identifiers"].([]any)
			if len(idl) == 0 {
				t.Errorf("%s: device.identifiers must be a non-empty list", topic)
			}
			if n, _ := dev["name"].(string); n == "" {
				t.Errorf("%s: device.name is empty", topic)
			}
		}
		org, _ := cfg["origin"].(map[string]any)
		if n, _ := org["name"].(string); org != nil && n == "" {
			t.Errorf("%s: origin without a name", topic)
		}
		for k := range org {
			if !slices.Contains(originKeys, k) {
				t.Errorf("%s: origin key %q is not an origin option", topic, k)
			}
		}
		av := str("availability_topic")
		if v, ok := msgs[av]; !ok || (string(v) != str("payload_available") && string(v) != str("payload_not_available")) {
			t.Errorf("%s: availability_topic %q holds %q, want %q or %q retained", topic, av, v, str("payload_available"), str("payload_not_available"))
		}
		if q, ok := cfg["qos"].(float64); ok && (q < 0 || q > 2) {
			t.Errorf("%s: qos %v", topic, q)
		}
		switch component {
		case "binary_sensor", "sensor":
			st := str("state_topic")
			v, ok := msgs[st]
			if st == "" || !ok {
				t.Errorf("%s: state_topic %q has no retained value", topic, st)
				break
			}
			if strings.ContainsAny(st, "+#") {
				t.Errorf("%s: state_topic %q has a wildcard", topic, st)
			}
			if _, err := strconv.Atoi(string(v)); err != nil {
				t.Errorf("%s: state %q on %s is not a count", topic, v, st)
			}
			if component == "binary_sensor" {
				if !slices.Contains(binaryDevClasses, str("device_class")) {
					t.Errorf("%s: device_class %q", topic, str("device_class"))
				}
				vt := str("value_template")
				if !strings.Contains(vt, "'"+str("payload_on")+"'") || !strings.Contains(vt, "'"+str("payload_off")+"'") {
					t.Errorf("%s: value_template %q does not yield payload_on/payload_off", topic, vt)
				}
			} else if sc := str("state_class"); sc != "" && !slices.Contains(sensorStateClasses, sc) {
				t.Errorf("%s: state_class %q", topic, sc)
			}
		case "image":
			it, ut := str("image_topic"), str("url_topic")
			if (it == "") == (ut == "") {
				t.Errorf("%s: exactly one of image_topic and url_topic must be set", topic)
			}
			if !strings.HasPrefix(str("content_type"), "image/") {
				t.Errorf("%s: content_type %q", topic, str("content_type"))
			}
			if v, ok := msgs[it]; ok && (len(v) < 3 || v[0] != 0xFF || v[1] != 0xD8) {
				t.Errorf("%s: %s does not hold a JPEG", topic, it)
			}
		}
	}
	slices.Sort(topics)
	return topics
}

// proxy forwards TCP connections to target until cut, so a test can drop
// the publisher's connection without a DISCONNECT, as a network failure does.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	// refusing closes new connections at once (see cutAndRefuse).
	refusing bool
}

func newProxy(t testing.TB, target string) *proxy { return newProxyOn(t, "127.0.0.1:0", target) }

// newProxyOn is newProxy listening on listen.
func newProxyOn(t testing.TB, listen, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	t.Cleanup(func() { l.Close(); p.cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			refusing := p.refusing
			p.mu.Unlock()
			if refusing {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

// cut closes every forwarded connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// cutAndRefuse is cut, then refusing new connections until accept: a
// network that stays down for a while.
func (p *proxy) cutAndRefuse() {
	p.mu.Lock()
	p.refusing = true
	p.mu.Unlock()
	p.cut()
}

// accept ends cutAndRefuse.
func (p *proxy) accept() {
	p.mu.Lock()
	p.refusing = false
	p.mu.Unlock()
}
