package fleet

import (
	"hash/fnv"
	"slices"
	"sort"
	"time"
)

// Camera is one stream of the pipeline file as placement sees it.
type Camera struct {
	ID string
	// Requires lists the labels a node must offer (streams[].requires).
	Requires []string
}

// Member is what a node's heartbeat carries (the value of its key in the
// nodes bucket).
type Member struct {
	Node string `json:"node"`
	// Capacity is the most cameras the node runs (0: no limit).
	Capacity int       `json:"capacity"`
	Labels   []string  `json:"labels,omitempty"`
	Host     string    `json:"host,omitempty"`
	PID      int       `json:"pid,omitempty"`
	Started  time.Time `json:"started"`
	Beat     time.Time `json:"beat"`

	// UI is the base URL of the node's web UI (its preview page), which
	// other nodes' fleet pages link to; empty when it serves none.
	UI string `json:"ui,omitempty"`
}

// Lease is the value of a camera's key in the leases bucket.
type Lease struct {
	Node string `json:"node"`
	// Epoch is the revision the holder acquired the lease at (0 until the
	// first renewal writes it): the fencing token events carry.
	Epoch uint64    `json:"epoch,omitempty"`
	Since time.Time `json:"since"`
}

// offers reports whether labels hold every label of requires.
func offers(labels, requires []string) bool {
	for _, r := range requires {
		if !slices.Contains(labels, r) {
			return false
		}
	}
	return true
}

// view is one node's picture of the fleet: live members and who holds what.
type view struct {
	members map[string]Member
	// holder maps a leased camera to its holder's name.
	holder  map[string]string
	cameras []Camera
}

// count returns how many cameras each member holds.
func (v view) count() map[string]int {
	n := map[string]int{}
	for name := range v.members {
		n[name] = 0
	}
	for _, h := range v.holder {
		n[h]++
	}
	return n
}

// slots is a member's capacity for load comparisons: no limit counts as
// the fleet's camera count, so unlimited nodes compare by cameras held.
func (v view) slots(m Member) int {
	if m.Capacity > 0 {
		return m.Capacity
	}
	return max(len(v.cameras), 1)
}

// free reports whether member m can take one more camera.
func (v view) free(m Member, held int) bool { return m.Capacity == 0 || held < m.Capacity }

// less orders two candidate nodes for camera cam: lower load after taking
// it first, then a hash of camera and node, so every node picks alike.
func (v view) less(cam, a, b string, counts map[string]int) bool {
	la := float64(counts[a]+1) / float64(v.slots(v.members[a]))
	lb := float64(counts[b]+1) / float64(v.slots(v.members[b]))
	if la != lb {
		return la < lb
	}
	return affinity(cam, a) > affinity(cam, b)
}

// affinity is the rendezvous hash of a camera on a node.
func affinity(cam, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(cam))
	h.Write([]byte{0})
	h.Write([]byte(node))
	return h.Sum64()
}

// plan assigns the cameras nobody holds, in ID order, each to the eligible
// member with room and the lowest load after taking it. Every node computes
// it from its own view and acts only on what falls to itself. unplaceable
// lists cameras whose requires no live member offers; waiting those that
// some member could run but none has room for.
func (v view) plan() (assign map[string]string, unplaceable, waiting []string) {
	assign = map[string]string{}
	counts := v.count()
	names := make([]string, 0, len(v.members))
	for name := range v.members {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, c := range v.cameras {
		if _, held := v.holder[c.ID]; held {
			continue
		}
		best, eligible := "", false
		for _, name := range names {
			m := v.members[name]
			if !offers(m.Labels, c.Requires) {
				continue
			}
			eligible = true
			if !v.free(m, counts[name]) {
				continue
			}
			if best == "" || v.less(c.ID, name, best, counts) {
				best = name
			}
		}
		switch {
		case !eligible:
			unplaceable = append(unplaceable, c.ID)
		case best == "":
			waiting = append(waiting, c.ID)
		default:
			assign[c.ID] = best
			counts[best]++
		}
	}
	return assign, unplaceable, waiting
}

// giveAway picks the camera node me should hand to a less loaded member, or
// "" when the fleet is balanced. Hysteresis: a move happens only when me is
// still at least as loaded as the receiver after it ((a-1)/ca >= (b+1)/cb),
// so the reverse move can never be due next; cameras held shorter than
// minHold stay.
func (v view) giveAway(me string, since map[string]time.Time, now time.Time, minHold time.Duration) (cam, to string) {
	counts := v.count()
	a, ca := counts[me], v.slots(v.members[me])
	if a <= 1 {
		return "", ""
	}
	// Receivers that satisfy the hysteresis, least loaded first.
	type recv struct {
		name string
		load float64
	}
	var rs []recv
	for name, m := range v.members {
		if name == me || !v.free(m, counts[name]) {
			continue
		}
		b, cb := counts[name], v.slots(m)
		if float64(a-1)/float64(ca) >= float64(b+1)/float64(cb) {
			rs = append(rs, recv{name, float64(b+1) / float64(cb)})
		}
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].load != rs[j].load {
			return rs[i].load < rs[j].load
		}
		return rs[i].name < rs[j].name
	})
	for _, r := range rs {
		m := v.members[r.name]
		var best uint64
		for _, c := range v.cameras {
			if v.holder[c.ID] != me || !offers(m.Labels, c.Requires) || now.Sub(since[c.ID]) < minHold {
				continue
			}
			if h := affinity(c.ID, r.name); cam == "" || h > best {
				cam, best = c.ID, h
			}
		}
		if cam != "" {
			return cam, r.name
		}
	}
	return "", ""
}
