// Package webhook POSTs Osprey events as JSON to HTTP endpoints, losslessly.
//
// Write appends the frame's events to an on-disk spool (package sink/spool,
// the same one the NATS sink uses) and returns once they are stored there. A
// delivery goroutine reads the spool in order and POSTs each event, one per
// request, to every configured URL. The spool has one cursor: an event is
// acknowledged (and the next one sent) only when every URL has answered it
// with a 2xx or a permanent failure, so each receiver sees the events in
// creation order, and an endpoint that is down holds the others back.
// Within one event, a URL that already answered 2xx is not asked again while
// the others are retried. Retries use exponential back-off with jitter and
// go on while the pipeline runs; 5xx, 408, 429, redirects (never followed),
// time-outs and network errors are retried. Any other 4xx is a permanent
// failure: it is logged, counted and skipped for that URL, so one event an
// endpoint rejects cannot block the queue. A restart with the same spool
// directory replays what was not acknowledged, so delivery is at-least-once:
// receivers de-duplicate by the Idempotency-Key (the event ID).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osprey-vision/osprey/internal/drain"
	"github.com/osprey-vision/osprey/sink/spool"
	"github.com/osprey-vision/osprey/stages"
)

// ErrClosed is returned by Write and Connect after Close.
var ErrClosed = errors.New("webhook: sink closed")

// Sink delivers events to webhooks. Build it with New; the runner calls
// Connect, Write (from one goroutine) and Close. Stats may be called at any
// time from any goroutine.
type Sink struct {
	cfg      Config
	pipeline string
	log      *slog.Logger
	q        *spool.Spool
	client   *http.Client
	tr       *http.Transport
	key      []byte // HMAC key; nil when unsigned
	targets  []*target
	metrics  *metrics // nil without a registerer

	mu      sync.Mutex
	started bool
	closed  bool

	delivered   atomic.Uint64
	lastDropped atomic.Uint64

	ctx   context.Context    // requests; cancelled when Close gives up draining
	abort context.CancelFunc // cancels ctx
	drain chan struct{}      // closed when Close starts: deliver what is left, then exit
	done  chan struct{}      // closed when the delivery goroutine has exited
}

// target is one URL and its counters.
type target struct {
	url      string
	redacted string
	failing  bool // the last attempt failed (delivery goroutine only)

	delivered, failed, retries atomic.Uint64
}

var _ stages.EventSink = (*Sink)(nil)

// New validates cfg, reads the HMAC key and opens the spool; undelivered
// events a previous run left there are sent once Connect is called. pipeline
// fills the pipeline field of events that lack it; resolve turns paths from
// the pipeline file into paths to open (nil: as written); log may be nil.
// New does not contact any endpoint.
func New(cfg Config, pipeline string, resolve func(string) string, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(resolve); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if resolve == nil {
		resolve = func(p string) string { return p }
	}
	s := &Sink{cfg: cfg, pipeline: pipeline, log: log, drain: make(chan struct{}), done: make(chan struct{})}
	if h := cfg.HMAC; h != nil {
		s.key = []byte(h.Secret)
		if h.SecretFile != "" {
			k, err := readSecret(h.SecretFile, resolve)
			if err != nil {
				return nil, fmt.Errorf("webhook: hmac.secret_file: %w", err)
			}
			s.key = k
		}
	}
	seen := map[string]bool{}
	for i, u := range cfg.URLs {
		r := redact(u)
		if seen[r] {
			// Two URLs that differ only in credentials or query values
			// still need distinct names in logs and metric labels.
			r = fmt.Sprintf("%s#%d", r, i)
		}
		seen[r] = true
		s.targets = append(s.targets, &target{url: u, redacted: r})
	}
	// An own transport, so Close can drop its idle connections; it keeps
	// the default's proxy-from-environment and dial settings.
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		s.tr = dt.Clone()
	} else {
		s.tr = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	s.tr.MaxIdleConnsPerHost = 2
	s.client = &http.Client{
		Transport: s.tr,
		// A redirected POST may lose its body or change method: report the
		// status instead (and retry) so the URL gets fixed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	pol, _ := spool.ParseSyncPolicy(cfg.Spool.Fsync)
	dir := resolve(cfg.Spool.Dir)
	sp, err := spool.Open(dir, spool.Options{MaxBytes: cfg.Spool.MaxBytes, Sync: pol})
	if err != nil {
		return nil, fmt.Errorf("webhook: spool.dir: %w", err)
	}
	s.q = sp
	s.lastDropped.Store(sp.DroppedTotal())
	if n := sp.Pending(); n > 0 {
		log.Warn("webhook: replaying events spooled by a previous run", "events", n, "spool", dir)
	}
	s.ctx, s.abort = context.WithCancel(context.Background())
	return s, nil
}

// EventsOnly reports that the sink wants only frames that carry events.
func (s *Sink) EventsOnly() bool { return true }

// Connect starts the delivery goroutine. Endpoints are not contacted here:
// one that is unreachable is retried in the background while events wait in
// the spool. Calling it again does nothing; after Close it returns ErrClosed.
func (s *Sink) Connect(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.started {
		s.started = true
		go s.run()
	}
	return nil
}

// Write appends f's events to the spool and returns once they are stored
// (durable as spool.fsync says); delivery happens in the background. It may
// be called before Connect.
func (s *Sink) Write(_ context.Context, f *stages.Frame) error {
	if len(f.Events) == 0 {
		return nil
	}
	recs := make([][]byte, 0, len(f.Events))
	for _, e := range f.Events {
		if e.Pipeline == "" {
			e.Pipeline = s.pipeline
		}
		body, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("webhook: encode event %s: %w", e.ID, err)
		}
		recs = append(recs, encodeRecord(e.ID, string(e.Type), body))
	}
	if _, err := s.q.Append(recs...); err != nil {
		if errors.Is(err, spool.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("webhook: spool %d events: %w", len(recs), err)
	}
	if d := s.q.DroppedTotal(); d > s.lastDropped.Load() {
		n := d - s.lastDropped.Swap(d)
		s.log.Warn("webhook: spool full, dropped the oldest undelivered events: raise spool.max_bytes or fix the endpoint",
			"dropped", n, "spool", s.q.Dir())
	}
	return nil
}

// A record is "id\ntype\n" + body: the headers of the request without
// decoding the event again.
func encodeRecord(id, typ string, body []byte) []byte {
	b := make([]byte, 0, len(id)+len(typ)+2+len(body))
	b = append(b, id...)
	b = append(b, '\n')
	b = append(b, typ...)
	b = append(b, '\n')
	return append(b, body...)
}

var errBadRecord = errors.New("webhook: malformed spool record")

func decodeRecord(data []byte) (id, typ string, body []byte, err error) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return "", "", nil, errBadRecord
	}
	j := bytes.IndexByte(data[i+1:], '\n')
	if j < 0 {
		return "", "", nil, errBadRecord
	}
	return string(data[:i]), string(data[i+1 : i+1+j]), data[i+2+j:], nil
}

// run is the delivery goroutine: one event at a time, in spool order.
func (s *Sink) run() {
	defer close(s.done)
	draining := false
	for {
		recs, err := s.q.Read(1)
		if err != nil && !errors.Is(err, spool.ErrClosed) {
			// The spool's files went bad under us; nothing to send until
			// they are readable again.
			s.log.Error("webhook: read spool", "err", err)
			s.q.Rewind()
			if !s.sleep(s.cfg.Retry.MaxBackoff) {
				return
			}
			continue
		}
		if len(recs) == 0 {
			if draining {
				return
			}
			select {
			case <-s.ctx.Done():
				return
			case <-s.drain:
				draining = true
			case <-s.q.Ready():
			}
			continue
		}
		if !s.deliver(recs[0]) {
			return
		}
		if err := s.q.Ack(recs[0].Seq); err != nil {
			s.log.Error("webhook: persist ack", "err", err)
		}
		s.delivered.Add(1)
	}
}

// result is one URL's answer to one attempt.
type result int

const (
	ok        result = iota // 2xx
	permanent               // 4xx other than 408/429: do not retry
	retry                   // anything else
)

// deliver POSTs rec to every URL until each has answered 2xx or failed
// permanently. It returns false when Close stopped it first (rec stays in
// the spool).
func (s *Sink) deliver(rec spool.Record) bool {
	id, typ, body, err := decodeRecord(rec.Data)
	if err != nil {
		// Cannot happen with files this package wrote; skip the record
		// rather than block every event after it.
		s.log.Error("webhook: skipping unreadable spool record", "seq", rec.Seq, "err", err)
		return true
	}
	var sig string
	if s.key != nil {
		m := hmac.New(sha256.New, s.key)
		m.Write(body)
		sig = "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	todo := s.targets
	results := make([]result, len(s.targets))
	waits := make([]time.Duration, len(s.targets))
	for attempt := 0; ; attempt++ {
		var wg sync.WaitGroup
		for i, t := range todo {
			wg.Go(func() { results[i], waits[i] = s.post(t, id, typ, sig, body) })
		}
		wg.Wait()
		var again []*target
		var hint time.Duration
		for i, t := range todo {
			switch results[i] {
			case ok:
				t.delivered.Add(1)
				if t.failing {
					t.failing = false
					s.log.Info("webhook: delivering again", "url", t.redacted, "pending", s.q.Pending())
				}
			case permanent:
				t.failed.Add(1)
			case retry:
				t.retries.Add(1)
				again = append(again, t)
				hint = max(hint, waits[i])
			}
		}
		if len(again) == 0 {
			return true
		}
		if s.ctx.Err() != nil {
			return false
		}
		todo = again
		clear(results)
		wait := s.backoff(attempt)
		if hint > 0 {
			wait = min(hint, s.cfg.Retry.MaxBackoff)
		}
		if !s.sleep(wait) {
			return false
		}
	}
}

// post sends one attempt to t and classifies the answer; wait is the
// server's Retry-After, if any. It logs the first failure of an outage and
// every permanent failure.
func (s *Sink) post(t *target, id, typ, sig string, body []byte) (r result, wait time.Duration) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		// Validate accepted the URL, so this does not happen; never retry it.
		s.log.Error("webhook: build request", "url", t.redacted, "err", redactErr(err, t))
		return permanent, 0
	}
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "osprey-webhook")
	req.Header.Set("Idempotency-Key", id)
	req.Header.Set("X-Osprey-Event-Id", id)
	req.Header.Set("X-Osprey-Event-Type", typ)
	if sig != "" {
		req.Header.Set(s.cfg.HMAC.header(), sig)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if s.ctx.Err() == nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("no answer within timeout %v", s.cfg.Timeout)
			}
			s.outage(t, "err", redactErr(err, t))
		}
		return retry, 0
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// Read a little more so the connection can be reused, then give up on it.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return ok, 0
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		s.log.Warn("webhook: endpoint rejected the event; skipping it for this URL (permanent failure)",
			"url", t.redacted, "id", id, "status", code, "body", string(bytes.TrimSpace(snippet)))
		return permanent, 0
	case code >= 300 && code < 400:
		s.outage(t, "status", code, "location", redact(resp.Header.Get("Location")),
			"hint", "redirects are not followed: set the URL to the final address")
	default:
		s.outage(t, "status", code)
	}
	return retry, retryAfter(resp.Header.Get("Retry-After"))
}

// outage logs the first failed attempt at t since it last worked.
func (s *Sink) outage(t *target, args ...any) {
	if t.failing {
		return
	}
	t.failing = true
	s.log.Warn("webhook: delivery failing, retrying with back-off; events wait in the spool",
		append([]any{"url", t.redacted, "pending", s.q.Pending()}, args...)...)
}

// redactErr keeps the URL, which may hold credentials, out of a client
// error: the caller logs the redacted URL next to it.
func redactErr(err error, t *target) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return errors.New(strings.ReplaceAll(err.Error(), t.url, t.redacted))
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(time.Until(at), 0)
	}
	return 0
}

// backoff returns the wait after the attempt-th failure: drawn from [d/2, d]
// with d = min(max, min*2^attempt), so many sinks recovering together do not
// retry in step.
func (s *Sink) backoff(attempt int) time.Duration {
	d := s.cfg.Retry.MaxBackoff
	if attempt < 32 {
		d = min(d, s.cfg.Retry.MinBackoff<<attempt)
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d; it returns false when Close stopped the sink first.
func (s *Sink) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Stats is a snapshot of the sink's counters.
type Stats struct {
	// Delivered counts events every URL has answered (2xx or a permanent
	// failure), acknowledged in the spool.
	Delivered uint64 `json:"delivered"`
	// Pending counts events in the spool not yet acknowledged.
	Pending int `json:"pending"`
	// Dropped counts undelivered events dropped because the spool was full.
	Dropped uint64 `json:"dropped"`
	// URLs are the per-endpoint counters, in config order.
	URLs []URLStats `json:"urls"`
}

// URLStats are one endpoint's counters.
type URLStats struct {
	// URL is the endpoint, redacted.
	URL string `json:"url"`
	// Delivered counts events it answered with a 2xx.
	Delivered uint64 `json:"delivered"`
	// Failed counts events it rejected permanently (skipped).
	Failed uint64 `json:"failed"`
	// Retries counts attempts that failed and were retried.
	Retries uint64 `json:"retries"`
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	st := Stats{Delivered: s.delivered.Load(), Pending: s.q.Pending(), Dropped: s.q.DroppedTotal()}
	for _, t := range s.targets {
		st.URLs = append(st.URLs, URLStats{URL: t.redacted, Delivered: t.delivered.Load(), Failed: t.failed.Load(), Retries: t.retries.Load()})
	}
	return st
}

// Close keeps delivering for at most close_timeout (or until ctx is done),
// then cancels the request in flight, waits for the delivery goroutine and
// closes the spool. Undelivered events stay there for the next start. It is
// safe to call twice.
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
		drain.Bounded(ctx, s.drain, s.done, s.cfg.CloseTimeout, s.abort)
	}
	s.abort()
	s.tr.CloseIdleConnections()
	if n := s.q.Pending(); n > 0 {
		s.log.Warn("webhook: closing with undelivered events; they stay spooled for the next start", "events", n, "spool", s.q.Dir())
	}
	if s.metrics != nil {
		s.metrics.unregister()
	}
	if err := s.q.Close(); err != nil {
		return fmt.Errorf("webhook: close spool: %w", err)
	}
	return nil
}
