package natsink

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/osprey-vision/osprey/sink/spool"
)

// queue is what the publisher drains: the on-disk spool, or memQueue when
// spool.dir is empty. Both keep order, drop the oldest when full and count it.
type queue interface {
	Append(recs ...[]byte) (uint64, error)
	Read(n int) ([]spool.Record, error)
	Rewind()
	Ack(seq uint64) error
	Ready() <-chan struct{}
	Pending() int
	DroppedTotal() uint64
	Close() error
}

// memQueue is the spool-off queue: bounded by bytes, lossy on a crash.
type memQueue struct {
	mu      sync.Mutex
	max     int64
	recs    []spool.Record // unacknowledged, oldest first
	bytes   int64
	next    uint64 // seq of the next Append
	read    int    // index in recs of the next Read
	dropped uint64
	closed  bool
	ready   chan struct{}
}

func newMemQueue(maxBytes int64) *memQueue {
	return &memQueue{max: maxBytes, next: 1, ready: make(chan struct{}, 1)}
}

func (q *memQueue) Append(recs ...[]byte) (uint64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, errors.New("natsink: queue closed")
	}
	for _, r := range recs {
		if int64(len(r)) > q.max/2 {
			return 0, fmt.Errorf("natsink: event of %d bytes is larger than half of spool.max_bytes %d", len(r), q.max)
		}
		for q.bytes+int64(len(r)) > q.max && len(q.recs) > 0 {
			q.bytes -= int64(len(q.recs[0].Data))
			q.recs = q.recs[1:]
			q.dropped++
			if q.read > 0 {
				q.read--
			}
		}
		q.recs = append(q.recs, spool.Record{Seq: q.next, Data: r})
		q.bytes += int64(len(r))
		q.next++
	}
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return q.next - 1, nil
}

func (q *memQueue) Read(n int) ([]spool.Record, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	end := min(q.read+n, len(q.recs))
	out := append([]spool.Record(nil), q.recs[q.read:end]...)
	q.read = end
	return out, nil
}

func (q *memQueue) Rewind() {
	q.mu.Lock()
	q.read = 0
	q.mu.Unlock()
}

func (q *memQueue) Ack(seq uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := 0
	for i < len(q.recs) && q.recs[i].Seq <= seq {
		q.bytes -= int64(len(q.recs[i].Data))
		i++
	}
	q.recs = q.recs[i:]
	q.read = max(q.read-i, 0)
	return nil
}

func (q *memQueue) Ready() <-chan struct{} { return q.ready }

func (q *memQueue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.recs)
}

func (q *memQueue) DroppedTotal() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

func (q *memQueue) Close() error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	return nil
}

// A record is "subject\nmsg-id\nsnapshot-key\nbody-length\n" + body + jpeg:
// what publishing needs, without decoding the event again. snapshot-key and
// jpeg are empty for events without a snapshot.
type record struct {
	subject, id, snapKey string
	body, jpeg           []byte
}

func encodeRecord(r record) []byte {
	b := make([]byte, 0, len(r.subject)+len(r.id)+len(r.snapKey)+16+len(r.body)+len(r.jpeg))
	b = append(b, r.subject...)
	b = append(b, '\n')
	b = append(b, r.id...)
	b = append(b, '\n')
	b = append(b, r.snapKey...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, int64(len(r.body)), 10)
	b = append(b, '\n')
	b = append(b, r.body...)
	return append(b, r.jpeg...)
}

var errBadRecord = errors.New("natsink: malformed spool record")

func decodeRecord(data []byte) (record, error) {
	var f [4][]byte
	for i := range f {
		j := bytes.IndexByte(data, '\n')
		if j < 0 {
			return record{}, errBadRecord
		}
		f[i], data = data[:j], data[j+1:]
	}
	n, err := strconv.Atoi(string(f[3]))
	if err != nil || n < 0 || n > len(data) {
		return record{}, errBadRecord
	}
	return record{subject: string(f[0]), id: string(f[1]), snapKey: string(f[2]), body: data[:n], jpeg: data[n:]}, nil
}
