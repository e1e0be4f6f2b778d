// Package hass keeps an Osprey pipeline's state on an MQTT broker for Home
// Assistant: retained zone occupancy, line counts and the latest snapshot per
// stream, Home Assistant discovery configs for them, and an availability
// topic that reads "online" while the pipeline runs and "offline" after it
// stops or its connection drops (the MQTT will).
//
// State is the latest value, not a log: a topic that changes several times
// while the broker is away is published once, with its newest value, when
// the connection is back (and every topic again after each reconnect, so a
// broker that lost its retained store is refilled). The events themselves
// reach MQTT through nats-server's MQTT listener (sink/natsink), not here.
// See docs/mqtt.md for the topics.
package hass

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/osprey-vision/osprey/event"
)

// ErrClosed is returned by Connect after Close.
var ErrClosed = errors.New("hass: publisher closed")

// MaxSnapshotBytes is the largest snapshot published: nats-server's default
// max_payload is 1 MiB, and a larger MQTT publish closes the connection.
const MaxSnapshotBytes = 900 << 10

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Stream is one stream's zones and lines, known before the first event so
// their entities exist (at zero) from the start.
type Stream struct {
	ID    string
	Zones []string
	Lines []string
}

// Config configures a Publisher.
type Config struct {
	// Broker is the MQTT address, host:port or tcp://host:port.
	Broker string
	// User and Password authenticate to the broker (optional).
	User     string
	Password string
	// ClientID is the MQTT client ID (default osprey-<pipeline>).
	ClientID string
	// Prefix is the first topic level: the NATS subject prefix, so state
	// sits next to the events (<prefix>/<pipeline>/...).
	Prefix string
	// Pipeline is the pipeline's name.
	Pipeline string
	// DiscoveryPrefix is Home Assistant's discovery prefix (usually
	// homeassistant); empty publishes no discovery configs.
	DiscoveryPrefix string
	// Snapshots adds an image entity per stream for the latest snapshot.
	Snapshots bool
	// Streams returns the streams with their zones and lines; called once
	// by Connect. Zones and lines first seen in an event are added then.
	Streams func() []Stream
	// ConnectTimeout bounds one connection attempt (default 5s).
	ConnectTimeout time.Duration
	// PublishTimeout bounds the wait for a PUBACK (default 5s).
	PublishTimeout time.Duration
}

// rank orders publishes within a flush: configs before the state they point
// to, state before "online".
type rank int

const (
	rankDiscovery rank = iota
	rankState
	rankAvailability
	ranks
)

// retained is the latest value of one topic.
type retained struct {
	rank    rank
	payload []byte
	dirty   bool
	// inflight counts publishes of this topic sent and not yet acknowledged.
	inflight int
}

// Publisher publishes state and discovery configs, retained, at QoS 1.
// Observe may be called from any goroutine, before or after Connect.
type Publisher struct {
	cfg Config
	log *slog.Logger
	t   topics
	d   discoverer
	c   mqtt.Client

	mu        sync.Mutex
	topics    map[string]*retained
	order     [ranks][]string // topics in first-set order, per rank
	zones     map[[2]string]bool
	lines     map[[2]string]bool
	streams   map[string]bool
	started   bool
	closed    bool
	bigWarned bool

	published atomic.Uint64
	wake      chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup // run and retryConnect
}

// New checks cfg and builds a publisher; it does not contact the broker.
func New(cfg Config, log *slog.Logger) (*Publisher, error) {
	addr, err := BrokerURL(cfg.Broker)
	if err != nil {
		return nil, err
	}
	if cfg.Pipeline == "" || cfg.Prefix == "" {
		return nil, errors.New("hass: pipeline and prefix must be set")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "osprey-" + idToken(cfg.Pipeline)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := newTopics(cfg.Prefix, cfg.Pipeline)
	p := &Publisher{
		cfg: cfg, log: log, t: t, d: discoverer{prefix: cfg.DiscoveryPrefix, pipeline: cfg.Pipeline, t: t},
		topics: map[string]*retained{}, zones: map[[2]string]bool{}, lines: map[[2]string]bool{}, streams: map[string]bool{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	opts := mqtt.NewClientOptions().AddBroker(addr).SetClientID(cfg.ClientID).
		SetUsername(cfg.User).SetPassword(cfg.Password).SetCleanSession(true).
		SetProtocolVersion(4). // 3.1.1, what nats-server speaks; no fallback to 3.1

		SetConnectTimeout(cfg.ConnectTimeout).SetWriteTimeout(cfg.PublishTimeout).
		SetAutoReconnect(true).SetMaxReconnectInterval(maxBackoff).
		// The broker publishes "offline" (retained) if the connection drops
		// without a DISCONNECT: a crash, a network cut.
		SetWill(t.availability(), offline, 1, true).
		SetOnConnectHandler(func(mqtt.Client) { p.resend() }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			p.log.Warn("hass: lost the MQTT connection, reconnecting", "broker", cfg.Broker, "err", err)
		})
	p.c = mqtt.NewClient(opts)
	return p, nil
}

// BrokerURL checks an MQTT address (host:port or tcp://host:port) and
// returns it as a tcp:// URL.
func BrokerURL(addr string) (string, error) {
	hp := strings.TrimPrefix(addr, "tcp://")
	if strings.Contains(hp, "://") {
		return "", fmt.Errorf("hass: %q: use host:port or tcp://host:port", addr)
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", fmt.Errorf("hass: %q is not host:port: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("hass: %q: port %q is not 1-65535", addr, port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return "tcp://" + net.JoinHostPort(host, port), nil
}

// Connect publishes the discovery configs and initial state of the known
// streams and connects. A refused connection (bad user or password, not
// authorised) is an error; an unreachable broker is not: Connect logs a
// warning and keeps trying in the background while state accumulates.
func (p *Publisher) Connect(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.started {
		p.mu.Unlock()
		return nil
	}
	p.started = true
	p.setLocked(p.t.availability(), rankAvailability, []byte(online))
	if p.cfg.Streams != nil {
		for _, s := range p.cfg.Streams() {
			p.streamLocked(s.ID)
			for _, z := range s.Zones {
				p.zoneLocked(s.ID, z)
			}
			for _, l := range s.Lines {
				p.lineLocked(s.ID, l)
			}
		}
	}
	p.mu.Unlock()

	p.wg.Go(p.run)
	tok := p.c.Connect()
	var err error
	select {
	case <-tok.Done():
		err = tok.Error()
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(p.cfg.ConnectTimeout + time.Second):
		err = errors.New("connect timed out")
	}
	if err == nil {
		return nil
	}
	if refused(err) {
		close(p.stop)
		p.wg.Wait()
		p.mu.Lock()
		p.closed = true // nothing to publish on Close
		p.mu.Unlock()
		return fmt.Errorf("hass: connect to MQTT broker %s: %w: check sinks.nats.mqtt.user and password; nats-server's MQTT also needs JetStream enabled for the account", p.cfg.Broker, err)
	}
	p.log.Warn("hass: MQTT broker unreachable, state will be published once it is back", "broker", p.cfg.Broker, "err", err)
	p.wg.Go(p.retryConnect)
	return nil
}

// refused reports whether the broker refused CONNECT, which a retry cannot
// fix: a refusal code, or the connection closed during the handshake, which
// is how nats-server answers a wrong password or an account without
// JetStream.
func refused(err error) bool {
	if errors.Is(err, io.EOF) {
		return true
	}
	for _, e := range []error{packets.ErrorRefusedBadUsernameOrPassword, packets.ErrorRefusedNotAuthorised,
		packets.ErrorRefusedIDRejected, packets.ErrorRefusedBadProtocolVersion} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// retryConnect repeats the first connection attempt until it succeeds or the
// publisher closes; afterwards the client's auto-reconnect takes over.
func (p *Publisher) retryConnect() {
	backoff := minBackoff
	for {
		select {
		case <-p.stop:
			return
		case <-time.After(backoff):
		}
		tok := p.c.Connect()
		select {
		case <-p.stop:
			return
		case <-tok.Done():
		}
		if tok.Error() == nil {
			p.log.Info("hass: connected to the MQTT broker", "broker", p.cfg.Broker)
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// Observe updates the state an event changes: a zone's occupancy, a line's
// count, the stream's latest snapshot (jpeg, when not nil). It never blocks
// on the broker.
func (p *Publisher) Observe(e event.Event, jpeg []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.streamLocked(e.Stream)
	switch e.Type {
	case event.ZoneEntered, event.ZoneLeft, event.Loitering:
		if e.Zone != "" && e.Occupancy != nil {
			p.zoneLocked(e.Stream, e.Zone)
			p.setLocked(p.t.zoneOccupancy(e.Stream, e.Zone), rankState, []byte(strconv.Itoa(*e.Occupancy)))
		}
	case event.LineCrossed:
		if e.Line != "" && (e.Direction == "in" || e.Direction == "out") {
			p.lineLocked(e.Stream, e.Line)
			p.setLocked(p.t.lineCount(e.Stream, e.Line, e.Direction), rankState, []byte(strconv.Itoa(e.Count)))
		}
	}
	if jpeg != nil && p.cfg.Snapshots {
		if len(jpeg) > MaxSnapshotBytes {
			if !p.bigWarned {
				p.bigWarned = true
				p.log.Warn("hass: snapshot too large for MQTT, not published (set sinks.nats.snapshots.crop or a lower quality)",
					"bytes", len(jpeg), "max", MaxSnapshotBytes)
			}
			return
		}
		p.setLocked(p.t.snapshot(e.Stream), rankState, jpeg)
	}
}

// streamLocked registers a stream's snapshot entity on first sight.
func (p *Publisher) streamLocked(stream string) {
	if p.streams[stream] {
		return
	}
	p.streams[stream] = true
	if p.cfg.Snapshots && p.cfg.DiscoveryPrefix != "" {
		m := p.d.snapshot(stream)
		p.setLocked(m.topic, rankDiscovery, m.payload)
	}
}

// zoneLocked registers a zone: its discovery configs and an occupancy of 0.
func (p *Publisher) zoneLocked(stream, zone string) {
	if p.zones[[2]string{stream, zone}] {
		return
	}
	p.zones[[2]string{stream, zone}] = true
	if p.cfg.DiscoveryPrefix != "" {
		for _, m := range p.d.zone(stream, zone) {
			p.setLocked(m.topic, rankDiscovery, m.payload)
		}
	}
	if _, ok := p.topics[p.t.zoneOccupancy(stream, zone)]; !ok {
		p.setLocked(p.t.zoneOccupancy(stream, zone), rankState, []byte("0"))
	}
}

// lineLocked registers a line: its discovery configs and counts of 0.
func (p *Publisher) lineLocked(stream, line string) {
	if p.lines[[2]string{stream, line}] {
		return
	}
	p.lines[[2]string{stream, line}] = true
	if p.cfg.DiscoveryPrefix != "" {
		for _, m := range p.d.line(stream, line) {
			p.setLocked(m.topic, rankDiscovery, m.payload)
		}
	}
	for _, dir := range []string{"in", "out"} {
		if _, ok := p.topics[p.t.lineCount(stream, line, dir)]; !ok {
			p.setLocked(p.t.lineCount(stream, line, dir), rankState, []byte("0"))
		}
	}
}

// setLocked records topic's latest payload and wakes the publisher.
func (p *Publisher) setLocked(topic string, r rank, payload []byte) {
	e, ok := p.topics[topic]
	if !ok {
		e = &retained{rank: r}
		p.topics[topic] = e
		p.order[r] = append(p.order[r], topic)
	}
	e.payload, e.dirty = payload, true
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// resend marks every topic for publishing: called on each (re)connect.
func (p *Publisher) resend() {
	p.mu.Lock()
	for _, e := range p.topics {
		e.dirty = true
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

type pending struct {
	topic   string
	payload []byte
}

// takeDirty returns the topics to publish, in rank order, and clears them.
func (p *Publisher) takeDirty() []pending {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []pending
	for _, topics := range p.order {
		for _, t := range topics {
			if e := p.topics[t]; e.dirty {
				e.dirty = false
				e.inflight++
				out = append(out, pending{t, e.payload})
			}
		}
	}
	return out
}

// markDirty puts unacknowledged publishes back to be sent again.
func (p *Publisher) markDirty(ps []pending) {
	p.mu.Lock()
	for _, x := range ps {
		e := p.topics[x.topic]
		e.dirty = true
		e.inflight--
	}
	p.mu.Unlock()
}

// acked records the broker's PUBACK for one publish of topic.
func (p *Publisher) acked(topic string) {
	p.mu.Lock()
	p.topics[topic].inflight--
	p.mu.Unlock()
}

// run publishes what changed whenever woken, retrying with back-off.
func (p *Publisher) run() {
	backoff := minBackoff
	for {
		select {
		case <-p.stop:
			return
		case <-p.wake:
		}
		for {
			err := p.flush(p.stop)
			if err == nil {
				backoff = minBackoff
				break
			}
			select {
			case <-p.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, maxBackoff)
		}
	}
}

// flush publishes every dirty topic (retained, QoS 1, pipelined) and waits
// for the PUBACKs, for at most the publish timeout or until abort closes.
// Topics not acknowledged stay dirty. While disconnected it does nothing:
// the reconnect handler wakes the publisher again.
func (p *Publisher) flush(abort <-chan struct{}) error {
	if !p.c.IsConnectionOpen() {
		return nil
	}
	batch := p.takeDirty()
	if len(batch) == 0 {
		return nil
	}
	toks := make([]mqtt.Token, len(batch))
	for i, x := range batch {
		toks[i] = p.c.Publish(x.topic, 1, true, x.payload)
	}
	deadline := time.After(p.cfg.PublishTimeout)
	for i, tok := range toks {
		var err error
		select {
		case <-tok.Done():
			err = tok.Error()
		case <-deadline:
			err = errors.New("no PUBACK in time")
		case <-abort:
			err = errors.New("stopped")
		}
		if err != nil {
			p.markDirty(batch[i:])
			return fmt.Errorf("hass: publish %s: %w", batch[i].topic, err)
		}
		p.acked(batch[i].topic)
		p.published.Add(1)
	}
	return nil
}

// Stats is a snapshot of the publisher's counters.
type Stats struct {
	// Connected is true while the MQTT connection is up.
	Connected bool `json:"connected"`
	// Published counts retained messages the broker acknowledged.
	Published uint64 `json:"published"`
	// Pending counts topics whose latest value is not yet acknowledged.
	Pending int `json:"pending"`
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	n := 0
	for _, e := range p.topics {
		if e.dirty || e.inflight > 0 {
			n++
		}
	}
	p.mu.Unlock()
	return Stats{Connected: p.c.IsConnectionOpen(), Published: p.published.Load(), Pending: n}
}

// Close publishes what is left and "offline" on the availability topic
// (bounded by the publish timeout, whatever ctx says), then disconnects. Discovery
// configs and state stay retained, so Home Assistant shows the entities as
// unavailable with their last values. Safe to call twice.
func (p *Publisher) Close(_ context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	started := p.started
	if started {
		p.setLocked(p.t.availability(), rankAvailability, []byte(offline))
	}
	p.mu.Unlock()
	if !started {
		return nil
	}
	close(p.stop)
	p.wg.Wait()
	var err error
	if p.c.IsConnectionOpen() {
		// Bounded by the publish timeout only: a pipeline stopping on a
		// cancelled context must still say "offline", since a clean
		// DISCONNECT suppresses the will.
		err = p.flush(nil)
	}
	p.c.Disconnect(250)
	if n := p.Stats().Pending; err != nil || n > 0 {
		// State is the latest value: the next run publishes its own.
		p.log.Warn("hass: closing with state not published", "topics", n, "broker", p.cfg.Broker, "err", err)
	}
	return nil
}
