package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Report is the fleet as `pipeline fleet status` shows it.
type Report struct {
	// Self is the node that read it (Node.Status); empty from Status.
	Self    string         `json:"self,omitempty"`
	Nodes   []NodeStatus   `json:"nodes"`
	Cameras []CameraStatus `json:"cameras"`
	// Unplaceable are cameras whose requires no live node offers; Waiting
	// cameras some node could run but none has room for.
	Unplaceable []string `json:"unplaceable"`
	Waiting     []string `json:"waiting"`
}

// NodeStatus is one live node.
type NodeStatus struct {
	Member
	Held int `json:"held"`
	// BeatAge is how long ago its heartbeat was stored.
	BeatAge time.Duration `json:"beat_age_ns"`
}

// CameraStatus is one camera of the file.
type CameraStatus struct {
	ID       string   `json:"id"`
	Requires []string `json:"requires,omitempty"`
	// Node holds it ("" when nobody does); Epoch is its lease's fencing token.
	Node  string `json:"node,omitempty"`
	Epoch uint64 `json:"lease,omitempty"`
	// HeldFor is how long Node has held it; RenewAge how long ago it renewed.
	HeldFor  time.Duration `json:"held_for_ns,omitempty"`
	RenewAge time.Duration `json:"renew_age_ns,omitempty"`
	// Preview links to the camera on its holder's web UI (empty when the
	// holder advertises none, or its heartbeat is gone).
	Preview string `json:"preview,omitempty"`
}

// previewLink is the holder's live page with the camera selected.
func previewLink(ui, camera string) string {
	if ui == "" {
		return ""
	}
	return strings.TrimSuffix(ui, "/") + "/?stream=" + url.QueryEscape(camera)
}

// Status reads the fleet of pipeline through nc.
func Status(ctx context.Context, nc *nats.Conn, pipeline string, cameras []Camera) (Report, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return Report{}, err
	}
	nb, lb := BucketNames(pipeline)
	nodes, err := js.KeyValue(ctx, nb)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return Report{}, fmt.Errorf("fleet: no fleet for pipeline %q on this server (no bucket %s): has a node run with this file?", pipeline, nb)
	}
	if err != nil {
		return Report{}, fmt.Errorf("fleet: bucket %s: %w", nb, err)
	}
	leases, err := js.KeyValue(ctx, lb)
	if err != nil {
		return Report{}, fmt.Errorf("fleet: bucket %s: %w", lb, err)
	}
	now := time.Now()
	v := view{members: map[string]Member{}, holder: map[string]string{}, cameras: cameras}
	ages := map[string]time.Duration{}
	if err := each(ctx, nodes, func(e jetstream.KeyValueEntry) {
		var m Member
		if json.Unmarshal(e.Value(), &m) == nil {
			v.members[e.Key()] = m
			ages[e.Key()] = max(0, now.Sub(e.Created())) // the server stamped it after now
		}
	}); err != nil {
		return Report{}, err
	}
	byID := map[string]CameraStatus{}
	if err := each(ctx, leases, func(e jetstream.KeyValueEntry) {
		var l Lease
		if json.Unmarshal(e.Value(), &l) != nil {
			return
		}
		v.holder[e.Key()] = l.Node
		epoch := l.Epoch
		if epoch == 0 {
			epoch = e.Revision()
		}
		byID[e.Key()] = CameraStatus{ID: e.Key(), Node: l.Node, Epoch: epoch, HeldFor: max(0, now.Sub(l.Since)), RenewAge: max(0, now.Sub(e.Created()))}
	}); err != nil {
		return Report{}, err
	}
	var r Report
	_, r.Unplaceable, r.Waiting = v.plan()
	counts := v.count()
	for name, m := range v.members {
		r.Nodes = append(r.Nodes, NodeStatus{Member: m, Held: counts[name], BeatAge: ages[name]})
	}
	sort.Slice(r.Nodes, func(i, j int) bool { return r.Nodes[i].Node < r.Nodes[j].Node })
	for _, c := range cameras {
		cs := byID[c.ID]
		cs.ID, cs.Requires = c.ID, c.Requires
		if m, ok := v.members[cs.Node]; ok && cs.Node != "" {
			cs.Preview = previewLink(m.UI, c.ID)
		}
		r.Cameras = append(r.Cameras, cs)
	}
	return r, nil
}

// Print writes the report as tables.
func (r Report) Print(w io.Writer) {
	fmt.Fprintf(w, "%-16s %8s %5s %-20s %-10s %s\n", "NODE", "CAPACITY", "HELD", "LABELS", "HEARTBEAT", "HOST")
	for _, n := range r.Nodes {
		capacity := "-"
		if n.Capacity > 0 {
			capacity = fmt.Sprint(n.Capacity)
		}
		ui := ""
		if n.UI != "" {
			ui = " " + n.UI
		}
		fmt.Fprintf(w, "%-16s %8s %5d %-20s %-10s %s (pid %d)%s\n", n.Node, capacity, n.Held, orDash(strings.Join(n.Labels, ",")),
			n.BeatAge.Round(time.Millisecond).String()+" ago", n.Host, n.PID, ui)
	}
	fmt.Fprintf(w, "\n%-20s %-16s %8s %10s %10s %s\n", "CAMERA", "NODE", "LEASE", "HELD FOR", "RENEWED", "REQUIRES")
	for _, c := range r.Cameras {
		held, renewed, lease := "-", "-", "-"
		if c.Node != "" {
			held, renewed, lease = c.HeldFor.Round(time.Second).String(), c.RenewAge.Round(time.Millisecond).String()+" ago", fmt.Sprint(c.Epoch)
		}
		fmt.Fprintf(w, "%-20s %-16s %8s %10s %10s %s\n", c.ID, orDash(c.Node), lease, held, renewed, orDash(strings.Join(c.Requires, ",")))
	}
	if len(r.Unplaceable) > 0 {
		fmt.Fprintf(w, "\nunplaceable (no live node offers their requires): %s\n", strings.Join(r.Unplaceable, ", "))
	}
	if len(r.Waiting) > 0 {
		fmt.Fprintf(w, "\nwaiting for capacity: %s\n", strings.Join(r.Waiting, ", "))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
