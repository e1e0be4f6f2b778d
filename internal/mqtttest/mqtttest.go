// Package mqtttest runs Debian's mosquitto clients, the reference MQTT
// client, for tests: a subscriber whose lines a test reads, ready once its
// subscription is live.
package mqtttest

import (
	"bufio"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/internal/realpart"
)

// Subscribe runs mosquitto_sub on addr for filters (QoS 1, verbose: one
// "topic payload" line per message) and returns its lines. It returns once
// the subscription is live: it publishes probes on probeTopic with
// mosquitto_pub until mosquitto_sub prints one.
func Subscribe(t testing.TB, addr, probeTopic string, filters ...string) <-chan string {
	t.Helper()
	sub := realpart.Command(t, realpart.MosquittoClients, "mosquitto_sub")
	pub := realpart.Command(t, realpart.MosquittoClients, "mosquitto_pub")
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"-h", host, "-p", port, "-V", "mqttv311", "-q", "1", "-v"}
	for _, f := range filters {
		args = append(args, "-t", f)
	}
	cmd := exec.Command(sub, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if s := stderr.String(); s != "" {
			t.Logf("mosquitto_sub stderr: %s", s)
		}
	})
	lines := make(chan string, 1<<16)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		probe, seen := probeTopic+" probe", false
		for sc.Scan() {
			if sc.Text() != probe {
				lines <- sc.Text()
			} else if !seen {
				close(ready)
				seen = true
			}
		}
		close(lines)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if b, err := exec.Command(pub, "-h", host, "-p", port, "-V", "mqttv311", "-t", probeTopic, "-m", "probe").CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, b)
		}
		select {
		case <-ready:
			return lines
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto_sub never saw a probe on %s: %s", probeTopic, stderr.String())
		}
	}
}
