package load

import (
	"sync"
	"sync/atomic"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// versionEvent is when one stream first received a version of a type and when it ACKed it.
type versionEvent struct {
	version  string
	received time.Time
	acked    time.Time // zero until ACKed
}

// streamStats is what one stream saw. The runner reads it while the stream writes, hence
// the lock; it is never held across a gRPC call.
type streamStats struct {
	nodeID string

	mu        sync.Mutex
	started   time.Time
	firstFull time.Time       // zero until every type is ACKed at least once
	ready     map[string]bool // type URL -> ACKed once, or nothing to subscribe to
	events    map[string][]*versionEvent
	err       error
}

func newStreamStats(nodeID string) *streamStats {
	return &streamStats{nodeID: nodeID, ready: map[string]bool{}, events: map[string][]*versionEvent{}}
}

func (s *streamStats) start(now time.Time) {
	s.mu.Lock()
	s.started = now
	s.mu.Unlock()
}

func (s *streamStats) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// eventLocked finds the event of a version, creating it on first receipt.
func (s *streamStats) eventLocked(typeURL, version string, now time.Time) *versionEvent {
	for _, e := range s.events[typeURL] {
		if e.version == version {
			return e
		}
	}
	e := &versionEvent{version: version, received: now}
	s.events[typeURL] = append(s.events[typeURL], e)
	return e
}

func (s *streamStats) received(typeURL, version string, now time.Time) {
	s.mu.Lock()
	s.eventLocked(typeURL, version, now)
	s.mu.Unlock()
}

func (s *streamStats) acked(typeURL, version string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.eventLocked(typeURL, version, now); e.acked.IsZero() {
		e.acked = now
	}
	s.markReadyLocked(typeURL, now)
}

// nothingToSubscribe marks a dependent type ready when its parent references no names,
// as Envoy's init manager does: a mesh of static clusters needs no EDS.
func (s *streamStats) nothingToSubscribe(typeURL string, now time.Time) {
	s.mu.Lock()
	s.markReadyLocked(typeURL, now)
	s.mu.Unlock()
}

func (s *streamStats) markReadyLocked(typeURL string, now time.Time) {
	s.ready[typeURL] = true
	if !s.firstFull.IsZero() {
		return
	}
	for _, t := range allTypes {
		if !s.ready[t] {
			return
		}
	}
	s.firstFull = now
}

// snapshot returns a copy safe to read without the lock.
func (s *streamStats) snapshot() streamView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := streamView{nodeID: s.nodeID, started: s.started, firstFull: s.firstFull, err: s.err, events: map[string][]versionEvent{}}
	for t, es := range s.events {
		for _, e := range es {
			v.events[t] = append(v.events[t], *e)
		}
	}
	return v
}

// streamView is a point-in-time copy of streamStats.
type streamView struct {
	nodeID    string
	started   time.Time
	firstFull time.Time
	err       error
	events    map[string][]versionEvent
}

// lastAcked returns the newest ACKed version of a type at or before t.
func (v streamView) lastAcked(typeURL string, t time.Time) string {
	var best versionEvent
	for _, e := range v.events[typeURL] {
		if !e.acked.IsZero() && !e.acked.After(t) && e.acked.After(best.acked) {
			best = e
		}
	}
	return best.version
}

// firstNewSince returns the first version received after since that differs from base.
func (v streamView) firstNewSince(typeURL, base string, since time.Time) (versionEvent, bool) {
	for _, e := range v.events[typeURL] {
		if e.version != base && !e.received.Before(since) {
			return e, true
		}
	}
	return versionEvent{}, false
}

// byteCounters counts bytes received per type across all streams.
type byteCounters struct {
	cds, eds, lds, rds, other atomic.Int64
}

func (b *byteCounters) add(typeURL string, n int) {
	switch typeURL {
	case resourcev3.ClusterType:
		b.cds.Add(int64(n))
	case resourcev3.EndpointType:
		b.eds.Add(int64(n))
	case resourcev3.ListenerType:
		b.lds.Add(int64(n))
	case resourcev3.RouteType:
		b.rds.Add(int64(n))
	default:
		b.other.Add(int64(n))
	}
}

func (b *byteCounters) byType() map[string]int64 {
	return map[string]int64{"cds": b.cds.Load(), "eds": b.eds.Load(), "lds": b.lds.Load(), "rds": b.rds.Load(), "other": b.other.Load()}
}
