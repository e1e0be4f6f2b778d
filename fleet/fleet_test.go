package fleet

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// The tests run real nats-servers in process (a 3-server JetStream cluster
// on loopback where the test needs one) and real fleet nodes; the Runner a
// node drives is a recorder of when each node ran each camera.

func TestDuplicateNodeRefused(t *testing.T) {
	srv := runCluster(t, 1)
	tl := &timeline{}
	a := startNode(t, opts("a", urls(srv), cameras(2)), tl)
	waitFor(t, 10*time.Second, "a runs both cameras", func() bool { return tl.perNode()["a"] == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Join(ctx, opts("a", urls(srv), cameras(2)))
	require.ErrorIs(t, err, ErrDuplicateNode)
	require.Contains(t, err.Error(), `node "a" is already running (host `)
	require.Contains(t, err.Error(), "give each node its own fleet.node or `pipeline run --node NAME`")
	require.Less(t, time.Since(start), 2*time.Second, "refused within a few heartbeats, not after lease_ttl")

	// A node that crashed (no clean leave) gets its name back after lease_ttl.
	a.cancel()
	<-a.done // Run's leave deleted the key: simulate a crash by creating it again
	nc, err := nats.Connect(urls(srv))
	require.NoError(t, err)
	defer nc.Close()
	_, err = a.nodes.Create(ctx, "a", []byte(`{"node":"a"}`))
	require.NoError(t, err)
	n, err := Join(ctx, opts("a", urls(srv), cameras(2)))
	require.NoError(t, err, "a stale heartbeat expires and the name is free")
	n.Leave()
	n.Close()
}

func TestBucketTTLMismatch(t *testing.T) {
	srv := runCluster(t, 1)
	startNode(t, opts("a", urls(srv), cameras(1)), &timeline{})
	o := opts("b", urls(srv), cameras(1))
	o.LeaseTTL = 3 * time.Second
	_, err := Join(context.Background(), o)
	require.ErrorIs(t, err, ErrBucketMismatch)
	require.Contains(t, err.Error(), "has a TTL of 2s but fleet.lease_ttl is 3s: every node must run the same file")
}

// The cluster test's lease and heartbeat. Stopping a server that leads a
// replicated bucket stalls renewals until the others elect a new leader,
// after a randomised timeout of several seconds: a 5 s lease fenced one
// node's cameras in a CI run, so the lease outlasts that with room.
const (
	clusterTTL       = 12 * time.Second
	clusterHeartbeat = time.Second
)

// TestFleet runs three nodes on a 3-server cluster with nine cameras:
// placement by capacity and labels, a NATS server stopped (nothing moves),
// one node cut off through a proxy (fencing: it stops its cameras before
// the others take them), and the node back (rebalance, then no moves).
func TestFleet(t *testing.T) {
	srvs := runCluster(t, 3)
	all := urls(srvs)
	cams := cameras(9)
	cams[8].Requires = []string{"gpu"}
	cams = append(cams, Camera{ID: "lidar1", Requires: []string{"lidar"}})
	tl := &timeline{}
	mk := func(name, url string, capacity int, labels ...string) Options {
		o := opts(name, url, cams)
		o.Replicas, o.Capacity, o.Labels = 3, capacity, labels
		// A replicated bucket elects a new leader when a server stops, and
		// renewals wait for it: the lease must outlast an election on a
		// busy box (2 s and 5 s did not in CI runs).
		o.LeaseTTL, o.Heartbeat = clusterTTL, clusterHeartbeat
		return o
	}
	// c reaches the cluster only through a proxy the test can cut.
	px := newProxy(t, strings.TrimPrefix(srvs[2].ClientURL(), "nats://"))
	a := startNode(t, mk("a", all, 4), tl)
	startNode(t, mk("b", all, 4), tl)
	startNode(t, mk("c", px.URL(), 4, "gpu"), tl)
	waitFor(t, 20*time.Second, "nine cameras placed", func() bool { return len(tl.running()) == 9 })
	waitFor(t, 10*time.Second, "3/3/3", func() bool {
		p := tl.perNode()
		return p["a"] == 3 && p["b"] == 3 && p["c"] == 3
	})
	require.Equal(t, []string{"c"}, tl.running()["cam9"], "only c offers gpu")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := Status(ctx, a.nc, "t", cams)
	require.NoError(t, err)
	require.Equal(t, []string{"lidar1"}, r.Unplaceable, "fleet status names the camera no node can run")
	require.Len(t, r.Nodes, 3)

	// Stop one NATS server (not c's): the R3 buckets keep quorum and no
	// camera moves or stops.
	before := tl.starts()
	srvs[0].Shutdown()
	srvs[0].WaitForShutdown()
	time.Sleep(clusterTTL + time.Second) // longer than lease_ttl
	require.Equal(t, before, tl.starts(), "no camera moved while a server was down")
	require.Len(t, tl.running(), 9)
	for cam, nodes := range tl.running() {
		require.Len(t, nodes, 1, cam)
	}

	// Cut c off: it must stop its cameras before their leases expire; a and
	// b take the ones they can (cam9 needs gpu and waits for c).
	cut := time.Now()
	px.Cut()
	waitFor(t, clusterTTL+10*time.Second, "a and b run c's cameras", func() bool {
		run := tl.running()
		return len(run) == 8 && tl.perNode()["c"] == 0
	})
	failover := time.Since(cut)
	require.Zero(t, tl.overlap(), "no camera ran on two nodes at once")
	t.Logf("cut c off: its cameras ran on a and b %v later (lease_ttl %v, heartbeat %v); longest double processing %v", failover.Round(time.Millisecond), clusterTTL, clusterHeartbeat, tl.overlap())
	p := tl.perNode()
	require.LessOrEqual(t, p["a"], 4, "capacity")
	require.LessOrEqual(t, p["b"], 4, "capacity")

	// c comes back: it registers again, takes cam9, and the fleet
	// rebalances a camera or two to it, then stops moving.
	px.Restore(t)
	waitFor(t, 20*time.Second, "c back with cam9 and a share", func() bool {
		p := tl.perNode()
		return len(tl.running()) == 9 && p["c"] >= 2 && p["a"] <= 4 && p["b"] <= 4
	})
	waitFor(t, 20*time.Second, "balanced", func() bool {
		p := tl.perNode()
		return p["a"] == 3 && p["b"] == 3 && p["c"] == 3
	})
	settled := tl.starts()
	steady := 3 * time.Second
	if os.Getenv("OSPREY_FLEET_LONG") != "" {
		steady = 10 * time.Minute
	}
	time.Sleep(steady)
	require.Equal(t, settled, tl.starts(), "no camera moved in %v of steady state", steady)
	require.Zero(t, tl.overlap(), "no camera ran on two nodes at once")
}

func TestCleanStopHandsOver(t *testing.T) {
	srv := runCluster(t, 1)
	tl := &timeline{}
	a := startNode(t, opts("a", urls(srv), cameras(4)), tl)
	waitFor(t, 10*time.Second, "a runs four", func() bool { return tl.perNode()["a"] == 4 })
	startNode(t, opts("b", urls(srv), cameras(4)), tl)
	waitFor(t, 10*time.Second, "rebalanced 2/2", func() bool { p := tl.perNode(); return p["a"] == 2 && p["b"] == 2 })
	stopped := time.Now()
	a.stop()
	waitFor(t, 5*time.Second, "b runs four", func() bool { return tl.perNode()["b"] == 4 })
	took := time.Since(stopped)
	require.Less(t, took, time.Second, "a released its leases: b need not wait for lease_ttl")
	require.Zero(t, tl.overlap())
}
