package xds

import (
	"sort"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/weir-mesh/weir/model"
)

// Nack is the last rejection a proxy sent for one type.
type Nack struct {
	Version string    `json:"version"`
	Error   string    `json:"error"`
	Sources []string  `json:"sources,omitempty"`
	At      time.Time `json:"at"`
}

// TypeStatus is what one proxy has been sent and has accepted for one resource type.
type TypeStatus struct {
	SentVersion  string `json:"sent_version,omitempty"`
	AckedVersion string `json:"acked_version,omitempty"`
	Nacks        int    `json:"nacks"`
	LastNack     *Nack  `json:"last_nack,omitempty"`

	nackedVersion string
	// nonces holds the nonces of recent responses and the version each carried (delta
	// ACKs carry only the nonce): a small ring, not a map, since every proxy has one per
	// type.
	nonces nonceRing
}

// ProxyStatus describes one connected proxy (one ADS stream).
type ProxyStatus struct {
	NodeID      string                 `json:"node_id"`
	Cluster     string                 `json:"cluster,omitempty"`
	Class       string                 `json:"class"`
	Delta       bool                   `json:"delta"`
	ConnectedAt time.Time              `json:"connected_at"`
	Types       map[string]*TypeStatus `json:"types"`

	streamID int64
	class    model.ProxyClass
}

const maxNonces = 4 // responses of one type in flight on one stream: one or two

// nonceRing remembers the last maxNonces (nonce, version) pairs.
type nonceRing struct {
	next  int
	pairs [maxNonces][2]string
}

func (r *nonceRing) add(nonce, version string) {
	r.pairs[r.next] = [2]string{nonce, version}
	r.next = (r.next + 1) % maxNonces
}

func (r *nonceRing) get(nonce string) (string, bool) {
	for _, p := range r.pairs {
		if p[0] == nonce && nonce != "" {
			return p[1], true
		}
	}
	return "", false
}

// registry tracks every stream's node, class and per-type versions. Waiters are woken
// through a channel that is closed and replaced on every change.
type registry struct {
	mu      sync.Mutex
	proxies map[int64]*ProxyStatus
	byClass map[string]map[int64]*ProxyStatus // class key -> its streams
	changed chan struct{}
}

func newRegistry() *registry {
	return &registry{proxies: map[int64]*ProxyStatus{}, byClass: map[string]map[int64]*ProxyStatus{}}
}

// notifyLocked wakes whoever waits for a change. The channel is made only when someone
// waits: every ACK notifies, and a push to 10,000 proxies would otherwise make (and
// collect) 10,000 channels nobody reads.
func (r *registry) notifyLocked() {
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// watch returns a channel closed at the next change.
func (r *registry) watch() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

// identify records the node of a stream on its first request; it returns the class and
// whether this stream was new.
func (r *registry) identify(streamID int64, node *corev3.Node, delta bool) (model.ProxyClass, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.proxies[streamID]; ok {
		return p.class, false
	}
	class := ClassOf(node)
	p := &ProxyStatus{
		NodeID: node.GetId(), Cluster: node.GetCluster(), Class: class.Key(), Delta: delta,
		ConnectedAt: time.Now().UTC(), Types: map[string]*TypeStatus{}, streamID: streamID, class: class,
	}
	r.proxies[streamID] = p
	if r.byClass[p.Class] == nil {
		r.byClass[p.Class] = map[int64]*ProxyStatus{}
	}
	r.byClass[p.Class][streamID] = p
	r.notifyLocked()
	return class, true
}

// remove forgets a stream and returns its class key and whether it was the class's last
// proxy.
func (r *registry) remove(streamID int64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.proxies[streamID]
	if !ok {
		return "", false
	}
	delete(r.proxies, streamID)
	delete(r.byClass[p.Class], streamID)
	if len(r.byClass[p.Class]) == 0 {
		delete(r.byClass, p.Class)
	}
	r.notifyLocked()
	return p.Class, r.classCountLocked(p.Class) == 0
}

func (r *registry) classCount(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.classCountLocked(key)
}

func (r *registry) classCountLocked(key string) int { return len(r.byClass[key]) }

// class returns a connected proxy's class by key.
func (r *registry) class(key string) (model.ProxyClass, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.byClass[key] {
		return p.class, true
	}
	return model.ProxyClass{}, false
}

func (r *registry) typeStatus(streamID int64, typeURL string) *TypeStatus {
	p, ok := r.proxies[streamID]
	if !ok {
		return nil
	}
	ts, ok := p.Types[shortType(typeURL)]
	if !ok {
		ts = &TypeStatus{}
		p.Types[shortType(typeURL)] = ts
	}
	return ts
}

// holds records the version a reconnecting proxy already has, as if it had ACKed it.
func (r *registry) holds(streamID int64, typeURL, version string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ts := r.typeStatus(streamID, typeURL); ts != nil && ts.AckedVersion == "" {
		ts.AckedVersion = version
		r.notifyLocked()
	}
}

// sent records a response.
func (r *registry) sent(streamID int64, typeURL, version, nonce string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := r.typeStatus(streamID, typeURL)
	if ts == nil {
		return
	}
	ts.SentVersion = version
	ts.nonces.add(nonce, version)
}

// acked records an ACK of the response with the given nonce.
func (r *registry) acked(streamID int64, typeURL, nonce string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := r.typeStatus(streamID, typeURL)
	if ts == nil {
		return
	}
	if v, ok := ts.nonces.get(nonce); ok && v != ts.AckedVersion {
		ts.AckedVersion = v
		r.notifyLocked()
	}
}

// nacked records a NACK and returns the rejected version (empty if the nonce is unknown,
// i.e. it already was recorded).
func (r *registry) nacked(streamID int64, typeURL, nonce string, n Nack) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := r.typeStatus(streamID, typeURL)
	if ts == nil {
		return "", false
	}
	v, ok := ts.nonces.get(nonce)
	if !ok {
		return "", false
	}
	n.Version = v
	ts.Nacks++
	ts.LastNack = &n
	ts.nackedVersion = v
	r.notifyLocked()
	return v, true
}

// nackedVersion is the version a node last rejected for a type, if any.
func (r *registry) nackedVersion(nodeID, typeURL string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.proxies {
		if p.NodeID != nodeID {
			continue
		}
		if ts, ok := p.Types[shortType(typeURL)]; ok && ts.nackedVersion != "" {
			return ts.nackedVersion
		}
	}
	return ""
}

// settled reports whether every proxy of a class has ACKed (or NACKed) the given version
// of each given type it subscribes to.
func (r *registry) settled(classKey string, want map[string]string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.byClass[classKey] {
		for typeURL, version := range want {
			ts, ok := p.Types[shortType(typeURL)]
			if !ok {
				continue // not subscribed to this type
			}
			if ts.AckedVersion != version && ts.nackedVersion != version {
				return false
			}
		}
	}
	return true
}

// list returns a copy of every proxy's status, sorted by node id.
func (r *registry) list() []ProxyStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ProxyStatus, 0, len(r.proxies))
	for _, p := range r.proxies {
		cp := *p
		cp.Types = make(map[string]*TypeStatus, len(p.Types))
		for k, ts := range p.Types {
			t := *ts
			t.nonces = nonceRing{}
			cp.Types[k] = &t
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].NodeID != out[j].NodeID {
			return out[i].NodeID < out[j].NodeID
		}
		return out[i].streamID < out[j].streamID
	})
	return out
}

// classes returns the distinct classes of connected proxies.
func (r *registry) classes() map[string]model.ProxyClass {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]model.ProxyClass, len(r.byClass))
	for key, ps := range r.byClass {
		for _, p := range ps {
			out[key] = p.class
			break
		}
	}
	return out
}

func (r *registry) setNackSources(streamID int64, typeURL string, sources []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ts := r.typeStatus(streamID, typeURL); ts != nil && ts.LastNack != nil {
		ts.LastNack.Sources = sources
	}
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.proxies)
}
