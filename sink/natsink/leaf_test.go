package natsink

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/realpart"
)

// TestLeafNodeDevice is the leaf-node layout of examples/nats/leaf-device.conf:
// the pipeline publishes to a device-local server without JetStream, which
// forwards over a leaf link to the site hub holding the stream. Publish acks
// come back from the hub through the link.
func TestLeafNodeDevice(t *testing.T) {
	leafPort := freePort(t)
	hub := runServer(t, &server.Options{ServerName: "hub", JetStreamDomain: "hub", LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort}})
	dev, err := server.NewServer(&server.Options{ServerName: "device-1", Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		LeafNode: server.LeafNodeOpts{Remotes: []*server.RemoteLeafOpts{{
			URLs: []*url.URL{{Scheme: "nats-leaf", Host: fmt.Sprintf("127.0.0.1:%d", leafPort)}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	go dev.Start()
	t.Cleanup(func() { dev.Shutdown(); dev.WaitForShutdown() })
	if !dev.ReadyForConnections(10 * time.Second) {
		t.Fatal("device server did not start")
	}
	waitFor(t, 10*time.Second, "leaf link up", func() bool { return dev.NumLeafNodes() == 1 })
	// Interest in the hub's JetStream API reaches the device shortly after.
	probe, err := nats.Connect(dev.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	waitFor(t, 10*time.Second, "jetstream reachable through the leaf link", func() bool {
		_, err := probe.Request("$JS.hub.API.INFO", nil, 500*time.Millisecond)
		return err == nil
	})

	s := newSink(t, Config{URL: dev.ClientURL(), Pipeline: "lobby", Spool: SpoolConfig{Dir: t.TempDir()},
		JetStream: &JetStreamConfig{Stream: "SITE", Create: true, Domain: "hub"}})
	var created []string
	for i := range 20 {
		e := sampleEvent(event.Types[i%len(event.Types)], "lobby", "door-cam", i)
		created = append(created, e.ID)
		if err := s.Write(context.Background(), frameWith("door-cam", e)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "events acknowledged by the hub", func() bool { return s.Stats().Pending == 0 })
	checkExactlyOnce(t, created, streamIDs(t, hub.ClientURL(), "SITE"))
}

// TestExampleConfigs checks that the example server configs parse with the
// Debian nats-server binary.
func TestExampleConfigs(t *testing.T) {
	bin := "/usr/sbin/nats-server"
	realpart.File(t, realpart.NATSServer, bin)
	files, _ := filepath.Glob("../../examples/nats/*.conf")
	if len(files) == 0 {
		t.Fatal("no example configs found in examples/nats")
	}
	for _, f := range files {
		out, err := exec.Command(bin, "-t", "-c", f).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
	}
}
