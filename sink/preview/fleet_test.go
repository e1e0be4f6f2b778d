package preview

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The fleet endpoint and page without a fleet, with one, and with a fleet
// whose status cannot be read (the real fleet is cmd/pipeline's TestFleetUI).
func TestFleetEndpoint(t *testing.T) {
	cfg := testConfig()
	cfg.Token = "tk"
	s, base := startSink(t, cfg)
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer tk")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	tests := []struct {
		name string
		fn   func(context.Context) (any, error)
		code int
		body string
	}{
		{"no fleet", nil, http.StatusOK, `{"enabled":false}`},
		{"fleet", func(context.Context) (any, error) { return map[string]string{"self": "a"}, nil }, http.StatusOK, `{"enabled":true,"status":{"self":"a"}}`},
		{"nats down", func(context.Context) (any, error) {
			return nil, errors.New("fleet: bucket x: context deadline exceeded")
		},
			http.StatusBadGateway, `{"enabled":true,"error":"fleet: bucket x: context deadline exceeded"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.SetFleet(tc.fn)
			code, body := get("/api/fleet")
			if code != tc.code || body != tc.body {
				t.Fatalf("GET /api/fleet: %d %s, want %d %s", code, body, tc.code, tc.body)
			}
		})
	}
	code, page := get("/fleet")
	if code != http.StatusOK || !strings.Contains(page, "Fleet mode is off") || !strings.Contains(page, "ospreyFleet") {
		t.Fatalf("GET /fleet: %d, page without its off notice or script", code)
	}
	resp, err := http.Get(base + "/api/fleet")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/fleet without the token: %d, want 401", resp.StatusCode)
	}
}
