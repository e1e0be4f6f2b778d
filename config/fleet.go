package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Fleet is the `fleet:` section: the pipeline runs as one node of a fleet
// that shares the file's cameras over NATS JetStream key-value buckets
// (package fleet, docs/fleet.md). Every node runs the same file and only the
// streams it holds a lease for.
type Fleet struct {
	// NATS is the server URL list every node reaches (nats://a:4222,...).
	// Empty: the sinks.nats url, with that sink's credentials.
	NATS string `yaml:"nats"`
	// Node names this node; unique in the fleet (default: the host name;
	// `pipeline run --node NAME` overrides it).
	Node string `yaml:"node"`
	// LeaseTTL is how long a camera's lease and a node's heartbeat live
	// without renewal (default 6s): a dead node's cameras move after it.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// Heartbeat is how often a node renews its heartbeat and leases and
	// re-plans (default 1s). lease_ttl must be at least twice as long.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// Capacity is the most cameras a node runs (default 0: no limit).
	Capacity int `yaml:"capacity"`
	// Labels are what a node offers to streams[].requires (gpu, site-a).
	Labels []string `yaml:"labels"`
	// Nodes overrides capacity and labels for named nodes, so one file
	// serves a fleet of unlike boxes.
	Nodes map[string]FleetNode `yaml:"nodes"`
	// Replicas is the key-value buckets' replica count (default 1; 3 on a
	// 3-server cluster, so losing one server loses no lease).
	Replicas int `yaml:"replicas"`
	// Rebalance is the least time between two cameras a node gives away to
	// a less loaded one (default 10s; hysteresis against thrash).
	Rebalance time.Duration `yaml:"rebalance"`
	// MinHold is how long a node keeps a camera before it may give it away
	// in a rebalance (default 30s).
	MinHold time.Duration `yaml:"min_hold"`
	// Advertise is the base URL of a node's web UI (its preview page) that
	// other nodes' fleet pages link to, e.g. http://{node}.cams.lan:8080;
	// {node} becomes the node's name. Empty: derived from
	// sinks.preview.listen (cmd/pipeline), or none without a preview.
	Advertise string `yaml:"advertise"`
}

// FleetNode is one fleet.nodes entry.
type FleetNode struct {
	Capacity *int     `yaml:"capacity"`
	Labels   []string `yaml:"labels"`
	// Advertise overrides fleet.advertise for this node.
	Advertise string `yaml:"advertise"`
}

// Fleet defaults.
const (
	DefaultLeaseTTL  = 6 * time.Second
	DefaultHeartbeat = time.Second
	DefaultRebalance = 10 * time.Second
	DefaultMinHold   = 30 * time.Second
)

// nodeName is what a node name and a label may be: a NATS KV key token.
var nodeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// kvKey is what a stream ID must be to name a lease key.
var kvKey = regexp.MustCompile(`^[-_=A-Za-z0-9]+$`)

// withDefaults fills the unset durations.
func (f *Fleet) withDefaults() {
	if f.LeaseTTL == 0 {
		f.LeaseTTL = DefaultLeaseTTL
	}
	if f.Heartbeat == 0 {
		f.Heartbeat = DefaultHeartbeat
	}
	if f.Replicas == 0 {
		f.Replicas = 1
	}
	if f.Rebalance == 0 {
		f.Rebalance = DefaultRebalance
	}
	if f.MinHold == 0 {
		f.MinHold = DefaultMinHold
	}
}

// For returns the capacity and labels of the node called name: its
// fleet.nodes entry over the section's defaults.
func (f *Fleet) For(name string) (capacity int, labels []string) {
	capacity, labels = f.Capacity, f.Labels
	if n, ok := f.Nodes[name]; ok {
		if n.Capacity != nil {
			capacity = *n.Capacity
		}
		if n.Labels != nil {
			labels = n.Labels
		}
	}
	return capacity, slices.Clone(labels)
}

// AdvertiseFor returns the web UI URL the node called name advertises as
// the file sets it (its fleet.nodes entry over fleet.advertise, {node}
// replaced, no trailing slash), or "" when the file leaves it to the
// preview's listen address.
func (f *Fleet) AdvertiseFor(name string) string {
	a := f.Advertise
	if n, ok := f.Nodes[name]; ok && n.Advertise != "" {
		a = n.Advertise
	}
	return strings.TrimSuffix(strings.ReplaceAll(a, "{node}", name), "/")
}

// checkAdvertise reports why a is not a web UI base URL ("" when it is).
func checkAdvertise(a string) string {
	u, err := url.Parse(strings.ReplaceAll(a, "{node}", "node"))
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Sprintf("%q is not a web UI URL: use http://host:port of this node's preview as other nodes' browsers reach it (e.g. http://{node}.cams.lan:8080; {node} becomes the node name)", a)
	case u.User != nil:
		return fmt.Sprintf("%q carries credentials: browsers get this URL; the preview's token is added by the page", redactURL(a))
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q has a query or fragment: give only scheme://host:port and an optional path prefix", a)
	}
	return ""
}

// FleetURL returns the NATS URL list the fleet connects to: fleet.nats, or
// else the sinks.nats url ("" when neither is set).
func (p *Pipeline) FleetURL() string {
	if p.Fleet == nil {
		return ""
	}
	if p.Fleet.NATS != "" {
		return p.Fleet.NATS
	}
	if s, ok := p.Sink("nats"); ok {
		if u, ok := s.Config.(interface{ ServerURL() string }); ok {
			return u.ServerURL()
		}
	}
	return ""
}

// validateFleet checks the fleet section and streams[].requires.
func (p *Pipeline) validateFleet(add func(path string, err error)) {
	msg := func(path, format string, a ...any) { add(path, fmt.Errorf(format, a...)) }
	f := p.Fleet
	if f == nil {
		for i, s := range p.Streams {
			if len(s.Requires) > 0 {
				msg(fmt.Sprintf("streams[%d].requires", i), "only applies in fleet mode: add a fleet: section (docs/fleet.md), or remove requires")
			}
		}
		return
	}
	f.withDefaults()
	if p.FleetURL() == "" {
		msg("fleet.nats", "fleet mode needs a NATS server every node reaches: set fleet.nats (nats://host:4222) or sinks.nats.url; an embedded server is one node's own")
	} else if f.NATS != "" {
		for _, u := range strings.Split(f.NATS, ",") {
			u = strings.TrimSpace(u)
			scheme, host, ok := strings.Cut(u, "://")
			if !ok || host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, scheme) {
				msg("fleet.nats", "%q is not a server URL: use nats://host:4222 (comma-separated for a cluster)", redactURL(u))
			}
		}
	}
	if f.Node != "" && !nodeName.MatchString(f.Node) {
		msg("fleet.node", "%q is not a node name: use 1-64 letters, digits, '-' and '_'", f.Node)
	}
	if f.Heartbeat <= 0 {
		msg("fleet.heartbeat", "must be > 0, got %s", f.Heartbeat)
	}
	switch {
	case f.LeaseTTL <= 0:
		msg("fleet.lease_ttl", "must be > 0, got %s", f.LeaseTTL)
	case f.Heartbeat > 0 && f.LeaseTTL < 2*f.Heartbeat:
		msg("fleet.lease_ttl", "%s is shorter than two heartbeats (heartbeat %s): a node renews its leases every heartbeat and must stop a camera before its lease expires; use lease_ttl of at least %s (3x heartbeat or more is safer)", f.LeaseTTL, f.Heartbeat, 2*f.Heartbeat)
	}
	if f.Capacity < 0 {
		msg("fleet.capacity", "must be >= 0 (0: no limit), got %d", f.Capacity)
	}
	if f.Replicas < 1 || f.Replicas > 5 {
		msg("fleet.replicas", "must be 1 to 5 (3 on a 3-server cluster), got %d", f.Replicas)
	}
	if f.Rebalance < 0 {
		msg("fleet.rebalance", "must not be negative, got %s", f.Rebalance)
	}
	if f.MinHold < 0 {
		msg("fleet.min_hold", "must not be negative, got %s", f.MinHold)
	}
	if f.Advertise != "" {
		if why := checkAdvertise(f.Advertise); why != "" {
			msg("fleet.advertise", "%s", why)
		}
	}
	checkLabels := func(path string, labels []string) {
		for i, l := range labels {
			if !nodeName.MatchString(l) {
				msg(fmt.Sprintf("%s[%d]", path, i), "%q is not a label: use 1-64 letters, digits, '-' and '_'", l)
			}
		}
	}
	checkLabels("fleet.labels", f.Labels)
	offered := map[string]bool{}
	for _, l := range f.Labels {
		offered[l] = true
	}
	names := make([]string, 0, len(f.Nodes))
	for name := range f.Nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n := f.Nodes[name]
		if !nodeName.MatchString(name) {
			msg("fleet.nodes."+name, "%q is not a node name: use 1-64 letters, digits, '-' and '_'", name)
		}
		if n.Capacity != nil && *n.Capacity < 0 {
			msg("fleet.nodes."+name+".capacity", "must be >= 0 (0: no limit), got %d", *n.Capacity)
		}
		checkLabels("fleet.nodes."+name+".labels", n.Labels)
		if n.Advertise != "" {
			if why := checkAdvertise(n.Advertise); why != "" {
				msg("fleet.nodes."+name+".advertise", "%s", why)
			}
		}
		for _, l := range n.Labels {
			offered[l] = true
		}
	}
	for i, s := range p.Streams {
		if s.ID != "" && !kvKey.MatchString(s.ID) {
			msg(fmt.Sprintf("streams[%d].id", i), "%q can't name a fleet lease: use letters, digits, '-', '_' and '='", s.ID)
		}
		for j, l := range s.Requires {
			path := fmt.Sprintf("streams[%d].requires[%d]", i, j)
			switch {
			case !nodeName.MatchString(l):
				msg(path, "%q is not a label: use 1-64 letters, digits, '-' and '_'", l)
			case !offered[l] && len(f.Nodes) > 0:
				// Labels can only be known here when nodes are listed; a
				// label no listed node offers is most likely a typo.
				msg(path, "no node offers label %q: add it to fleet.labels or to a fleet.nodes entry's labels", l)
			}
		}
	}
}

// redactURL hides a URL's user info for messages.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return scheme + "://***@" + rest[at+1:]
	}
	return u
}

// CheckNodeName reports whether name can name a fleet node.
func CheckNodeName(name string) error {
	if !nodeName.MatchString(name) {
		return fmt.Errorf("node name %q: use 1-64 letters, digits, '-' and '_'", name)
	}
	return nil
}
