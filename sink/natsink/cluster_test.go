package natsink

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/osprey-vision/osprey/event"
)

// runCluster starts n in-process servers routed into one JetStream cluster.
func runCluster(t *testing.T, n int) []*server.Server {
	ports := make([]int, n)
	var routes []*url.URL
	for i := range ports {
		ports[i] = freePort(t)
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])})
	}
	srvs := make([]*server.Server, n)
	for i := range srvs {
		srvs[i] = runServer(t, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Cluster:    server.ClusterOpts{Name: "osprey-fleet", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
		})
	}
	return srvs
}

// TestFleetCluster: three pipeline processes ("devices") publish into a
// 3-node cluster holding a 3-replica stream; the stream leader is stopped
// mid-run; every device's events are in the stream exactly once, in order.
func TestFleetCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test takes ~15s")
	}
	srvs := runCluster(t, 3)
	var urls []string
	for _, s := range srvs {
		urls = append(urls, s.ClientURL())
	}
	allURLs := strings.Join(urls, ",")
	js := JetStreamConfig{Stream: "FLEET", Create: true, Subjects: []string{"osprey.*.*.*.*"}, Replicas: 3}

	// Wait for the cluster's JetStream meta leader by creating the stream
	// first, so the leader stop below is the only disturbance
	// (TestConnectBeforeClusterReady covers a sink started before it).
	nc, err := nats.Connect(allURLs)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	jsc, _ := jetstream.New(nc)
	waitFor(t, 20*time.Second, "jetstream cluster ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := jsc.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: js.Stream, Subjects: js.Subjects,
			Replicas: 3, Duplicates: 2 * time.Minute, Storage: jetstream.FileStorage})
		return err == nil
	})

	const devices = 3
	sinks := make([]*Sink, devices)
	created := make([][]string, devices)
	for d := range sinks {
		jc := js
		sinks[d] = newSink(t, Config{URL: allURLs, Pipeline: fmt.Sprintf("dev-%d", d+1), PublishTimeout: time.Second,
			JetStream: &jc, Spool: SpoolConfig{Dir: t.TempDir()}})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for d, s := range sinks {
		wg.Go(func() {
			pipe := fmt.Sprintf("dev-%d", d+1)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				e := sampleEvent(event.Types[i%len(event.Types)], pipe, "cam", i)
				if err := s.Write(context.Background(), frameWith("cam", e)); err != nil {
					t.Errorf("%s write: %v", pipe, err)
					return
				}
				created[d] = append(created[d], e.ID)
			}
		})
	}
	time.Sleep(2 * time.Second)
	// Stop the node leading the stream: the worst one to lose.
	st, err := jsc.Stream(context.Background(), js.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var survivor *server.Server
	for _, s := range srvs {
		if s.Name() == info.Cluster.Leader {
			s.Shutdown()
			s.WaitForShutdown()
		} else {
			survivor = s
		}
	}
	t.Logf("stopped stream leader %s", info.Cluster.Leader)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	for d, s := range sinks {
		waitFor(t, 20*time.Second, fmt.Sprintf("dev-%d drained", d+1), func() bool { return s.Stats().Pending == 0 })
	}

	// A consumer on a surviving node sees every device's events.
	byDevice := map[string][]string{}
	cc, err := nats.Connect(survivor.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cjs, _ := jetstream.New(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cons, err := cjs.OrderedConsumer(ctx, js.Stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range created {
		total += len(c)
	}
	// Keep fetching until every event is read or the deadline passes: right
	// after the leader stops, a fetch can come back empty while the stream
	// elects its new leader, which is not the end of the stream.
	for got := 0; got < total && ctx.Err() == nil; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Logf("fetch: %v (retrying)", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		n := 0
		for m := range batch.Messages() {
			var e event.Event
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				t.Fatal(err)
			}
			byDevice[e.Pipeline] = append(byDevice[e.Pipeline], e.ID)
			n++
		}
		got += n
	}
	for d := range devices {
		pipe := fmt.Sprintf("dev-%d", d+1)
		checkExactlyOnce(t, created[d], byDevice[pipe])
		t.Logf("%s: created %d, consumed %d", pipe, len(created[d]), len(byDevice[pipe]))
	}
}

// TestConnectBeforeClusterReady: a sink whose replicated stream is to be
// created on a cluster with no JetStream quorum yet (one of three servers
// up) starts anyway, spools, and creates the stream and delivers every
// event once the other servers join. Before, Connect failed after
// publish_timeout and the pipeline did not start.
func TestConnectBeforeClusterReady(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test takes ~10s")
	}
	ports := make([]int, 3)
	var routes []*url.URL
	for i := range ports {
		ports[i] = freePort(t)
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])})
	}
	start := func(i int) *server.Server {
		return runServer(t, &server.Options{ServerName: fmt.Sprintf("r%d", i+1),
			Cluster: server.ClusterOpts{Name: "osprey-ready", Host: "127.0.0.1", Port: ports[i]}, Routes: routes})
	}
	first := start(0)
	s := newSink(t, Config{URL: first.ClientURL(), Pipeline: "ready", PublishTimeout: time.Second,
		JetStream: &JetStreamConfig{Stream: "READY", Create: true, Replicas: 3}, Spool: SpoolConfig{Dir: t.TempDir()}})
	var created []string
	for i := range 20 {
		e := sampleEvent(event.TrackStarted, "ready", "cam", i)
		if err := s.Write(context.Background(), frameWith("cam", e)); err != nil {
			t.Fatal(err)
		}
		created = append(created, e.ID)
	}
	if st := s.Stats(); st.Accepted != 20 || st.Published != 0 {
		t.Fatalf("before quorum: accepted %d published %d, want 20 and 0", st.Accepted, st.Published)
	}
	start(1)
	start(2)
	waitFor(t, 60*time.Second, "the spooled events delivered", func() bool { return s.Stats().Pending == 0 })
	checkExactlyOnce(t, created, streamIDs(t, first.ClientURL(), "READY"))
	if st := s.Stats(); st.Published != 20 || st.Duplicates != 0 {
		t.Fatalf("published %d duplicates %d, want 20 and 0", st.Published, st.Duplicates)
	}
}
