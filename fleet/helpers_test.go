package fleet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// runCluster starts n in-process nats-servers with JetStream routed into one
// cluster on loopback. Servers do not advertise each other to clients, so a
// client reaches only the URLs it is given (the proxy test relies on it).
func runCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	ports := make([]int, n)
	var routes []*url.URL
	for i := range ports {
		ports[i] = freePort(t)
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])})
	}
	srvs := make([]*server.Server, n)
	for i := range srvs {
		opts := &server.Options{
			ServerName: fmt.Sprintf("s%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Routes: routes,
		}
		if n > 1 {
			opts.Cluster = server.ClusterOpts{Name: "osprey-fleet", Host: "127.0.0.1", Port: ports[i], NoAdvertise: true}
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("nats-server: %v", err)
		}
		go s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server did not start")
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		srvs[i] = s
	}
	return srvs
}

func urls(srvs []*server.Server) string {
	var out []string
	for _, s := range srvs {
		if s.Running() {
			out = append(out, s.ClientURL())
		}
	}
	return strings.Join(out, ",")
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proxy is a loopback TCP proxy the test can cut: every connection through
// it is closed and new ones are refused until Restore.
type proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t testing.TB, target string) *proxy {
	p := &proxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

func (p *proxy) URL() string { return "nats://" + p.addr }

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
}

// Cut closes the listener and every connection.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore listens again on the same address.
func (p *proxy) Restore(t testing.TB) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}

// span is one interval in which a node ran a camera.
type span struct {
	node, cam  string
	lease      uint64
	start, end time.Time // end zero: still running
}

// timeline records every node's StartStream and StopStream (the Runner a
// node drives; in the pipeline it is app.App).
type timeline struct {
	mu    sync.Mutex
	spans []span
}

type recorder struct {
	tl   *timeline
	node string
}

func (r recorder) StartStream(id string, lease uint64) error {
	r.tl.mu.Lock()
	defer r.tl.mu.Unlock()
	for _, s := range r.tl.spans {
		if s.node == r.node && s.cam == id && s.end.IsZero() {
			return fmt.Errorf("%s runs %s already", r.node, id)
		}
	}
	r.tl.spans = append(r.tl.spans, span{node: r.node, cam: id, lease: lease, start: time.Now()})
	return nil
}

func (r recorder) StopStream(id string) error {
	r.tl.mu.Lock()
	defer r.tl.mu.Unlock()
	for i := range r.tl.spans {
		if s := &r.tl.spans[i]; s.node == r.node && s.cam == id && s.end.IsZero() {
			s.end = time.Now()
		}
	}
	return nil
}

// running returns camera -> nodes running it now.
func (tl *timeline) running() map[string][]string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := map[string][]string{}
	for _, s := range tl.spans {
		if s.end.IsZero() {
			out[s.cam] = append(out[s.cam], s.node)
		}
	}
	return out
}

// perNode counts running cameras per node.
func (tl *timeline) perNode() map[string]int {
	out := map[string]int{}
	for _, nodes := range tl.running() {
		for _, n := range nodes {
			out[n]++
		}
	}
	return out
}

// starts counts StartStream calls.
func (tl *timeline) starts() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return len(tl.spans)
}

// overlap returns the longest time two nodes ran the same camera at once.
func (tl *timeline) overlap() time.Duration {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	now := time.Now()
	var worst time.Duration
	for i, a := range tl.spans {
		for _, b := range tl.spans[i+1:] {
			if a.cam != b.cam || a.node == b.node {
				continue
			}
			ae, be := a.end, b.end
			if ae.IsZero() {
				ae = now
			}
			if be.IsZero() {
				be = now
			}
			if ae.After(be) {
				ae = be
			}
			if d := ae.Sub(maxTime(a.start, b.start)); d > worst {
				worst = d
			}
		}
	}
	return worst
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// testNode runs one fleet node until the test ends or stop is called.
type testNode struct {
	*Node
	cancel context.CancelFunc
	done   chan struct{}
}

func (tn *testNode) stop() {
	tn.cancel()
	<-tn.done
	tn.Close()
}

// opts are quick fleet timings for tests.
func opts(node, url string, cams []Camera) Options {
	return Options{Pipeline: "t", Node: node, URL: url, LeaseTTL: 2 * time.Second, Heartbeat: 400 * time.Millisecond,
		Rebalance: 500 * time.Millisecond, MinHold: time.Second, Replicas: 1, Cameras: cams}
}

func startNode(t testing.TB, o Options, tl *timeline) *testNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	n, err := Join(ctx, o)
	cancel()
	if err != nil {
		t.Fatalf("join %s: %v", o.Node, err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	tn := &testNode{Node: n, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(tn.done)
		_ = n.Run(ctx, recorder{tl, o.Node})
	}()
	t.Cleanup(func() {
		select {
		case <-tn.done:
		default:
			tn.stop()
		}
	})
	return tn
}

func cameras(n int) []Camera {
	cs := make([]Camera, n)
	for i := range cs {
		cs[i] = Camera{ID: fmt.Sprintf("cam%d", i+1)}
	}
	return cs
}

func sortedKeys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
