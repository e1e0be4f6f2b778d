package natsink

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/osprey-vision/osprey/event"
)

// outageEnv sets how long the server stays down in the outage tests: a few
// seconds by default so `go test` stays quick; OSPREY_NATS_OUTAGE=30s runs
// the full 30 s outage.
const outageEnv = "OSPREY_NATS_OUTAGE"

func serverPort(srv *server.Server) int { return srv.Addr().(*net.TCPAddr).Port }

// TestOutageJetStream: events flow, the server is stopped, events are created
// during the outage, the server restarts with the same store dir: every event
// is in the stream exactly once, in creation order.
func TestOutageJetStream(t *testing.T) {
	t.Run("spool", func(t *testing.T) { testOutage(t, envDuration(outageEnv, 3*time.Second), true, 1) })
	// Spool off: the memory queue carries events through an outage too (but
	// not through a crash).
	t.Run("memory", func(t *testing.T) { testOutage(t, time.Second, false, 1) })
	// Acks lost in one outage must not stall publishing after the next.
	t.Run("three outages", func(t *testing.T) { testOutage(t, time.Second, true, 3) })
}

func testOutage(t *testing.T, outage time.Duration, onDisk bool, times int) {
	store := t.TempDir()
	srv := runServer(t, &server.Options{StoreDir: store})
	port := serverPort(srv)
	url := srv.ClientURL()

	cfg := Config{URL: url, Pipeline: "lobby", PublishTimeout: time.Second,
		JetStream: &JetStreamConfig{Stream: "OUTAGE", Create: true}}
	if onDisk {
		cfg.Spool.Dir = t.TempDir()
	}
	s := newSink(t, cfg)

	var (
		mu      sync.Mutex
		created []string
		phase   = "before"
		counts  = map[string]int{}
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond): // ~200 events/s
			}
			e := sampleEvent(event.Types[i%len(event.Types)], "lobby", fmt.Sprintf("cam-%d", i%3), i)
			if err := s.Write(context.Background(), frameWith(e.Stream, e)); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			mu.Lock()
			created = append(created, e.ID)
			counts[phase]++
			mu.Unlock()
		}
	})
	setPhase := func(p string) { mu.Lock(); phase = p; mu.Unlock() }

	time.Sleep(time.Second)
	for range times {
		srv.Shutdown()
		srv.WaitForShutdown()
		setPhase("outage")
		time.Sleep(outage)
		if st := s.Stats(); st.Pending == 0 || st.Connected {
			t.Fatalf("during the outage the sink reports %+v; want spooled events and no connection", st)
		}
		setPhase("after")
		srv = runServer(t, &server.Options{Port: port, StoreDir: store})
		time.Sleep(time.Second)
	}
	srv2 := srv
	close(stop)
	wg.Wait()

	waitFor(t, 30*time.Second, "spool drained", func() bool { return s.Stats().Pending == 0 })
	stored := streamIDs(t, srv2.ClientURL(), "OUTAGE")
	checkExactlyOnce(t, created, stored)
	st := s.Stats()
	t.Logf("spool on disk %v, %d outage(s) of %v: created %d (before %d, during outages %d, after/between %d), stored %d, dropped %d",
		onDisk, times, outage, len(created), counts["before"], counts["outage"], counts["after"], len(stored), st.Dropped)
	if counts["outage"] == 0 || st.Dropped != 0 {
		t.Fatalf("no events created during the outage or some dropped: %+v", st)
	}
}

// The crash test re-executes the test binary as a child that runs a sink and
// writes events until it is killed with SIGKILL.
const crashChildEnv = "OSPREY_NATSINK_CRASH_CHILD"

func crashConfig(url, spoolDir string) Config {
	return Config{URL: url, Pipeline: "crash", PublishTimeout: time.Second,
		JetStream: &JetStreamConfig{Stream: "CRASH", Create: true},
		Spool:     SpoolConfig{Dir: spoolDir}}
}

// TestCrashChild is the child process of TestCrashMidOutage; it does nothing
// in a normal run.
func TestCrashChild(t *testing.T) {
	if os.Getenv(crashChildEnv) == "" {
		t.Skip("helper process for TestCrashMidOutage")
	}
	url, spoolDir, createdPath := os.Getenv("CHILD_URL"), os.Getenv("CHILD_SPOOL"), os.Getenv("CHILD_CREATED")
	s, err := New(crashConfig(url, spoolDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(createdPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		e := sampleEvent(event.Types[i%len(event.Types)], "crash", "cam", i)
		if err := s.Write(context.Background(), frameWith("cam", e)); err != nil {
			t.Fatal(err)
		}
		// Logged only once Write returned: the event is then durable.
		if _, err := f.WriteString(e.ID + "\n"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond)
	}
}

func readLines(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); len(l) == 26 {
			out = append(out, l)
		}
	}
	return out
}

func streamMsgs(url, stream string) uint64 {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// TestCrashMidOutage: a pipeline process publishes, the server goes down,
// the process keeps creating events (spooled) and is killed with SIGKILL in
// the middle of the outage. The server comes back, the pipeline restarts with
// the same spool dir: every event it ever accepted is in the stream exactly
// once, in order.
func TestCrashMidOutage(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("in the child")
	}
	outage := envDuration(outageEnv, 3*time.Second)
	store, spoolDir := t.TempDir(), t.TempDir()
	createdPath := filepath.Join(t.TempDir(), "created.txt")
	srv := runServer(t, &server.Options{StoreDir: store})
	port, url := serverPort(srv), srv.ClientURL()

	child := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.timeout=10m")
	child.Env = append(os.Environ(), crashChildEnv+"=1", "CHILD_URL="+url, "CHILD_SPOOL="+spoolDir, "CHILD_CREATED="+createdPath)
	var out strings.Builder
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			child.Process.Kill()
			child.Wait()
		}
	})
	waitFor(t, 30*time.Second, "child to publish 100 events", func() bool { return streamMsgs(url, "CRASH") >= 100 })

	srv.Shutdown()
	srv.WaitForShutdown()
	atOutage := len(readLines(t, createdPath))
	time.Sleep(outage / 2)
	waitFor(t, 30*time.Second, "child to spool events during the outage", func() bool {
		return len(readLines(t, createdPath)) > atOutage+100
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	killed = true
	created := readLines(t, createdPath)
	time.Sleep(outage / 2)

	srv2 := runServer(t, &server.Options{Port: port, StoreDir: store})
	// The pipeline starts again with the same spool directory.
	s, err := New(crashConfig(srv2.ClientURL(), spoolDir), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	replay := s.Stats().Pending
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "replay after restart", func() bool { return s.Stats().Pending == 0 })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	stored := streamIDs(t, srv2.ClientURL(), "CRASH")
	// The child may have been killed after Write returned but before it
	// logged the ID: at most that one event is stored without being listed.
	if len(stored) == len(created)+1 {
		stored = stored[:len(created)]
	}
	checkExactlyOnce(t, created, stored)
	t.Logf("created %d (%d during the outage before SIGKILL), replayed from spool after restart %d, stored %d",
		len(created), len(created)-atOutage, replay, len(stored))
	if replay == 0 {
		t.Fatalf("nothing was left to replay after the crash; child output:\n%s", out.String())
	}
}
