package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/osprey-vision/osprey/components"
)

func TestFleetSection(t *testing.T) {
	model := writeModel(t)
	conf := "streams:\n  - {id: a, url: test://}\n  - {id: b, url: test://, requires: [gpu]}\nmodel: {path: " + model + ", format: ssd}\n" +
		"fleet:\n  nats: nats://127.0.0.1:4222\n  capacity: 2\n  nodes:\n    big: {capacity: 8, labels: [gpu]}\n"
	p, err := Parse("p.yaml", []byte(conf), components.Builtin())
	require.NoError(t, err)
	require.NotNil(t, p.Fleet)
	require.Equal(t, DefaultLeaseTTL, p.Fleet.LeaseTTL, "defaults fill what the file leaves out")
	require.Equal(t, DefaultHeartbeat, p.Fleet.Heartbeat)
	require.Equal(t, []string{"gpu"}, p.Streams[1].Requires)
	c, l := p.Fleet.For("big")
	require.Equal(t, 8, c)
	require.Equal(t, []string{"gpu"}, l)
	c, l = p.Fleet.For("small")
	require.Equal(t, 2, c, "a node not listed takes the section's capacity")
	require.Empty(t, l)
	require.Equal(t, "nats://127.0.0.1:4222", p.FleetURL())
	require.Empty(t, p.Fleet.AdvertiseFor("big"), "no advertise: left to the preview's listen address")

	// The sink's url serves when fleet.nats is empty.
	conf = "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\nfleet: {lease_ttl: 3s, heartbeat: 500ms}\nsinks:\n  nats: {url: nats://10.0.0.1:4222}\n"
	p, err = Parse("p.yaml", []byte(conf), components.Builtin())
	require.NoError(t, err)
	require.Equal(t, "nats://10.0.0.1:4222", p.FleetURL())
	require.Equal(t, 500*time.Millisecond, p.Fleet.Heartbeat)
}

func TestFleetErrors(t *testing.T) {
	model := writeModel(t)
	head := "streams:\n  - {id: a, url: test://}\nmodel: {path: " + model + ", format: ssd}\n"
	tests := []struct{ name, conf, err string }{
		{
			name: "lease shorter than two heartbeats",
			conf: head + "fleet:\n  nats: nats://h:4222\n  heartbeat: 2s\n  lease_ttl: 1s\n",
			err:  `p.yaml:7:14: fleet.lease_ttl: 1s is shorter than two heartbeats (heartbeat 2s): a node renews its leases every heartbeat and must stop a camera before its lease expires; use lease_ttl of at least 4s (3x heartbeat or more is safer)`,
		},
		{
			name: "no shared server",
			conf: head + "fleet: {node: a}\n",
			err:  `p.yaml:4:8: fleet.nats: fleet mode needs a NATS server every node reaches: set fleet.nats (nats://host:4222) or sinks.nats.url; an embedded server is one node's own`,
		},
		{
			name: "bad node name",
			conf: head + "fleet: {nats: nats://h:4222, node: a.b}\n",
			err:  `p.yaml:4:36: fleet.node: "a.b" is not a node name: use 1-64 letters, digits, '-' and '_'`,
		},
		{
			name: "bad url",
			conf: head + "fleet: {nats: http://h:4222}\n",
			err:  `p.yaml:4:15: fleet.nats: "http://h:4222" is not a server URL: use nats://host:4222 (comma-separated for a cluster)`,
		},
		{
			name: "requires without fleet",
			conf: "streams:\n  - {id: a, url: test://, requires: [gpu]}\nmodel: {path: " + model + ", format: ssd}\n",
			err:  `p.yaml:2:37: streams[0].requires: only applies in fleet mode: add a fleet: section (docs/fleet.md), or remove requires`,
		},
		{
			name: "requires a label no listed node offers",
			conf: "streams:\n  - {id: a, url: test://, requires: [gpu]}\nmodel: {path: " + model + ", format: ssd}\nfleet:\n  nats: nats://h:4222\n  nodes: {b: {labels: [cpu]}}\n",
			err:  `p.yaml:2:38: streams[0].requires[0]: no node offers label "gpu": add it to fleet.labels or to a fleet.nodes entry's labels`,
		},
		{
			name: "unknown fleet key",
			conf: head + "fleet:\n  nats: nats://h:4222\n  lease: 3s\n",
			err:  `p.yaml:6:3: fleet.lease: unknown field "lease": valid fields here are advertise, capacity, heartbeat, labels, lease_ttl,`,
		},
		{
			name: "negative capacity",
			conf: head + "fleet:\n  nats: nats://h:4222\n  nodes:\n    b: {capacity: -1}\n",
			err:  `p.yaml:7:19: fleet.nodes.b.capacity: must be >= 0 (0: no limit), got -1`,
		},
		{
			name: "advertise not a URL",
			conf: head + "fleet:\n  nats: nats://h:4222\n  advertise: box-a:8080\n",
			err:  `p.yaml:6:14: fleet.advertise: "box-a:8080" is not a web UI URL: use http://host:port of this node's preview as other nodes' browsers reach it (e.g. http://{node}.cams.lan:8080; {node} becomes the node name)`,
		},
		{
			name: "advertise with credentials",
			conf: head + "fleet:\n  nats: nats://h:4222\n  nodes:\n    b: {advertise: \"http://u:pw@b:8080\"}\n",
			err:  `p.yaml:7:20: fleet.nodes.b.advertise: "http://***@b:8080" carries credentials: browsers get this URL; the preview's token is added by the page`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.conf), components.Builtin())
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.err), "got:\n%s\nwant prefix:\n%s", err, tc.err)
		})
	}
}

func TestFleetAdvertise(t *testing.T) {
	model := writeModel(t)
	conf := "streams: [{id: a, url: test://}]\nmodel: {path: " + model + ", format: ssd}\n" +
		"fleet:\n  nats: nats://127.0.0.1:4222\n  advertise: http://{node}.cams.lan:8080/\n  nodes:\n    edge: {advertise: \"https://10.1.2.3/osprey\"}\n"
	p, err := Parse("p.yaml", []byte(conf), components.Builtin())
	require.NoError(t, err)
	require.Equal(t, "http://a.cams.lan:8080", p.Fleet.AdvertiseFor("a"), "{node} is the node's name, the trailing slash goes")
	require.Equal(t, "https://10.1.2.3/osprey", p.Fleet.AdvertiseFor("edge"), "a fleet.nodes entry overrides the section")
}
