package natsink

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbedded starts an in-process nats-server with JetStream, for a
// single-device setup where consumers connect to the pipeline host itself.
func startEmbedded(c EmbeddedConfig, log *slog.Logger) (*server.Server, error) {
	if err := os.MkdirAll(c.StoreDir, 0o755); err != nil {
		return nil, fmt.Errorf("natsink: embedded.store_dir %s: %w", c.StoreDir, err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "osprey-embedded",
		Host:       c.Host,
		Port:       c.Port,
		JetStream:  true,
		StoreDir:   c.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("natsink: embedded nats-server on %s:%d: %w", c.Host, c.Port, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("natsink: embedded nats-server did not start on %s:%d (port in use? set embedded.port, or -1 for a free one)", c.Host, c.Port)
	}
	return srv, nil
}
