// Package natsink publishes Osprey events to NATS, losslessly.
//
// Subjects are <prefix>.<pipeline>.<stream>.<type> (event.Event.Subject); the
// body is the event's JSON (event/schema.json) and the Nats-Msg-Id header is
// the event ID, so a JetStream stream drops replays as duplicates.
//
// Write only appends the frame's events to a spool (on disk, or a bounded
// memory queue when spool.dir is empty) and returns; a publisher goroutine
// drains the spool in order. With JetStream it waits for each PubAck, with
// core NATS for a flush round trip, before acknowledging the records in the
// spool. While the server is unreachable the publisher retries with back-off
// and events accumulate in the spool (bounded: the oldest are dropped and
// counted when full). A restart with the same spool directory replays what
// was not acknowledged. See docs/nats.md.
package natsink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/osprey-vision/osprey/internal/drain"
	"github.com/osprey-vision/osprey/sink/hass"
	"github.com/osprey-vision/osprey/sink/spool"
	"github.com/osprey-vision/osprey/stages"
)

// ErrClosed is returned by Write and Connect after Close.
var ErrClosed = errors.New("natsink: sink closed")

const (
	maxWindow  = 256 // most events in flight awaiting acks
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Sink publishes events to NATS. Build it with New; the runner calls Connect,
// Write (one goroutine) and Close. Stats and control may be used concurrently.
type Sink struct {
	cfg Config
	log *slog.Logger
	q   queue

	mu       sync.Mutex
	srv      *server.Server // embedded server, if any
	nc       *nats.Conn
	js       jetstream.JetStream
	ctrl     Controller
	ctrlSubs []*nats.Subscription
	started  bool
	closed   bool

	streamReady atomic.Bool
	accepted    atomic.Uint64
	published   atomic.Uint64
	duplicates  atomic.Uint64
	detPub      atomic.Uint64
	detDropped  atomic.Uint64
	snapPut     atomic.Uint64
	snapSkipped atomic.Uint64
	objStore    jetstream.ObjectStore // snapshot bucket, set by the publisher
	outage      atomic.Bool
	state       *hass.Publisher // MQTT state and discovery, with mqtt set
	mqttAddr    string          // the embedded server's MQTT listener

	stop  chan struct{} // closed to stop the publisher at once
	drain chan struct{} // closed when Close starts: deliver what is left, then exit
	done  chan struct{} // closed when the publisher has exited
}

var _ stages.EventSink = (*Sink)(nil)

// New validates cfg and opens the spool (replaying what a previous run left
// unacknowledged once connected). It does not contact the server: Connect does.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{cfg: cfg, log: log, stop: make(chan struct{}), drain: make(chan struct{}), done: make(chan struct{})}
	if cfg.Spool.Dir == "" {
		s.q = newMemQueue(cfg.Spool.MaxBytes)
		return s, nil
	}
	pol, _ := spool.ParseSyncPolicy(cfg.Spool.Fsync)
	sp, err := spool.Open(cfg.Spool.Dir, spool.Options{MaxBytes: cfg.Spool.MaxBytes, Sync: pol})
	if err != nil {
		return nil, fmt.Errorf("natsink: %w", err)
	}
	if n := sp.Pending(); n > 0 {
		log.Warn("natsink: replaying events spooled by a previous run", "events", n, "spool", cfg.Spool.Dir)
	}
	s.q = sp
	return s, nil
}

// EventsOnly reports that the sink wants only frames with events, unless
// per-frame detections are on (then it wants every frame that ran the detector).
func (s *Sink) EventsOnly() bool { return !s.cfg.Detections }

// ClientURL returns the URL consumers connect to: the configured URL
// (credentials redacted) or the embedded server's address once connected.
func (s *Sink) ClientURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return s.srv.ClientURL()
	}
	return redact(s.cfg.URL)
}

// Connect starts the embedded server when url is empty, connects, checks or
// creates the JetStream stream and starts the publisher. Wrong credentials,
// a TLS failure or a missing stream return an error naming the (redacted)
// URL: retrying cannot help. An unreachable server is not an error: Connect
// logs a warning and returns nil, events spool and the connection is retried
// in the background. Calling Connect again after success does nothing.
func (s *Sink) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return nil
	}
	url := s.cfg.URL
	if url == "" {
		listen := ""
		if s.cfg.MQTT != nil {
			listen = s.cfg.MQTT.Listen
		}
		srv, mqttAddr, err := startEmbedded(s.cfg.Embedded, listen, s.log)
		if err != nil {
			return err
		}
		s.srv, s.mqttAddr = srv, mqttAddr
		url = srv.ClientURL()
		s.log.Info("natsink: embedded nats-server listening", "url", url, "mqtt", mqttAddr, "store_dir", s.cfg.Embedded.StoreDir)
	}
	opts, err := s.options()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		if !transient(err) {
			return fmt.Errorf("natsink: connect to %s: %w: check the sink's credentials and tls settings", redact(url), err)
		}
		s.log.Warn("natsink: server unreachable, spooling events until it is back", "url", redact(url), "err", err)
		s.outage.Store(true)
		nc, err = nats.Connect(url, append(opts, nats.RetryOnFailedConnect(true))...)
		if err != nil {
			return fmt.Errorf("natsink: connect to %s: %w", redact(url), err)
		}
	}
	s.nc = nc
	if s.cfg.JetStream != nil {
		// The async timeout clears futures whose ack was lost in an outage,
		// so they never fill the pending window and stall publishing.
		jsOpts := []jetstream.JetStreamOpt{jetstream.WithPublishAsyncMaxPending(maxWindow),
			jetstream.WithPublishAsyncTimeout(s.cfg.PublishTimeout)}
		var js jetstream.JetStream
		if d := s.cfg.JetStream.Domain; d != "" {
			js, err = jetstream.NewWithDomain(nc, d, jsOpts...)
		} else {
			js, err = jetstream.New(nc, jsOpts...)
		}
		if err != nil {
			nc.Close()
			return fmt.Errorf("natsink: jetstream on %s: %w", redact(url), err)
		}
		s.js = js
		if nc.IsConnected() {
			if err := s.ensureStream(ctx); err != nil {
				if !jsUnavailable(err) {
					nc.Close()
					return err
				}
				// A cluster that is starting (electing its JetStream
				// leader) answers nothing for seconds: start anyway, like
				// with a server that is down. Events spool; the publisher
				// creates or checks the stream before its first publish.
				s.log.Warn("natsink: jetstream not answering yet, spooling events until it does (a cluster electing its leader; or a server without jetstream enabled)", "err", err)
				s.outage.Store(true)
			}
		}
	}
	if err := s.subscribeControlLocked(); err != nil {
		nc.Close()
		return err
	}
	if err := s.startStateLocked(ctx); err != nil {
		nc.Close()
		return err
	}
	s.started = true
	go s.publish()
	return nil
}

// startStateLocked connects the MQTT state publisher, with mqtt set: to
// mqtt.broker, or else to the embedded server's listener.
func (s *Sink) startStateLocked(ctx context.Context) error {
	mc := s.cfg.MQTT
	if mc == nil {
		return nil
	}
	broker := mc.Broker
	if broker == "" {
		broker = s.mqttAddr
	}
	prefix := ""
	if *mc.Discovery {
		prefix = mc.DiscoveryPrefix
	}
	p, err := hass.New(hass.Config{
		Broker: broker, User: mc.User, Password: mc.Password, Prefix: s.cfg.SubjectPrefix, Pipeline: s.cfg.Pipeline,
		DiscoveryPrefix: prefix, Snapshots: s.cfg.Snapshots != nil, Streams: s.cfg.Streams,
		ConnectTimeout: s.cfg.ConnectTimeout, PublishTimeout: s.cfg.PublishTimeout,
	}, s.log)
	if err != nil {
		return fmt.Errorf("natsink: mqtt: %w", err)
	}
	if err := p.Connect(ctx); err != nil {
		_ = p.Close(ctx)
		return fmt.Errorf("natsink: mqtt: %w", err)
	}
	s.state = p
	return nil
}

// MQTTAddr returns the embedded server's MQTT listener address (host:port)
// once connected; "" without one.
func (s *Sink) MQTTAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mqttAddr
}

// StateStats returns the MQTT state publisher's counters; ok is false
// without mqtt or before Connect.
func (s *Sink) StateStats() (st hass.Stats, ok bool) {
	s.mu.Lock()
	p := s.state
	s.mu.Unlock()
	if p == nil {
		return hass.Stats{}, false
	}
	return p.Stats(), true
}

func (s *Sink) options() ([]nats.Option, error) {
	opts, err := clientOptions(s.cfg)
	if err != nil {
		return nil, err
	}
	return append(opts,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		// No client-side buffer while reconnecting: a publish fails at once
		// and the event stays in our spool, which is bounded and durable.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil && !s.outage.Swap(true) {
				s.log.Warn("natsink: disconnected, spooling events", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Info("natsink: reconnected", "url", redact(nc.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			s.log.Warn("natsink: nats error", "err", err)
		}),
	), nil
}

// clientOptions are the name, timeout, credentials and TLS options shared by
// the sink and consumers (Dial).
func clientOptions(c Config) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name("osprey " + c.Pipeline), nats.Timeout(c.ConnectTimeout)}
	switch {
	case c.Credentials != "":
		opts = append(opts, nats.UserCredentials(c.Credentials))
	case c.NKeySeed != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeed)
		if err != nil {
			return nil, fmt.Errorf("natsink: nkey_seed %s: %w", c.NKeySeed, err)
		}
		opts = append(opts, o)
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	}
	if c.TLS.CA != "" {
		opts = append(opts, nats.RootCAs(c.TLS.CA))
	}
	if c.TLS.Cert != "" {
		opts = append(opts, nats.ClientCert(c.TLS.Cert, c.TLS.Key))
	}
	return opts, nil
}

// transient reports whether a connect error may go away by itself (the server
// is down or unreachable) rather than needing a config change.
func transient(err error) bool {
	var nerr net.Error
	var certErr *tls.CertificateVerificationError
	var uaErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrSecureConnRequired),
		errors.Is(err, nats.ErrSecureConnWanted), errors.As(err, &certErr),
		errors.As(err, &uaErr), errors.As(err, &hostErr),
		strings.Contains(err.Error(), "tls:"), strings.Contains(err.Error(), "tls error"), strings.Contains(err.Error(), "x509:"),
		strings.Contains(strings.ToLower(err.Error()), "authorization"):
		return false
	case errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrTimeout), errors.As(err, &nerr):
		return true
	}
	return false
}

// jsUnavailable reports whether a JetStream API error may go away by
// itself: no answer (a cluster electing its meta leader), no responders, or
// the server's "temporarily unavailable" and "no suitable peers" (a
// replicated stream before its peers joined). A wrong configuration or a
// missing stream is not.
func jsUnavailable(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10008, 10005: // JSClusterNotAvailErr, JSClusterNoPeersErr
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// ensureStream creates/updates the stream (jetstream.create) or checks that
// it exists.
func (s *Sink) ensureStream(ctx context.Context) error {
	jc := s.cfg.JetStream
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	if jc.Create {
		_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: jc.Stream, Subjects: jc.Subjects, MaxAge: jc.MaxAge, Replicas: jc.Replicas,
			Duplicates: jc.DuplicateWindow, Storage: jetstream.FileStorage,
		})
		if err != nil {
			return fmt.Errorf("natsink: create jetstream stream %s on %s: %w", jc.Stream, redact(s.clientURLLocked()), err)
		}
	} else if _, err := s.js.Stream(ctx, jc.Stream); err != nil {
		return fmt.Errorf("natsink: jetstream stream %s on %s: %w: create it or set jetstream.create: true", jc.Stream, redact(s.clientURLLocked()), err)
	}
	s.streamReady.Store(true)
	return nil
}

// clientURLLocked is ClientURL, unredacted, for callers holding s.mu.
func (s *Sink) clientURLLocked() string {
	if s.srv != nil {
		return s.srv.ClientURL()
	}
	return s.cfg.URL
}

// Write appends f's events to the spool and returns once they are stored
// there (durable per spool.fsync); delivery happens in the background. With
// detections on it also publishes f's detections, dropping them when
// disconnected. It may be called before Connect (events wait in the spool).
func (s *Sink) Write(_ context.Context, f *stages.Frame) error {
	if s.isClosed() {
		return ErrClosed
	}
	if len(f.Events) > 0 {
		recs := make([][]byte, 0, len(f.Events))
		for _, e := range f.Events {
			if e.Pipeline == "" {
				e.Pipeline = s.cfg.Pipeline
			}
			var r record
			if s.wantSnapshot(e.Type) {
				if jpg, err := encodeSnapshot(f, e.Box, s.cfg.Snapshots); err != nil {
					s.snapSkipped.Add(1)
					s.log.Warn("natsink: no snapshot for event", "id", e.ID, "err", err)
				} else {
					r.snapKey, r.jpeg = snapshotKey(e), jpg
					e.Snapshot = s.cfg.Snapshots.Bucket + "/" + r.snapKey
				}
			}
			body, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("natsink: encode event %s: %w", e.ID, err)
			}
			if st := s.statePublisher(); st != nil {
				st.Observe(e, r.jpeg)
			}
			r.subject, r.id, r.body = e.Subject(s.cfg.SubjectPrefix), e.ID, body
			recs = append(recs, encodeRecord(r))
		}
		if _, err := s.q.Append(recs...); err != nil {
			return fmt.Errorf("natsink: spool %d events: %w", len(recs), err)
		}
		s.accepted.Add(uint64(len(recs)))
	}
	if s.cfg.Detections && f.Inferred {
		s.publishDetections(f)
	}
	return nil
}

func (s *Sink) statePublisher() *hass.Publisher {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Sink) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Sink) conn() *nats.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nc
}

// publish is the publisher goroutine: it drains the queue in order.
func (s *Sink) publish() {
	defer close(s.done)
	window, backoff := 1, minBackoff
	draining := false
	for {
		recs, err := s.q.Read(window)
		if err != nil {
			s.log.Error("natsink: read spool", "err", err)
		}
		if len(recs) == 0 {
			if draining {
				return
			}
			select {
			case <-s.stop:
				return
			case <-s.drain:
				draining = true
			case <-s.q.Ready():
			}
			continue
		}
		n, err := s.deliver(recs)
		if n > 0 {
			// Count first so Published never lags behind Pending.
			s.published.Add(uint64(n))
			if aerr := s.q.Ack(recs[n-1].Seq); aerr != nil {
				s.log.Error("natsink: persist ack", "err", aerr)
			}
		}
		if err == nil {
			if s.outage.Swap(false) {
				s.log.Info("natsink: delivering again", "pending", s.q.Pending())
			}
			// Slow start: after an outage, send one event at a time until
			// acks flow, so a partly failed window cannot reorder events.
			window, backoff = min(window*2, maxWindow), minBackoff
			continue
		}
		if !s.outage.Swap(true) {
			s.log.Warn("natsink: publish failed, spooling and retrying", "err", err, "pending", s.q.Pending())
		}
		s.q.Rewind()
		window = 1
		select {
		case <-s.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// deliver publishes recs in order and returns how many, from the first, the
// server acknowledged.
func (s *Sink) deliver(recs []spool.Record) (int, error) {
	nc := s.conn()
	if !nc.IsConnected() {
		return 0, nats.ErrConnectionReconnecting
	}
	msgs := make([]*nats.Msg, len(recs))
	decoded := make([]record, len(recs))
	for i, r := range recs {
		d, err := decodeRecord(r.Data)
		if err != nil {
			return i, err
		}
		m := nats.NewMsg(d.subject)
		m.Data = d.body
		m.Header.Set(nats.MsgIdHdr, d.id)
		msgs[i], decoded[i] = m, d
	}
	if s.js == nil {
		for i, m := range msgs {
			if err := nc.PublishMsg(m); err != nil {
				return 0, fmt.Errorf("publish %s: %w", msgs[i].Subject, err)
			}
		}
		if err := nc.FlushTimeout(s.cfg.PublishTimeout); err != nil {
			return 0, fmt.Errorf("flush: %w", err)
		}
		return len(msgs), nil
	}
	if !s.streamReady.Load() {
		if err := s.ensureStream(context.Background()); err != nil {
			return 0, err
		}
	}
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	var perr error
	for i, m := range msgs {
		if d := decoded[i]; d.snapKey != "" {
			// The picture is stored before the event that points to it.
			if err := s.putSnapshot(d.snapKey, d.jpeg); err != nil {
				perr = err
				break
			}
		}
		f, err := s.js.PublishMsgAsync(m)
		if err != nil {
			perr = fmt.Errorf("publish %s: %w", m.Subject, err)
			break
		}
		futs = append(futs, f)
	}
	timeout := time.NewTimer(s.cfg.PublishTimeout)
	defer timeout.Stop()
	for i, f := range futs {
		select {
		case ack := <-f.Ok():
			if ack != nil && ack.Duplicate {
				s.duplicates.Add(1)
			}
		case err := <-f.Err():
			return i, fmt.Errorf("jetstream ack for %s: %w", msgs[i].Subject, err)
		case <-timeout.C:
			return i, fmt.Errorf("jetstream ack for %s: %w", msgs[i].Subject, nats.ErrTimeout)
		}
	}
	return len(futs), perr
}

// Stats is a snapshot of the sink's counters.
type Stats struct {
	// URL is where consumers connect (credentials redacted).
	URL string `json:"url"`
	// Connected is true while the client is connected.
	Connected bool `json:"connected"`
	// Accepted counts events Write stored in the spool since New (durable
	// per spool.fsync from then on).
	Accepted uint64 `json:"accepted"`
	// Published counts events the server acknowledged since New.
	Published uint64 `json:"published"`
	// Duplicates counts the acknowledged events JetStream recognised as
	// already stored (by Nats-Msg-Id): replays after a crash whose ack was
	// lost. They are in Published too, and stored once.
	Duplicates uint64 `json:"duplicates"`
	// Pending counts events spooled and not yet acknowledged.
	Pending int `json:"pending"`
	// Dropped counts events dropped because the spool was full.
	Dropped uint64 `json:"dropped"`
	// DetectionsPublished and DetectionsDropped count detection messages.
	DetectionsPublished uint64 `json:"detections_published"`
	DetectionsDropped   uint64 `json:"detections_dropped"`
	// SnapshotsStored counts snapshots put in the object store; SnapshotsSkipped
	// events that wanted one but had no usable image.
	SnapshotsStored  uint64 `json:"snapshots_stored"`
	SnapshotsSkipped uint64 `json:"snapshots_skipped"`
	// MQTT is the state publisher's counters, with mqtt set.
	MQTT *hass.Stats `json:"mqtt,omitempty"`
}

// Stats returns the sink's counters (for metrics and the control stats reply).
func (s *Sink) Stats() Stats {
	st := Stats{URL: s.ClientURL(), Accepted: s.accepted.Load(), Published: s.published.Load(), Duplicates: s.duplicates.Load(), Pending: s.q.Pending(),
		Dropped: s.q.DroppedTotal(), DetectionsPublished: s.detPub.Load(), DetectionsDropped: s.detDropped.Load(),
		SnapshotsStored: s.snapPut.Load(), SnapshotsSkipped: s.snapSkipped.Load()}
	if nc := s.conn(); nc != nil {
		st.Connected = nc.IsConnected()
	}
	if ms, ok := s.StateStats(); ok {
		st.MQTT = &ms
	}
	return st
}

// Close delivers what is spooled for at most close_timeout (or until ctx is
// done), then stops the publisher, closes the connection, the spool and the
// embedded server. Events still spooled are replayed on the next start (with
// a memory queue they are lost, and logged). Safe to call twice.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()

	if started {
		drain.Bounded(ctx, s.drain, s.done, s.cfg.CloseTimeout, func() { close(s.stop) })
	}
	if n := s.q.Pending(); n > 0 {
		if s.cfg.Spool.Dir != "" {
			s.log.Warn("natsink: closing with undelivered events; they stay spooled for the next start", "events", n, "spool", s.cfg.Spool.Dir)
		} else {
			s.log.Error("natsink: closing with undelivered events in the memory queue; they are lost (set spool.dir to keep them)", "events", n)
		}
	}
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	if state != nil {
		// Before the embedded server stops, so "offline" reaches it.
		_ = state.Close(ctx)
	}
	s.mu.Lock()
	for _, sub := range s.ctrlSubs {
		_ = sub.Unsubscribe()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	srv := s.srv
	s.mu.Unlock()
	err := s.q.Close()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	if err != nil {
		return fmt.Errorf("natsink: close spool: %w", err)
	}
	return nil
}
