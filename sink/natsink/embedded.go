package natsink

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbedded starts an in-process nats-server with JetStream, for a
// single-device setup where consumers connect to the pipeline host itself.
// With mqttListen (host:port, validated) it also serves MQTT there: MQTT
// keeps its sessions and retained messages in JetStream, which is always on
// here, and needs a server name, which is set. It returns the MQTT
// listener's address (port -1 resolved), or "".
func startEmbedded(c EmbeddedConfig, mqttListen string, log *slog.Logger) (*server.Server, string, error) {
	if err := os.MkdirAll(c.StoreDir, 0o755); err != nil {
		return nil, "", fmt.Errorf("natsink: embedded.store_dir %s: %w", c.StoreDir, err)
	}
	opts := &server.Options{
		ServerName: "osprey-embedded",
		Host:       c.Host,
		Port:       c.Port,
		JetStream:  true,
		StoreDir:   c.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	}
	where := fmt.Sprintf("%s:%d", c.Host, c.Port)
	if mqttListen != "" {
		host, port, _ := net.SplitHostPort(mqttListen)
		opts.MQTT.Host = host
		opts.MQTT.Port, _ = strconv.Atoi(port)
		where += " (mqtt " + mqttListen + ")"
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("natsink: embedded nats-server on %s: %w", where, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, "", fmt.Errorf("natsink: embedded nats-server did not start on %s (port in use? set embedded.port or mqtt.listen, or port -1 for a free one)", where)
	}
	if mqttListen == "" {
		return srv, "", nil
	}
	// The server writes the port it picked for -1 back into its options.
	host := opts.MQTT.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return srv, net.JoinHostPort(host, strconv.Itoa(opts.MQTT.Port)), nil
}
