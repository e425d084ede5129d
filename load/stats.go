package load

import (
	"sync"
	"sync/atomic"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// keptVersions bounds the versions a stream remembers per type. A churn phase produces a
// new EDS version per change, and 10,000 streams each keeping every version would grow
// without bound; a change is measured from the versions received after it, which are
// always the newest.
const keptVersions = 4

// numTypes is the number of xDS types a stream follows; typeIndex maps them to 0..4, in
// the order of allTypes.
const numTypes = 5

// typeIndex gives the slot of a type URL in per-type arrays, or -1 for a type the tool
// does not follow.
func typeIndex(typeURL string) int {
	switch typeURL {
	case resourcev3.ClusterType:
		return 0
	case resourcev3.EndpointType:
		return 1
	case resourcev3.ListenerType:
		return 2
	case resourcev3.ScopedRouteType:
		return 3
	case resourcev3.RouteType:
		return 4
	}
	return -1
}

// versionEvent is when one stream first received a version of a type and when it ACKed it.
type versionEvent struct {
	version  string
	received time.Time
	acked    time.Time // zero until ACKed
}

// streamStats is what one stream saw. The session reads it while the stream writes, hence
// the lock; it is never held across a gRPC call. It is kept small: a session holds one
// per stream, and a run may have 10,000.
type streamStats struct {
	nodeID string

	mu        sync.Mutex
	started   time.Time
	firstFull time.Time      // zero until every type is ACKed at least once
	ready     [numTypes]bool // ACKed once, or nothing to subscribe to
	events    [numTypes][]versionEvent
	err       error
}

func newStreamStats(nodeID string) *streamStats {
	return &streamStats{nodeID: nodeID}
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

// eventLocked finds the event of a version, creating it on first receipt and forgetting
// the oldest when more than keptVersions are held.
func (s *streamStats) eventLocked(ti int, version string, now time.Time) *versionEvent {
	es := s.events[ti]
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].version == version {
			return &es[i]
		}
	}
	if len(es) == keptVersions {
		copy(es, es[1:])
		es = es[:keptVersions-1]
	} else if es == nil {
		es = make([]versionEvent, 0, keptVersions)
	}
	es = append(es, versionEvent{version: version, received: now})
	s.events[ti] = es
	return &es[len(es)-1]
}

func (s *streamStats) received(typeURL, version string, now time.Time) {
	ti := typeIndex(typeURL)
	if ti < 0 {
		return
	}
	s.mu.Lock()
	s.eventLocked(ti, version, now)
	s.mu.Unlock()
}

func (s *streamStats) acked(typeURL, version string, now time.Time) {
	ti := typeIndex(typeURL)
	if ti < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.eventLocked(ti, version, now); e.acked.IsZero() {
		e.acked = now
	}
	s.markReadyLocked(ti, now)
}

// nothingToSubscribe marks a dependent type ready when its parent references no names,
// as Envoy's init manager does: a mesh of static clusters needs no EDS.
func (s *streamStats) nothingToSubscribe(typeURL string, now time.Time) {
	ti := typeIndex(typeURL)
	if ti < 0 {
		return
	}
	s.mu.Lock()
	s.markReadyLocked(ti, now)
	s.mu.Unlock()
}

func (s *streamStats) markReadyLocked(ti int, now time.Time) {
	s.ready[ti] = true
	if !s.firstFull.IsZero() {
		return
	}
	for _, r := range s.ready {
		if !r {
			return
		}
	}
	s.firstFull = now
}

// upState is the cheap poll of WaitUp: whether the stream has its first full config and
// whether it has failed.
func (s *streamStats) upState() (up, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.firstFull.IsZero(), s.err != nil
}

// lastAcked returns the newest version of a type ACKed at or before t, "" if none is
// remembered.
func (s *streamStats) lastAcked(ti int, t time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best versionEvent
	for _, e := range s.events[ti] {
		if !e.acked.IsZero() && !e.acked.After(t) && e.acked.After(best.acked) {
			best = e
		}
	}
	return best.version
}

// firstNewSince returns the first version of a type received at or after since that
// differs from base, and whether the stream has failed.
func (s *streamStats) firstNewSince(ti int, base string, since time.Time) (e versionEvent, ok, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events[ti] {
		if e.version != base && !e.received.Before(since) {
			return e, true, s.err != nil
		}
	}
	return versionEvent{}, false, s.err != nil
}

// snapshot returns a copy safe to read without the lock.
func (s *streamStats) snapshot() streamView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := streamView{nodeID: s.nodeID, started: s.started, firstFull: s.firstFull, err: s.err}
	for ti, es := range s.events {
		v.events[ti] = append([]versionEvent(nil), es...)
	}
	return v
}

// streamView is a point-in-time copy of streamStats.
type streamView struct {
	nodeID    string
	started   time.Time
	firstFull time.Time
	err       error
	events    [numTypes][]versionEvent
}

// Counters is what the streams of a session received of one type, summed over streams.
type Counters struct {
	Responses int64 `json:"responses"`
	Resources int64 `json:"resources"` // resources in those responses (delta: added or changed)
	Bytes     int64 `json:"bytes"`     // encoded size of the responses
}

// Sub returns c - o: what was received between two readings.
func (c Counters) Sub(o Counters) Counters {
	return Counters{Responses: c.Responses - o.Responses, Resources: c.Resources - o.Resources, Bytes: c.Bytes - o.Bytes}
}

type typeCounter struct {
	responses, resources, bytes atomic.Int64
}

// typeCounters counts responses, resources and bytes received per type across streams.
type typeCounters struct {
	byType [numTypes]typeCounter
	other  typeCounter
}

func (c *typeCounters) add(typeURL string, resources, bytes int) {
	tc := &c.other
	if ti := typeIndex(typeURL); ti >= 0 {
		tc = &c.byType[ti]
	}
	tc.responses.Add(1)
	tc.resources.Add(int64(resources))
	tc.bytes.Add(int64(bytes))
}

func (tc *typeCounter) load() Counters {
	return Counters{Responses: tc.responses.Load(), Resources: tc.resources.Load(), Bytes: tc.bytes.Load()}
}

// counts returns the counters by short type name; "other" only when something unexpected
// was received.
func (c *typeCounters) counts() map[string]Counters {
	out := make(map[string]Counters, numTypes+1)
	for ti, t := range allTypes {
		out[shortType(t)] = c.byType[ti].load()
	}
	if o := c.other.load(); o.Responses > 0 {
		out["other"] = o
	}
	return out
}

func (c *typeCounters) bytesByType() map[string]int64 {
	out := map[string]int64{"other": c.other.bytes.Load()}
	for ti, t := range allTypes {
		out[shortType(t)] = c.byType[ti].bytes.Load()
	}
	return out
}
