package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/osprey-vision/osprey/config"
	"github.com/osprey-vision/osprey/fleet"
	"github.com/osprey-vision/osprey/sink/natsink"
	"github.com/osprey-vision/osprey/sink/preview"
)

// cmdFleet is `pipeline fleet status FILE`.
func cmdFleet(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(os.Stderr, "usage: pipeline fleet status [--json] pipelines/fleet.yaml")
		return 2
	}
	fs := flag.NewFlagSet("fleet status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "give up reaching NATS after this long")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: pipeline fleet status [--json] pipelines/fleet.yaml")
		return 2
	}
	cfg, err := loadPipeline(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if cfg.Fleet == nil {
		fmt.Fprintf(os.Stderr, "pipeline fleet status: %s has no fleet: section (docs/fleet.md)\n", fs.Arg(0))
		return 1
	}
	opts, err := fleetNATSOptions(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline fleet status:", err)
		return 1
	}
	nc, err := fleet.Connect(cfg.FleetURL(), opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline fleet status:", err)
		return 1
	}
	defer nc.Close()
	c, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r, err := fleet.Status(c, nc, cfg.Name, fleetCameras(cfg.Streams))
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline fleet status:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	} else {
		r.Print(os.Stdout)
	}
	return 0
}

// fleetNATSOptions are the connect options of the fleet: the sinks.nats
// credentials when the fleet reuses that connection's URL.
func fleetNATSOptions(cfg *config.Pipeline) ([]nats.Option, error) {
	if cfg.Fleet.NATS != "" {
		return nil, nil
	}
	nc, ok := config.SinkConfig[natsink.Config](cfg, "nats")
	if !ok {
		return nil, nil
	}
	return nc.ClientOptions()
}

// fleetCameras lists the file's streams for placement.
func fleetCameras(streams []config.Stream) []fleet.Camera {
	out := make([]fleet.Camera, len(streams))
	for i, s := range streams {
		out[i] = fleet.Camera{ID: s.ID, Requires: s.Requires}
	}
	return out
}

// fleetNodeName is the node's name: --node, else fleet.node, else the host name.
func fleetNodeName(cfg *config.Pipeline, flagNode string) (string, error) {
	name := flagNode
	if name == "" {
		name = cfg.Fleet.Node
	}
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("no node name: set fleet.node or --node (%v)", err)
		}
		name = h
	}
	if err := config.CheckNodeName(name); err != nil {
		return "", err
	}
	return name, nil
}

// joinFleet registers this process as node in cfg's fleet, before the
// pipeline is built: a duplicate name stops the start before anything
// opens. The node drives the app (Run) once it is built.
func joinFleet(ctx context.Context, cfg *config.Pipeline, node string, log *slog.Logger) (*fleet.Node, error) {
	opts, err := fleetNATSOptions(cfg)
	if err != nil {
		return nil, err
	}
	f := cfg.Fleet
	capacity, labels := f.For(node)
	ui, warn := fleetAdvertise(cfg, node)
	if warn != "" {
		log.Warn("fleet: "+warn, "node", node, "ui", ui)
	}
	n, err := fleet.Join(ctx, fleet.Options{
		Pipeline: cfg.Name, Node: node, URL: cfg.FleetURL(), NATS: opts,
		LeaseTTL: f.LeaseTTL, Heartbeat: f.Heartbeat, Rebalance: f.Rebalance, MinHold: f.MinHold,
		Capacity: capacity, Labels: labels, Replicas: f.Replicas, UI: ui,
		Cameras: fleetCameras(cfg.Streams), Log: log.With("component", "fleet"),
	})
	if err != nil {
		return nil, err
	}
	log.Info("fleet: joined", "node", node, "capacity", capacity, "labels", labels, "cameras", len(cfg.Streams), "ui", ui)
	return n, nil
}

// fleetAdvertise is the web UI URL node advertises in its heartbeat:
// fleet.advertise (or its fleet.nodes entry) when set, else the preview's
// listen address, with the host name standing in for an unspecified host
// (0.0.0.0, ::). warn, when set, says why other nodes' links may not reach
// it (or why there is none although a preview runs).
func fleetAdvertise(cfg *config.Pipeline, node string) (ui, warn string) {
	if a := cfg.Fleet.AdvertiseFor(node); a != "" {
		return a, ""
	}
	pc, ok := config.SinkConfig[preview.Config](cfg, "preview")
	if !ok || pc.Listen == "" {
		return "", ""
	}
	host, port, err := net.SplitHostPort(pc.Listen)
	if err != nil || port == "0" {
		return "", fmt.Sprintf("this node's web UI is not advertised: sinks.preview.listen %q has no fixed port; set fleet.advertise (http://host:port)", pc.Listen)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if host, err = os.Hostname(); err != nil {
			return "", fmt.Sprintf("this node's web UI is not advertised: no host name (%v); set fleet.advertise (http://host:port)", err)
		}
	}
	ui = "http://" + net.JoinHostPort(host, port)
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		// Advertised all the same: nodes on one box link to each other.
		return ui, "sinks.preview.listen is a loopback address: only browsers on this host can follow other nodes' links to it; listen on a LAN address or set fleet.advertise"
	}
	return ui, ""
}
