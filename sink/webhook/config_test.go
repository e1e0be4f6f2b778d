package webhook

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.key")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := func(c *Config) {
		c.URLs, c.Spool.Dir = []string{"https://hooks.example.com/osprey"}, "/var/lib/osprey/webhook"
	}
	tests := []struct {
		name string
		conf func(c *Config)
		err  string
	}{
		{"valid", func(c *Config) { ok(c) }, ""},
		{"valid with everything", func(c *Config) {
			ok(c)
			c.URLs = append(c.URLs, "http://10.0.0.5:8080/in?x=1")
			c.Headers = map[string]string{"Authorization": "Bearer t", "X-Site": "north"}
			c.HMAC = &HMACConfig{Secret: "k", Header: "X-Hub-Signature-256"}
			c.Spool.Fsync = "interval"
		}, ""},
		{"no urls", func(c *Config) { ok(c); c.URLs = nil },
			"urls: required: list the http:// or https:// endpoints to POST events to"},
		{"ftp url", func(c *Config) { ok(c); c.URLs = []string{"ftp://x"} },
			`urls[0]: "ftp://x" is not an http(s) URL: use http://host[:port]/path or https://host[:port]/path`},
		{"no scheme", func(c *Config) { ok(c); c.URLs = []string{"hooks.example.com/in"} },
			`urls[0]: "hooks.example.com/in" is not an http(s) URL: use http://host[:port]/path or https://host[:port]/path`},
		{"no host", func(c *Config) { ok(c); c.URLs = []string{"https:///in"} },
			`urls[0]: "https:///in" has no host: use http://host[:port]/path`},
		{"fragment", func(c *Config) { ok(c); c.URLs = append(c.URLs, "https://h/in#x") },
			`urls[1]: "https://h/in#x" has a #fragment, which is never sent: remove it`},
		{"credentials redacted in the error", func(c *Config) { ok(c); c.URLs = []string{"ftp://bob:pw@h/in?key=k1"} },
			`urls[0]: "ftp://***@h/in?key=***" is not an http(s) URL: use http://host[:port]/path or https://host[:port]/path`},
		{"duplicate", func(c *Config) { ok(c); c.URLs = append(c.URLs, c.URLs[0]) },
			`urls[1]: "https://hooks.example.com/osprey" repeats urls[0]: list each endpoint once`},
		{"bad header name", func(c *Config) { ok(c); c.Headers = map[string]string{"X Site": "a"} },
			`headers.X Site: "X Site" is not a valid header name: use letters, digits and '-'`},
		{"reserved header", func(c *Config) { ok(c); c.Headers = map[string]string{"content-type": "text/plain"} },
			"headers.content-type: content-type is set by the sink itself and cannot be overridden"},
		{"header value with newline", func(c *Config) { ok(c); c.Headers = map[string]string{"X-A": "a\r\nX-B: b"} },
			"headers.X-A: the value contains a line break or NUL: put it on one line"},
		{"header is the signature header", func(c *Config) {
			ok(c)
			c.HMAC = &HMACConfig{Secret: "k"}
			c.Headers = map[string]string{"X-Osprey-Signature": "x"}
		}, "headers.X-Osprey-Signature: X-Osprey-Signature is the hmac signature header: remove it or choose another hmac.header"},
		{"hmac without key", func(c *Config) { ok(c); c.HMAC = &HMACConfig{} },
			"hmac: needs secret or secret_file: the key to sign bodies with"},
		{"hmac with both", func(c *Config) { ok(c); c.HMAC = &HMACConfig{Secret: "a", SecretFile: empty} },
			"hmac: secret and secret_file are alternatives: set only one"},
		{"hmac secret file missing", func(c *Config) { ok(c); c.HMAC = &HMACConfig{SecretFile: filepath.Join(dir, "nope.key")} },
			"hmac.secret_file: " + filepath.Join(dir, "nope.key") + ": no such file or directory"},
		{"hmac secret file empty", func(c *Config) { ok(c); c.HMAC = &HMACConfig{SecretFile: empty} },
			"hmac.secret_file: " + empty + " is empty: write the key into it"},
		{"hmac bad header", func(c *Config) { ok(c); c.HMAC = &HMACConfig{Secret: "k", Header: "X:Sig"} },
			`hmac.header: "X:Sig" is not a valid header name: use letters, digits and '-'`},
		{"hmac reserved header", func(c *Config) { ok(c); c.HMAC = &HMACConfig{Secret: "k", Header: "Idempotency-Key"} },
			`hmac.header: "Idempotency-Key" is set by the sink itself: choose another name`},
		{"zero timeout", func(c *Config) { ok(c); c.Timeout = 0 },
			"timeout: 0s must be positive: the longest one request may take, e.g. 10s"},
		{"backoff", func(c *Config) { ok(c); c.Retry = RetryConfig{MinBackoff: 0, MaxBackoff: -time.Second} },
			"retry.min_backoff: 0s must be positive, e.g. 200ms\nretry.max_backoff: -1s is shorter than retry.min_backoff 0s"},
		{"max below min", func(c *Config) { ok(c); c.Retry.MaxBackoff = 100 * time.Millisecond },
			"retry.max_backoff: 100ms is shorter than retry.min_backoff 200ms"},
		{"negative close timeout", func(c *Config) { ok(c); c.CloseTimeout = -time.Second },
			"close_timeout: -1s is negative"},
		{"no spool dir", func(c *Config) { ok(c); c.Spool.Dir = "" },
			"spool.dir: required: a directory where events wait until every URL has them (e.g. /var/lib/osprey/webhook)"},
		{"small spool", func(c *Config) { ok(c); c.Spool.MaxBytes = 1000 },
			"spool.max_bytes: 1000 is too small: use at least 65536"},
		{"fsync", func(c *Config) { ok(c); c.Spool.Fsync = "sometimes" },
			`spool.fsync: "sometimes" is unknown: use always, interval or never`},
		{"every problem at once", func(c *Config) {
			c.URLs = []string{"ftp://x", "https://ok/"}
			c.Timeout = 0
		}, "urls[0]: \"ftp://x\" is not an http(s) URL: use http://host[:port]/path or https://host[:port]/path\n" +
			"timeout: 0s must be positive: the longest one request may take, e.g. 10s\n" +
			"spool.dir: required: a directory where events wait until every URL has them (e.g. /var/lib/osprey/webhook)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.conf(&c)
			err := c.Validate(nil)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Fatalf("error\n got: %s\nwant: %s", got, tt.err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example.com/in":           "https://hooks.example.com/in",
		"https://u:p@h:8443/in":                  "https://***@h:8443/in",
		"https://u@h/in":                         "https://***@h/in",
		"http://h/in?token=abc&token=def&b=2":    "http://h/in?b=***&token=***",
		"http://u:p@h/%zz?q=secret":              "***@h/%zz?***",
		"https://h/in?sig=a%2Fb":                 "https://h/in?sig=***",
		"http://alice:hunter2@127.0.0.1:9/x?k=v": "http://***@127.0.0.1:9/x?k=***",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	s := &Sink{cfg: Defaults()}
	s.cfg.Retry = RetryConfig{MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second}
	for attempt, d := range []time.Duration{100, 200, 400, 800, 1600, 2000, 2000} {
		d *= time.Millisecond
		seen := map[time.Duration]bool{}
		for range 50 {
			w := s.backoff(attempt)
			if w < d/2 || w > d {
				t.Fatalf("attempt %d: wait %v outside [%v, %v]", attempt, w, d/2, d)
			}
			seen[w] = true
		}
		if len(seen) < 10 {
			t.Fatalf("attempt %d: only %d distinct waits in 50: no jitter", attempt, len(seen))
		}
	}
	if w := s.backoff(200); w < time.Second || w > 2*time.Second {
		t.Fatalf("attempt 200: wait %v, want within max_backoff", w)
	}
	if got := retryAfter("3"); got != 3*time.Second {
		t.Fatalf("Retry-After 3: %v", got)
	}
	if got := retryAfter("soon"); got != 0 {
		t.Fatalf("Retry-After soon: %v", got)
	}
}
