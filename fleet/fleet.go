// Package fleet runs a pipeline as one node of a fleet that shares the
// pipeline file's cameras over NATS JetStream key-value buckets, so Osprey
// writes no consensus of its own (docs/fleet.md).
//
// Two buckets per pipeline, both with a TTL of lease_ttl:
//
//   - nodes: each node's heartbeat (capacity, labels), created at start
//     (a live node with the same name makes Join fail) and updated every
//     heartbeat by compare-and-set on its revision.
//   - leases: one key per camera, taken by create-if-absent and renewed by
//     compare-and-set every heartbeat; deleted (by revision) on a clean stop
//     or a rebalance; a dead node's keys expire after lease_ttl.
//
// Every node plans from the same view (placement.go): cameras nobody holds
// go to the eligible node with room and the lowest load; a node gives one
// camera at a time to a less loaded one, with hysteresis. Fencing: a node
// stops a camera when its last successful renewal is lease_ttl - heartbeat
// old, before the lease can expire and another node take it.
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors of Join.
var (
	// ErrDuplicateNode: a live node already uses this node's name.
	ErrDuplicateNode = errors.New("fleet: node name in use")
	// ErrBucketMismatch: the fleet's buckets were made with another lease_ttl.
	ErrBucketMismatch = errors.New("fleet: buckets disagree with this file")
)

// Runner is what a node drives: the pipeline (app.App). Both calls may
// block while a stream starts or stops; they are called from the node's
// own goroutines, never concurrently for one stream.
type Runner interface {
	// StartStream starts a camera under lease (its fencing token).
	StartStream(id string, lease uint64) error
	// StopStream stops a camera and waits until its source is closed.
	StopStream(id string) error
}

// Options configures a node.
type Options struct {
	// Pipeline names the buckets (osprey-fleet-<pipeline>-nodes, -leases).
	Pipeline string
	// Node is this node's unique name.
	Node string
	// URL is the NATS server URL list; NATS are extra connect options
	// (credentials, TLS).
	URL  string
	NATS []nats.Option
	// LeaseTTL, Heartbeat, Rebalance and MinHold: see config.Fleet.
	LeaseTTL, Heartbeat, Rebalance, MinHold time.Duration
	// Capacity (0: no limit) and Labels are what this node offers.
	Capacity int
	Labels   []string
	// UI is the base URL of this node's web UI, advertised in its
	// heartbeat (config.Fleet.Advertise); empty: none.
	UI string
	// Replicas is the buckets' replica count.
	Replicas int
	// Cameras are the pipeline's streams.
	Cameras []Camera
	Log     *slog.Logger
	// Metrics registers the node's collectors (nil: none).
	Metrics prometheus.Registerer
}

// holding is one camera this node holds.
type holding struct {
	rev    uint64    // the key's latest revision (for compare-and-set)
	epoch  uint64    // the revision it was acquired at: the fencing token
	since  time.Time // when it was acquired
	lastOK time.Time // when the last successful renewal was sent
}

// Node is one fleet member. Join makes it, Run runs it, Close leaves.
type Node struct {
	o      Options
	log    *slog.Logger
	nc     *nats.Conn
	nodes  jetstream.KeyValue
	leases jetstream.KeyValue
	m      *nodeMetrics

	mu       sync.Mutex
	self     Member
	selfRev  uint64
	cameras  []Camera
	held     map[string]*holding
	lastGive time.Time
	// unheld remembers since when this node has seen a camera without a
	// holder: past two heartbeats any node with room may take it, whatever
	// the plan says (views that disagree must not leave a camera idle).
	unheld  map[string]time.Time
	runner  Runner
	kick    chan struct{}
	closeMu sync.Mutex
	closed  bool
}

// BucketNames returns the nodes and leases bucket names of a pipeline.
func BucketNames(pipeline string) (nodes, leases string) {
	p := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, pipeline)
	return "osprey-fleet-" + p + "-nodes", "osprey-fleet-" + p + "-leases"
}

// Connect dials the fleet's NATS servers with reconnects that never give up.
func Connect(url string, extra ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(2 * time.Second), nats.RetryOnFailedConnect(false)}, extra...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("fleet: connect to %s: %w", redact(url), err)
	}
	return nc, nil
}

// Join connects, opens (or creates) the fleet's buckets and registers this
// node's heartbeat. A live node with the same name fails it with
// ErrDuplicateNode, after waiting up to lease_ttl for the name to free (a
// node that just crashed and is restarting gets its name back).
func Join(ctx context.Context, o Options) (*Node, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	nc, err := Connect(o.URL, append(o.NATS, nats.Name("osprey fleet "+o.Pipeline+" "+o.Node))...)
	if err != nil {
		return nil, err
	}
	n := &Node{o: o, log: o.Log, nc: nc, cameras: slices.Clone(o.Cameras), held: map[string]*holding{},
		unheld: map[string]time.Time{}, kick: make(chan struct{}, 1)}
	if err := n.join(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	n.m = newNodeMetrics(n)
	n.RegisterMetrics(o.Metrics)
	return n, nil
}

// RegisterMetrics registers the node's collectors on reg (nil: none), for a
// registry made after Join.
func (n *Node) RegisterMetrics(reg prometheus.Registerer) {
	if reg != nil {
		n.m.register(reg, n)
	}
}

// Leave deletes the node's heartbeat without running (a start that failed
// after Join), so the name is free at once.
func (n *Node) Leave() { n.leave() }

func (n *Node) join(ctx context.Context) error {
	js, err := jetstream.New(n.nc)
	if err != nil {
		return fmt.Errorf("fleet: jetstream: %w", err)
	}
	nb, lb := BucketNames(n.o.Pipeline)
	if n.nodes, err = n.bucket(ctx, js, nb); err != nil {
		return err
	}
	if n.leases, err = n.bucket(ctx, js, lb); err != nil {
		return err
	}
	host, _ := os.Hostname()
	now := time.Now().UTC()
	n.self = Member{Node: n.o.Node, Capacity: n.o.Capacity, Labels: n.o.Labels, Host: host, PID: os.Getpid(), UI: n.o.UI, Started: now, Beat: now}
	body, _ := json.Marshal(n.self)
	deadline := time.Now().Add(n.o.LeaseTTL + n.o.Heartbeat)
	var seen uint64
	for {
		rev, err := n.nodes.Create(ctx, n.o.Node, body)
		if err == nil {
			n.selfRev = rev
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("fleet: register node %q: %w", n.o.Node, err)
		}
		e, gerr := n.nodes.Get(ctx, n.o.Node)
		if gerr == nil {
			var other Member
			_ = json.Unmarshal(e.Value(), &other)
			if seen != 0 && e.Revision() != seen {
				// Its heartbeat moved on while we waited: a live node.
				return fmt.Errorf("%w: node %q is already running (host %s, pid %d, up since %s, heartbeat %s ago): give each node its own fleet.node or `pipeline run --node NAME`",
					ErrDuplicateNode, n.o.Node, other.Host, other.PID, other.Started.Format(time.RFC3339), time.Since(e.Created()).Round(time.Millisecond))
			}
			seen = e.Revision()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: node %q is registered and its heartbeat did not expire within lease_ttl %s", ErrDuplicateNode, n.o.Node, n.o.LeaseTTL)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(n.o.Heartbeat / 2):
		}
	}
}

// bucket opens the key-value bucket called name, creating it when missing,
// and checks its TTL is this file's lease_ttl.
func (n *Node) bucket(ctx context.Context, js jetstream.JetStream, name string) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{Bucket: name, History: 1, TTL: n.o.LeaseTTL, Replicas: max(n.o.Replicas, 1),
		Storage: jetstream.FileStorage,
		// Expiries leave a marker, so watchers learn of a dead node's leases
		// at once instead of at the next poll.
		LimitMarkerTTL: n.o.LeaseTTL}
	var kv jetstream.KeyValue
	var st jetstream.KeyValueStatus
	var err error
	for attempt := 0; ; attempt++ {
		// Each attempt is bounded: a request into a cluster still electing
		// its JetStream leader gets no answer at all.
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		kv, err = js.KeyValue(c, name)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(c, cfg)
			if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
				// Servers before 2.11: expiries are seen at the next poll.
				cfg.LimitMarkerTTL = 0
				kv, err = js.CreateKeyValue(c, cfg)
			}
		}
		if err == nil {
			// A replicated bucket another node is creating can be found
			// and still answer "stream not found" for a moment.
			st, err = kv.Status(c)
		}
		cancel()
		if errors.Is(err, jetstream.ErrBucketExists) {
			continue
		}
		// A cluster still electing its JetStream leader answers "no
		// responders" or times out for a few seconds, and nodes starting
		// together race to create the bucket ("stream not found" while
		// another's create is under way): retry, bounded.
		if err == nil || attempt > 15 || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("fleet: bucket %s on %s: %w", name, redact(n.o.URL), err)
	}
	if st.TTL() != n.o.LeaseTTL {
		return nil, fmt.Errorf("%w: bucket %s has a TTL of %s but fleet.lease_ttl is %s: every node must run the same file (delete the bucket to change lease_ttl)", ErrBucketMismatch, name, st.TTL(), n.o.LeaseTTL)
	}
	return kv, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.o.Node }

// SetCameras replaces the camera list (after a reload): cameras no longer
// in the file are stopped and released at the next round.
func (n *Node) SetCameras(cams []Camera) {
	n.mu.Lock()
	n.cameras = slices.Clone(cams)
	n.mu.Unlock()
	n.poke()
}

func (n *Node) poke() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Run drives r until ctx is done: it heartbeats, renews, fences, places and
// rebalances. On return every camera is stopped and its lease released,
// and the node's heartbeat is deleted, so other nodes take over at once.
func (n *Node) Run(ctx context.Context, r Runner) error {
	n.mu.Lock()
	n.runner = r
	n.mu.Unlock()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go n.watch(wctx, n.leases)
	go n.watch(wctx, n.nodes)
	var wg sync.WaitGroup
	wg.Go(func() { n.fence(wctx) })

	tick := time.NewTicker(n.o.Heartbeat)
	defer tick.Stop()
	n.round(ctx)
	for {
		select {
		case <-ctx.Done():
			stopWatch()
			wg.Wait()
			n.leave()
			return nil
		case <-tick.C:
			n.round(ctx)
		case <-n.kick:
			n.place(ctx)
		}
	}
}

// watch pokes the planner whenever a key of kv changes (a release, an
// expiry marker, a node joining), so moves need not wait for a heartbeat.
func (n *Node) watch(ctx context.Context, kv jetstream.KeyValue) {
	for ctx.Err() == nil {
		w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(n.o.Heartbeat):
			}
			continue
		}
		for e := range w.Updates() {
			if e != nil && e.Key() != n.o.Node {
				n.poke()
			}
		}
		_ = w.Stop()
	}
}

// round is one heartbeat: beat, renew every lease, then place.
func (n *Node) round(ctx context.Context) {
	n.beat(ctx)
	n.renew(ctx)
	n.place(ctx)
}

// op bounds one key-value call: a call that hangs must not hold the round
// past the next heartbeat.
func (n *Node) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n.o.Heartbeat)
}

// beat renews the node's heartbeat. Lost (it expired while this node was
// cut off, or another node took the name), it is created again.
func (n *Node) beat(ctx context.Context) {
	n.mu.Lock()
	n.self.Beat = time.Now().UTC()
	body, _ := json.Marshal(n.self)
	rev := n.selfRev
	n.mu.Unlock()
	c, cancel := n.op(ctx)
	defer cancel()
	nrev, err := n.nodes.Update(c, n.o.Node, body, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		nrev, err = n.nodes.Create(c, n.o.Node, body)
		if err == nil {
			n.log.Warn("fleet: heartbeat had expired (cut off from NATS?); registered again", "node", n.o.Node)
		}
	}
	if err != nil {
		n.m.errors.WithLabelValues("heartbeat").Inc()
		return
	}
	n.mu.Lock()
	n.selfRev = nrev
	n.mu.Unlock()
}

// renew renews every held lease by compare-and-set. A lease another node
// holds now (its revision moved) stops the camera at once; a call that
// fails otherwise leaves it to fence.
func (n *Node) renew(ctx context.Context) {
	n.mu.Lock()
	type job struct {
		id string
		h  holding
	}
	var jobs []job
	for id, h := range n.held {
		jobs = append(jobs, job{id, *h})
	}
	n.mu.Unlock()
	for _, j := range jobs {
		body, _ := json.Marshal(Lease{Node: n.o.Node, Epoch: j.h.epoch, Since: j.h.since})
		sent := time.Now()
		c, cancel := n.op(ctx)
		rev, err := n.leases.Update(c, j.id, body, j.h.rev)
		cancel()
		switch {
		case err == nil:
			n.mu.Lock()
			if h, ok := n.held[j.id]; ok && h.epoch == j.h.epoch {
				h.rev, h.lastOK = rev, sent
			}
			n.mu.Unlock()
			n.m.renewals.Inc()
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			n.log.Warn("fleet: lease lost, stopping the camera", "stream", j.id, "err", err)
			n.m.lost.WithLabelValues("taken").Inc()
			n.drop(j.id, j.h.epoch)
		default:
			n.m.errors.WithLabelValues("renew").Inc()
		}
	}
}

// fence stops every camera whose last successful renewal is older than
// lease_ttl - heartbeat: its lease may expire within a heartbeat, and the
// camera must be stopped before another node can take it.
func (n *Node) fence(ctx context.Context) {
	t := time.NewTicker(max(n.o.Heartbeat/10, 10*time.Millisecond))
	defer t.Stop()
	limit := n.o.LeaseTTL - n.o.Heartbeat
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		var stale []string
		var epochs []uint64
		for id, h := range n.held {
			if time.Since(h.lastOK) > limit {
				stale = append(stale, id)
				epochs = append(epochs, h.epoch)
			}
		}
		n.mu.Unlock()
		for i, id := range stale {
			n.log.Warn("fleet: cannot renew the lease, fencing the camera before it expires", "stream", id, "lease_ttl", n.o.LeaseTTL)
			n.m.lost.WithLabelValues("fenced").Inc()
			n.drop(id, epochs[i])
		}
	}
}

// drop forgets a holding and stops its camera (not waiting for the stop).
func (n *Node) drop(id string, epoch uint64) {
	n.mu.Lock()
	h, ok := n.held[id]
	if !ok || h.epoch != epoch {
		n.mu.Unlock()
		return
	}
	delete(n.held, id)
	r := n.runner
	n.mu.Unlock()
	if r != nil {
		// RemoveSource cancels the source at once; the wait is for it to close.
		if err := r.StopStream(id); err != nil {
			n.log.Warn("fleet: stop camera", "stream", id, "err", err)
		}
	}
}

// place reads the fleet's view, takes what the plan gives this node and
// gives away one camera when this node is overloaded.
func (n *Node) place(ctx context.Context) {
	v, revs, err := n.view(ctx)
	if err != nil {
		n.m.errors.WithLabelValues("view").Inc()
		return
	}
	now := time.Now()
	assign, unplaceable, waiting := v.plan()
	n.m.setView(v, unplaceable, waiting)

	n.mu.Lock()
	me := n.self
	heldNow := len(n.held)
	for id := range n.unheld {
		if _, ok := assign[id]; !ok && !slices.Contains(waiting, id) {
			delete(n.unheld, id)
		}
	}
	var want []string
	for _, c := range v.cameras {
		owner, ok := assign[c.ID]
		if !ok {
			continue
		}
		first, seen := n.unheld[c.ID]
		if !seen {
			n.unheld[c.ID], first = now, now
		}
		stuck := now.Sub(first) > 2*n.o.Heartbeat
		if owner == n.o.Node || (stuck && offers(me.Labels, c.Requires) && (me.Capacity == 0 || heldNow < me.Capacity)) {
			want = append(want, c.ID)
		}
	}
	// Held cameras no longer in the file: stop and release.
	var gone []string
	for id := range n.held {
		if !slices.ContainsFunc(v.cameras, func(c Camera) bool { return c.ID == id }) {
			gone = append(gone, id)
		}
	}
	since := map[string]time.Time{}
	for id, h := range n.held {
		since[id] = h.since
	}
	canGive := now.Sub(n.lastGive) >= n.o.Rebalance && len(assign) == 0 && len(waiting) == 0
	n.mu.Unlock()

	for _, id := range gone {
		n.release(ctx, id, "removed")
	}
	for _, id := range want {
		if me.Capacity > 0 && n.heldCount() >= me.Capacity {
			break
		}
		n.acquire(ctx, id, revs[id])
	}
	if canGive {
		if cam, to := v.giveAway(n.o.Node, since, now, n.o.MinHold); cam != "" {
			n.log.Info("fleet: rebalancing a camera to a less loaded node", "stream", cam, "to", to)
			n.mu.Lock()
			n.lastGive = now
			n.mu.Unlock()
			n.release(ctx, cam, "rebalance")
		}
	}
}

func (n *Node) heldCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.held)
}

// view lists the live members and the leases. revs holds the revision of
// each lease key as read (unused for creates, kept for diagnostics).
func (n *Node) view(ctx context.Context) (view, map[string]uint64, error) {
	c, cancel := n.op(ctx)
	defer cancel()
	v := view{members: map[string]Member{}, holder: map[string]string{}}
	n.mu.Lock()
	v.cameras = slices.Clone(n.cameras)
	n.mu.Unlock()
	if err := each(c, n.nodes, func(e jetstream.KeyValueEntry) {
		var m Member
		if json.Unmarshal(e.Value(), &m) == nil {
			v.members[e.Key()] = m
		}
	}); err != nil {
		return v, nil, err
	}
	revs := map[string]uint64{}
	if err := each(c, n.leases, func(e jetstream.KeyValueEntry) {
		var l Lease
		if json.Unmarshal(e.Value(), &l) == nil {
			v.holder[e.Key()] = l.Node
			revs[e.Key()] = e.Revision()
		}
	}); err != nil {
		return v, nil, err
	}
	// This node is live whatever the bucket says (its own heartbeat may
	// be mid-renewal), and it counts what it holds.
	n.mu.Lock()
	v.members[n.o.Node] = n.self
	for id := range n.held {
		v.holder[id] = n.o.Node
	}
	n.mu.Unlock()
	return v, revs, nil
}

// each calls fn for every live entry of kv.
func each(ctx context.Context, kv jetstream.KeyValue, fn func(jetstream.KeyValueEntry)) error {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("fleet: watcher closed")
			}
			if e == nil {
				return nil // the initial values are done
			}
			fn(e)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// acquire takes camera id by create-if-absent and starts it.
func (n *Node) acquire(ctx context.Context, id string, _ uint64) {
	now := time.Now()
	body, _ := json.Marshal(Lease{Node: n.o.Node, Since: now.UTC()})
	c, cancel := n.op(ctx)
	rev, err := n.leases.Create(c, id, body)
	cancel()
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			n.m.errors.WithLabelValues("acquire").Inc()
		}
		return
	}
	n.mu.Lock()
	n.held[id] = &holding{rev: rev, epoch: rev, since: now, lastOK: now}
	delete(n.unheld, id)
	r := n.runner
	n.mu.Unlock()
	n.m.acquired.Inc()
	if err := r.StartStream(id, rev); err != nil {
		n.log.Warn("fleet: start camera failed; releasing its lease", "stream", id, "err", err)
		n.release(ctx, id, "failed")
	}
}

// release stops camera id and deletes its lease by revision, so the next
// holder can take it at once.
func (n *Node) release(ctx context.Context, id, why string) {
	n.mu.Lock()
	h, ok := n.held[id]
	if !ok {
		n.mu.Unlock()
		return
	}
	delete(n.held, id)
	r := n.runner
	rev := h.rev
	n.mu.Unlock()
	if r != nil {
		// At a stop the pipeline is ending its streams itself.
		if err := r.StopStream(id); err != nil && why != "stop" {
			n.log.Warn("fleet: stop camera", "stream", id, "err", err)
		}
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.o.Heartbeat)
	defer cancel()
	if err := n.leases.Delete(c, id, jetstream.LastRevision(rev)); err != nil {
		n.log.Warn("fleet: release lease", "stream", id, "err", err)
		return
	}
	n.m.released.WithLabelValues(why).Inc()
}

// leave stops and releases every camera and deletes the heartbeat.
func (n *Node) leave() {
	n.mu.Lock()
	var ids []string
	for id := range n.held {
		ids = append(ids, id)
	}
	rev := n.selfRev
	n.mu.Unlock()
	ctx := context.Background()
	for _, id := range ids {
		n.release(ctx, id, "stop")
	}
	c, cancel := context.WithTimeout(ctx, n.o.Heartbeat)
	defer cancel()
	_ = n.nodes.Delete(c, n.o.Node, jetstream.LastRevision(rev))
}

// Status reads the fleet as `pipeline fleet status` does, through this
// node's connection, with Report.Self naming this node. It only reads.
func (n *Node) Status(ctx context.Context) (Report, error) {
	n.mu.Lock()
	cams := slices.Clone(n.cameras)
	n.mu.Unlock()
	r, err := Status(ctx, n.nc, n.o.Pipeline, cams)
	r.Self = n.o.Node
	return r, err
}

// Held returns the cameras this node holds with their lease epochs.
func (n *Node) Held() map[string]uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]uint64{}
	for id, h := range n.held {
		out[id] = h.epoch
	}
	return out
}

// Close closes the connection (after Run returned). Safe to call twice.
func (n *Node) Close() {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	if n.closed {
		return
	}
	n.closed = true
	n.nc.Close()
}

// redact hides user info in a URL list.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		u = strings.TrimSpace(u)
		if scheme, rest, ok := strings.Cut(u, "://"); ok {
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				u = scheme + "://***@" + rest[at+1:]
			}
		}
		parts[i] = u
	}
	return strings.Join(parts, ",")
}
