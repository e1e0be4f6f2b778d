package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/osprey-vision/osprey/sink/spool"
	"github.com/osprey-vision/osprey/stages"
)

// DefaultSignatureHeader is the header that carries the HMAC signature when
// hmac.header is not set.
const DefaultSignatureHeader = "X-Osprey-Signature"

// Config is the `sinks.webhook` section. Start from Defaults, decode the YAML
// over it and call Validate (New calls it too).
type Config struct {
	// URLs are the http:// or https:// endpoints every event is POSTed to.
	// Userinfo and query values are redacted wherever a URL is logged.
	URLs []string `yaml:"urls"`
	// Headers are added to every request (Authorization, for example). The
	// headers the sink sets itself cannot be overridden.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one request, from dial to the end of the response
	// (default 10s). A request that runs past it is retried.
	Timeout time.Duration `yaml:"timeout"`
	// Retry is the back-off between attempts at an event that failed.
	Retry RetryConfig `yaml:"retry"`
	// HMAC, when set, signs every body.
	HMAC *HMACConfig `yaml:"hmac"`
	// Spool is the on-disk queue between Write and delivery.
	Spool SpoolConfig `yaml:"spool"`
	// CloseTimeout bounds how long Close keeps delivering (default 5s);
	// what is left stays in the spool for the next start.
	CloseTimeout time.Duration `yaml:"close_timeout"`
}

// RetryConfig is an exponential back-off with jitter: the n-th wait is drawn
// from [d/2, d] with d = min(max_backoff, min_backoff * 2^n). Retries go on
// for as long as the pipeline runs.
type RetryConfig struct {
	// MinBackoff is the first wait (default 200ms).
	MinBackoff time.Duration `yaml:"min_backoff"`
	// MaxBackoff caps the wait, and a server's Retry-After (default 30s).
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// HMACConfig signs each body with HMAC-SHA256: the header's value is
// "sha256=" followed by the lowercase hex digest of the exact body bytes.
type HMACConfig struct {
	// Secret is the key. Set Secret or SecretFile, not both.
	Secret string `yaml:"secret"`
	// SecretFile is a file holding the key (surrounding white space is
	// ignored), read when the sink is built.
	SecretFile string `yaml:"secret_file"`
	// Header is the header name (default X-Osprey-Signature).
	Header string `yaml:"header"`
}

// SpoolConfig configures the durable queue (package sink/spool).
type SpoolConfig struct {
	// Dir is the spool directory; required, and not shared with another sink
	// or process. Undelivered events wait here across restarts.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the spool (default 64 MiB); when full the oldest
	// undelivered events are dropped, counted and logged.
	MaxBytes int64 `yaml:"max_bytes"`
	// Fsync is the spool's fsync policy: always (default), interval, never.
	Fsync string `yaml:"fsync"`
}

// Defaults returns the configuration to decode a `sinks.webhook` section over.
func Defaults() Config {
	return Config{
		Timeout:      10 * time.Second,
		Retry:        RetryConfig{MinBackoff: 200 * time.Millisecond, MaxBackoff: 30 * time.Second},
		Spool:        SpoolConfig{MaxBytes: 64 << 20, Fsync: "always"},
		CloseTimeout: 5 * time.Second,
	}
}

// reserved are the headers the sink sets on every request.
var reserved = []string{"Content-Type", "Content-Length", "Host", "Idempotency-Key", "X-Osprey-Event-Id", "X-Osprey-Event-Type", "User-Agent"}

// Validate checks c and reports every problem at once, as stages.FieldErrors
// with paths relative to the section. resolve turns a path from the pipeline
// file into one to open (nil: the path as written).
func (c *Config) Validate(resolve func(string) string) error {
	var errs []error
	bad := func(path, format string, a ...any) { errs = append(errs, stages.Errorf(path, format, a...)) }
	if len(c.URLs) == 0 {
		bad("urls", "required: list the http:// or https:// endpoints to POST events to")
	}
	seen := map[string]int{}
	for i, raw := range c.URLs {
		path := fmt.Sprintf("urls[%d]", i)
		if err := checkURL(raw); err != nil {
			bad(path, "%q %v", redact(raw), err)
			continue
		}
		if j, dup := seen[raw]; dup {
			bad(path, "%q repeats urls[%d]: list each endpoint once", redact(raw), j)
			continue
		}
		seen[raw] = i
	}
	sigHeader := ""
	if h := c.HMAC; h != nil {
		sigHeader = h.header()
		switch {
		case h.Secret != "" && h.SecretFile != "":
			bad("hmac", "secret and secret_file are alternatives: set only one")
		case h.Secret == "" && h.SecretFile == "":
			bad("hmac", "needs secret or secret_file: the key to sign bodies with")
		case h.SecretFile != "":
			if _, err := readSecret(h.SecretFile, resolve); err != nil {
				bad("hmac.secret_file", "%v", err)
			}
		}
		if !validToken(sigHeader) {
			bad("hmac.header", "%q is not a valid header name: use letters, digits and '-'", h.Header)
		} else if isReserved(sigHeader) {
			bad("hmac.header", "%q is set by the sink itself: choose another name", h.Header)
		}
	}
	for _, k := range sortedKeys(c.Headers) {
		path := "headers." + k
		switch {
		case !validToken(k):
			bad(path, "%q is not a valid header name: use letters, digits and '-'", k)
		case isReserved(k):
			bad(path, "%s is set by the sink itself and cannot be overridden", k)
		case sigHeader != "" && strings.EqualFold(k, sigHeader):
			bad(path, "%s is the hmac signature header: remove it or choose another hmac.header", k)
		case strings.ContainsAny(c.Headers[k], "\r\n\x00"):
			bad(path, "the value contains a line break or NUL: put it on one line")
		}
	}
	if c.Timeout <= 0 {
		bad("timeout", "%v must be positive: the longest one request may take, e.g. 10s", c.Timeout)
	}
	if c.Retry.MinBackoff <= 0 {
		bad("retry.min_backoff", "%v must be positive, e.g. 200ms", c.Retry.MinBackoff)
	}
	if c.Retry.MaxBackoff < c.Retry.MinBackoff {
		bad("retry.max_backoff", "%v is shorter than retry.min_backoff %v", c.Retry.MaxBackoff, c.Retry.MinBackoff)
	}
	if c.CloseTimeout < 0 {
		bad("close_timeout", "%v is negative", c.CloseTimeout)
	}
	if c.Spool.Dir == "" {
		bad("spool.dir", "required: a directory where events wait until every URL has them (e.g. /var/lib/osprey/webhook)")
	}
	if c.Spool.MaxBytes < 64<<10 {
		bad("spool.max_bytes", "%d is too small: use at least 65536", c.Spool.MaxBytes)
	}
	if _, err := spool.ParseSyncPolicy(c.Spool.Fsync); err != nil {
		bad("spool.fsync", "%q is unknown: use always, interval or never", c.Spool.Fsync)
	}
	return errors.Join(errs...)
}

func (h *HMACConfig) header() string {
	if h.Header == "" {
		return DefaultSignatureHeader
	}
	return h.Header
}

// checkURL returns why raw is not a usable endpoint, phrased to follow the
// quoted URL.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return errors.New("is not an http(s) URL: use http://host[:port]/path or https://host[:port]/path")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("has no host: use http://host[:port]/path")
	}
	if u.Fragment != "" {
		return errors.New("has a #fragment, which is never sent: remove it")
	}
	return nil
}

// readSecret reads an HMAC key file.
func readSecret(path string, resolve func(string) string) ([]byte, error) {
	if resolve != nil {
		path = resolve(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %v", path, pe.Err)
		}
		return nil, err
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) == 0 {
		return nil, fmt.Errorf("%s is empty: write the key into it", path)
	}
	return key, nil
}

// validToken reports whether s is an HTTP header name (RFC 9110 token).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

func isReserved(h string) bool {
	return slices.ContainsFunc(reserved, func(r string) bool { return strings.EqualFold(r, h) })
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// redact hides what may be a credential in a URL before it is logged or put
// in an error: the userinfo and every query value. Secrets in the path (some
// services put a token there) cannot be told apart and are kept.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparseable: hide everything before '@' and after '?'.
		if at := strings.LastIndex(raw, "@"); at >= 0 {
			raw = "***" + raw[at:]
		}
		if q := strings.Index(raw, "?"); q >= 0 {
			raw = raw[:q] + "?***"
		}
		return raw
	}
	user := u.User != nil
	u.User = nil
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"***"}
		}
		u.RawQuery = strings.ReplaceAll(q.Encode(), "%2A", "*")
	}
	s := u.String()
	if user {
		s = strings.Replace(s, "://", "://***@", 1)
	}
	return s
}
