// Package testlog gives tests a logger that writes to the test's own
// output, so a component's warnings show up under go test -v next to the
// test that caused them.
package testlog

import (
	"log/slog"
	"strings"
)

// TB is the part of testing.TB the logger needs (kept small so the package
// does not import testing into binaries).
type TB interface{ Log(args ...any) }

// New returns a logger writing info and above to t's log.
func New(t TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(writer{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type writer struct{ t TB }

func (w writer) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
