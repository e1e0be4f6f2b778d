package natsink

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/stages"
)

var _ stages.EventSink = (*Sink)(nil)

// testEveryType publishes one event of each type through a sink connected to
// url and checks each arrives on its subject, with the event ID as
// Nats-Msg-Id and a body that validates against event/schema.json.
func testEveryType(t *testing.T, url string, js *JetStreamConfig) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe("osprey.>", got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()

	s := newSink(t, Config{URL: url, Pipeline: "lobby", JetStream: js, Spool: SpoolConfig{Dir: t.TempDir()}})
	want := map[string]event.Event{}
	for i, typ := range event.Types {
		e := sampleEvent(typ, "lobby", "door-cam", i)
		want[e.ID] = e
		if err := s.Write(context.Background(), frameWith("door-cam", e)); err != nil {
			t.Fatal(err)
		}
	}
	for range event.Types {
		select {
		case m := <-got:
			validate(t, m.Data)
			var e event.Event
			json.Unmarshal(m.Data, &e)
			w, ok := want[e.ID]
			if !ok {
				t.Fatalf("unexpected event %s on %s", e.ID, m.Subject)
			}
			delete(want, e.ID)
			if m.Subject != w.Subject("osprey") || m.Subject != "osprey.lobby.door-cam."+string(w.Type) {
				t.Fatalf("subject %q for %s event", m.Subject, w.Type)
			}
			if m.Header.Get("Nats-Msg-Id") != e.ID {
				t.Fatalf("Nats-Msg-Id %q, want %q", m.Header.Get("Nats-Msg-Id"), e.ID)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("events not received: %d missing", len(want))
		}
	}
	waitFor(t, 5*time.Second, "all acknowledged", func() bool { return s.Stats().Pending == 0 })
	if st := s.Stats(); st.Published != uint64(len(event.Types)) || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestEveryTypeCoreNATS(t *testing.T) {
	srv := runServer(t, nil)
	testEveryType(t, srv.ClientURL(), nil)
}

func TestEveryTypeJetStream(t *testing.T) {
	srv := runServer(t, nil)
	testEveryType(t, srv.ClientURL(), &JetStreamConfig{Stream: "EVENTS", Create: true})
	ids := streamIDs(t, srv.ClientURL(), "EVENTS")
	if len(ids) != len(event.Types) {
		t.Fatalf("stream holds %d events, want %d", len(ids), len(event.Types))
	}
}

// TestDebianNATSServer runs the same check against the nats-server binary
// from Debian (2.9), a different server version than the in-process one.
func TestDebianNATSServer(t *testing.T) {
	bin := "/usr/sbin/nats-server"
	realpart.File(t, realpart.NATSServer, bin)
	port := freePort(t)
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	waitFor(t, 10*time.Second, "nats-server binary to listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	testEveryType(t, url, &JetStreamConfig{Stream: "DEBIAN", Create: true})
	if ids := streamIDs(t, url, "DEBIAN"); len(ids) != len(event.Types) {
		t.Fatalf("stream holds %d events, want %d", len(ids), len(event.Types))
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestEmbeddedServer(t *testing.T) {
	store := t.TempDir()
	s := newSink(t, Config{Pipeline: "lobby", Embedded: EmbeddedConfig{Port: -1, StoreDir: store},
		JetStream: &JetStreamConfig{Stream: "EMB"}})
	url := s.ClientURL()
	if url == "" || url == "nats://127.0.0.1:4222" {
		t.Fatalf("embedded client URL %q", url)
	}
	var created []string
	for i := range 20 {
		e := sampleEvent(event.LineCrossed, "lobby", "cam", i)
		created = append(created, e.ID)
		if err := s.Write(context.Background(), frameWith("cam", e)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "events acknowledged", func() bool { return s.Stats().Pending == 0 })
	checkExactlyOnce(t, created, streamIDs(t, url, "EMB"))
	if entries, _ := os.ReadDir(filepath.Join(store, "jetstream")); len(entries) == 0 {
		t.Fatalf("embedded server stored nothing under %s", store)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"defaults", Config{Pipeline: "p"}, ""},
		{"no pipeline", Config{}, "the pipeline name is empty: set Config.Pipeline"},
		{"bad url", Config{Pipeline: "p", URL: "http://u:secret@h:1"}, `url: "http://***@h:1" has scheme "http": use nats://, tls://, ws:// or wss://`},
		{"bad prefix", Config{Pipeline: "p", SubjectPrefix: "a.*"}, `subject_prefix: "a.*" is not a valid subject prefix: use tokens of letters, digits, '-' and '_' separated by dots`},
		{"two auths", Config{Pipeline: "p", User: "u", Token: "t"}, "credentials: credentials, nkey_seed, user and token are alternatives: set only one"},
		{"missing creds", Config{Pipeline: "p", Credentials: filepath.Join(dir, "x.creds")}, "credentials: file " + filepath.Join(dir, "x.creds") + ": no such file or directory"},
		{"cert without key", Config{Pipeline: "p", TLS: TLSConfig{Cert: "/etc/hostname"}}, "tls.cert: tls.cert and tls.key must be set together"},
		{"replicas", Config{Pipeline: "p", JetStream: &JetStreamConfig{Replicas: 7}}, "jetstream.replicas: 7 is out of range: use 1 to 5"},
		{"fsync", Config{Pipeline: "p", Spool: SpoolConfig{Fsync: "sometimes"}}, `spool.fsync: "sometimes" is unknown: use always, interval or never`},
		{"port", Config{Pipeline: "p", Embedded: EmbeddedConfig{Port: 70000}}, "embedded.port: 70000 is out of range: use 1-65535, or -1 for a free port"},
		{"snapshots need jetstream", Config{Pipeline: "p", Snapshots: &SnapshotConfig{}}, "snapshots: needs jetstream: snapshots are stored in a JetStream object store"},
		{"snapshot type", Config{Pipeline: "p", JetStream: &JetStreamConfig{}, Snapshots: &SnapshotConfig{Types: []string{"person.waved"}}}, `snapshots.types: unknown event type "person.waved"`},
		{"all at once", Config{Pipeline: "", Password: "x"}, "the pipeline name is empty: set Config.Pipeline\npassword: is set without user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Fatalf("error\n got %q\nwant %q", got, tt.err)
			}
		})
	}
}

func TestUnreachableAtStartSpoolsThenDelivers(t *testing.T) {
	// The server is down when the pipeline starts: Connect succeeds, events
	// spool, and are delivered once a server appears on that address.
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	s := newSink(t, Config{URL: url, Pipeline: "p", JetStream: &JetStreamConfig{Stream: "LATE", Create: true},
		Spool: SpoolConfig{Dir: t.TempDir()}})
	var created []string
	for i := range 10 {
		e := sampleEvent(event.TrackEnded, "p", "s", i)
		created = append(created, e.ID)
		if err := s.Write(context.Background(), frameWith("s", e)); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Pending != 10 || st.Connected {
		t.Fatalf("before the server starts: %+v", st)
	}
	srv := runServer(t, &server.Options{Port: port})
	waitFor(t, 15*time.Second, "spooled events delivered", func() bool { return s.Stats().Pending == 0 })
	checkExactlyOnce(t, created, streamIDs(t, srv.ClientURL(), "LATE"))
}
