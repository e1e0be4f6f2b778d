package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/sink/webhook"
	"github.com/osprey-vision/osprey/stages"
)

// TestBuildThroughRegistry builds the sink the way the pipeline does: from
// an isolated registry, a YAML section decoded over the spec's defaults, the
// spec's checks and Build with Resources.
func TestBuildThroughRegistry(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
	}))
	defer srv.Close()
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "hook.key"), []byte("k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	resolve := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p) // relative paths are from the pipeline's directory
	}

	reg := stages.NewRegistry().AddSink(webhook.Plugin())
	p, ok := reg.Sink("webhook")
	if !ok {
		t.Fatalf("registry sinks %v: webhook missing", reg.SinkKeys())
	}
	section := fmt.Sprintf(`
urls: [%q, %q]
headers: {Authorization: "Bearer t"}
timeout: 2s
retry: {min_backoff: 10ms, max_backoff: 100ms}
hmac: {secret_file: hook.key}
spool: {dir: spool, max_bytes: 1048576, fsync: interval}
close_timeout: 1s
`, srv.URL+"/in", srv.URL+"/reject")
	cfg := p.Spec.Defaults()
	if err := yaml.UnmarshalWithOptions([]byte(section), cfg, yaml.DisallowUnknownField()); err != nil {
		t.Fatalf("decode: %v", err)
	}
	c, ok := stages.ConfigAs[webhook.Config](cfg)
	if !ok || c.Retry.MaxBackoff != 100*time.Millisecond || c.Spool.MaxBytes != 1<<20 || c.HMAC.Header != "" {
		t.Fatalf("decoded %+v", c)
	}
	env := stages.Env{Pipeline: "lobby", Streams: []string{"door-cam"}, Resolve: resolve}
	if err := p.Spec.Validate(cfg, env); err != nil {
		t.Fatalf("validate: %v", err)
	}

	metrics := prometheus.NewRegistry()
	res := &stages.Resources{Pipeline: "lobby", Streams: env.Streams, Resolve: resolve, Metrics: metrics}
	sink, err := p.Build(cfg, res)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	es, ok := sink.(stages.EventSink)
	if !ok || !es.EventsOnly() {
		t.Fatalf("%T is not an events-only EventSink", sink)
	}
	if _, err := os.Stat(filepath.Join(base, "spool")); err != nil {
		t.Fatalf("spool.dir not resolved against the pipeline directory: %v", err)
	}
	if err := sink.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := event.New(event.SourceUp, "", "door-cam")
	if err := sink.Write(context.Background(), &stages.Frame{Stream: "door-cam", Events: []event.Event{e}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for gather(t, metrics)["osprey_webhook_pending"] != 0 || gather(t, metrics)[`osprey_webhook_delivered_total{url="`+srv.URL+`/in"}`] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %v", gather(t, metrics))
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := gather(t, metrics)
	if m[`osprey_webhook_failed_total{url="`+srv.URL+`/reject"}`] != 1 || m[`osprey_webhook_retries_total{url="`+srv.URL+`/in"}`] != 0 {
		t.Fatalf("metrics %v", m)
	}
	mu.Lock()
	if len(got) != 1 || got[0] != e.ID {
		t.Fatalf("receiver got %v, want [%s]", got, e.ID)
	}
	mu.Unlock()
	for range 2 {
		if err := sink.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	// Close unregistered the metrics: a rebuilt sink (reload) registers again.
	again, err := p.Build(cfg, res)
	if err != nil {
		t.Fatalf("rebuild with the same registerer: %v", err)
	}
	if err := again.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryValidatePathsAreRelative(t *testing.T) {
	p, _ := stages.NewRegistry().AddSink(webhook.Plugin()).Sink("webhook")
	cfg := p.Spec.Defaults()
	if err := yaml.UnmarshalWithOptions([]byte("urls: [\"ftp://x\"]\nspool: {dir: /tmp/x}\n"), cfg, yaml.DisallowUnknownField()); err != nil {
		t.Fatal(err)
	}
	err := p.Spec.Validate(cfg, stages.Env{Pipeline: "lobby"})
	var fe *stages.FieldError
	if !errors.As(err, &fe) || fe.Path != "urls[0]" {
		t.Fatalf("error %v: want a FieldError at urls[0]", err)
	}
	if got := stages.Under("sinks.webhook", err).Error(); !strings.HasPrefix(got, `sinks.webhook.urls[0]: "ftp://x" is not an http(s) URL`) {
		t.Fatalf("placed under the section: %s", got)
	}
	if err := yaml.UnmarshalWithOptions([]byte("url: http://x\n"), p.Spec.Defaults(), yaml.DisallowUnknownField()); err == nil {
		t.Fatal("unknown key url (not urls) was accepted")
	}
}

// gather returns every sample as name{labels} -> value.
func gather(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if l := m.GetLabel(); len(l) > 0 {
				key += fmt.Sprintf(`{%s="%s"}`, l[0].GetName(), l[0].GetValue())
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
