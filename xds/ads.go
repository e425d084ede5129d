package xds

import (
	"context"
	"hash/fnv"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"weak"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-mesh/weir/xds/transport"
)

// adsServer serves state-of-the-world ADS itself and leaves delta to go-control-plane.
//
// go-control-plane keeps, per stream and type, a fresh map of every subscribed name: a
// sidecar's EDS subscription names every cluster of the mesh, so 2,000 sidecars of a
// 1,000-service mesh held 6 million map entries (about 200 MB) describing a handful of
// distinct sets. Here a stream's subscription points at an interned name set shared by
// every stream that subscribes to the same names, and the "returned" maps are the shared,
// never-modified maps of the versions sent.
type adsServer struct {
	serverv3.Server // delta, and the other discovery services
	s               *Server
	cb              *callbacks
	streams         atomic.Int64
}

// sotwWatch is one stream's subscription to one type.
type sotwWatch struct {
	sub    *subscription
	req    *cachev3.Request // the request the open watch answers (names dropped)
	cancel func()
	nonce  string // of the last response sent
}

// StreamAggregatedResources serves a state-of-the-world stream through gRPC-go's
// interface; weir's own transport serves them natively (openSotw) instead, and this
// remains for servers built on grpc.Server.
func (a *adsServer) StreamAggregatedResources(st discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	s, err := a.newSotwStream(st.Context(), st.Send)
	if err != nil {
		return err
	}
	defer s.Close()
	for {
		req, err := st.Recv()
		if err != nil {
			return nil // the proxy went away, the stream broke, or weir is stopping
		}
		if err := s.request(req); err != nil {
			return err
		}
	}
}

// openSotw starts a state-of-the-world stream on weir's transport: its requests arrive on
// the connection's reader goroutine, so a stream at rest costs no goroutine of its own.
func (a *adsServer) openSotw(st *transport.Stream) (transport.Receiver, error) {
	return a.newSotwStream(st.Context(), func(msg *discoveryv3.DiscoveryResponse) error {
		return st.Send(a.s.codec, msg)
	})
}

func (a *adsServer) newSotwStream(ctx context.Context, send func(*discoveryv3.DiscoveryResponse) error) (*sotwStream, error) {
	// Own id space, apart from go-control-plane's delta streams (negated in callbacks).
	id := a.streams.Add(1)
	if err := a.cb.OnStreamOpen(ctx, id, ""); err != nil {
		return nil, err
	}
	return &sotwStream{a: a, id: id, send: send, ctx: ctx, watches: map[string]*sotwWatch{}}, nil
}

// Message handles one encoded request (transport.Receiver).
func (s *sotwStream) Message(b []byte) error {
	req := &discoveryv3.DiscoveryRequest{}
	if err := unmarshalRequest(b, req); err != nil {
		return status.Errorf(codes.InvalidArgument, "decode request: %v", err)
	}
	return s.request(req)
}

// sotwStream is one state-of-the-world ADS stream.
type sotwStream struct {
	a    *adsServer
	id   int64
	send func(*discoveryv3.DiscoveryResponse) error
	ctx  context.Context

	mu      sync.Mutex // guards what follows; never held while calling the cache
	node    *corev3.Node
	class   string // the node's class key, worked out once
	watches map[string]*sotwWatch
	nonce   int64
	closed  bool

	qmu     sync.Mutex // guards the queue of responses to write
	queue   []cachev3.Response
	writing bool // a writer goroutine is running
	broken  bool // a write failed: drop the rest
}

// request handles one request: ACK or NACK bookkeeping, then a new watch for its type.
func (s *sotwStream) request(req *discoveryv3.DiscoveryRequest) error {
	s.mu.Lock()
	if req.GetNode() != nil {
		if s.node == nil { // Envoy may repeat its node on every request; it does not change
			s.class = ClassOf(req.GetNode()).Key()
		}
		s.node = req.GetNode()
	} else if s.node == nil {
		s.mu.Unlock()
		return status.Error(codes.InvalidArgument, "the first request of a stream must carry the node")
	} else {
		req.Node = s.node
	}
	node, class := s.node, s.class
	s.mu.Unlock()
	t := req.GetTypeUrl()
	if t == "" {
		return status.Error(codes.InvalidArgument, "type_url is required on an ADS stream")
	}
	if err := s.a.cb.OnStreamRequest(s.id, req); err != nil {
		return err
	}
	s.mu.Lock()
	w := s.watches[t]
	if w != nil && w.nonce != "" && req.GetResponseNonce() != w.nonce {
		s.mu.Unlock()
		return nil // answers an older response; the newer one is on its way
	}
	if w == nil {
		w = &sotwWatch{sub: &subscription{legacyWildcard: true}}
		s.watches[t] = w
	} else if w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
	w.sub.set(req.GetResourceNames())
	wreq := &cachev3.Request{Node: node, TypeUrl: t, VersionInfo: req.GetVersionInfo(),
		ResponseNonce: req.GetResponseNonce(), ErrorDetail: req.GetErrorDetail()}
	w.req = wreq
	sub := *w.sub // the cache reads its own copy; the stream updates what was returned
	s.mu.Unlock()

	// The cache may answer at once, through enqueue; the lock is not held.
	cancel := s.a.s.cache.watchClass(class, wreq, &sub, s.enqueue)
	s.mu.Lock()
	if s.closed {
		cancel() // the stream ended meanwhile
	} else {
		w.cancel = cancel
	}
	s.mu.Unlock()
	return nil
}

// enqueue hands a response to the stream's writer, starting one if none runs. It never
// blocks: the cache calls it while answering many streams.
func (s *sotwStream) enqueue(resp cachev3.Response) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.broken {
		return
	}
	s.queue = append(s.queue, resp)
	if !s.writing {
		s.writing = true
		go s.write()
	}
}

// write sends queued responses in order until none is left.
func (s *sotwStream) write() {
	for {
		s.qmu.Lock()
		if len(s.queue) == 0 || s.broken {
			s.writing = false
			s.queue = nil
			s.qmu.Unlock()
			return
		}
		resp := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.qmu.Unlock()

		msg, req := s.prepare(resp)
		if msg == nil {
			continue
		}
		s.a.cb.OnStreamResponse(s.ctx, s.id, req, msg)
		if err := s.send(msg); err != nil {
			s.qmu.Lock()
			s.broken = true // the stream is gone; its handler sees the same on Recv
			s.qmu.Unlock()
		}
	}
}

// prepare turns a response into the message to send, numbered with the stream's next
// nonce, or returns nil if a newer request has replaced the watch it answers.
func (s *sotwStream) prepare(resp cachev3.Response) (*discoveryv3.DiscoveryResponse, *discoveryv3.DiscoveryRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := resp.GetRequest().GetTypeUrl()
	w := s.watches[t]
	if w == nil || resp.GetRequest() != w.req || s.closed {
		return nil, nil
	}
	msg, err := resp.GetDiscoveryResponse()
	if err != nil { // responses are built from bytes weir marshaled itself
		s.a.s.log.Error("build response", zap.String("type_url", t), zap.Error(err))
		return nil, nil
	}
	s.nonce++
	msg.Nonce = strconv.FormatInt(s.nonce, 10)
	w.nonce = msg.Nonce
	w.sub.returned = resp.GetReturnedResources()
	return msg, w.req
}

// Close ends the stream's watches (transport.Receiver).
func (s *sotwStream) Close() {
	s.mu.Lock()
	s.closed = true
	for _, w := range s.watches {
		if w.cancel != nil {
			w.cancel()
		}
	}
	node := s.node
	s.mu.Unlock()
	s.qmu.Lock()
	s.broken = true
	s.qmu.Unlock()
	s.a.cb.OnStreamClosed(s.id, node)
}

// subscription is a stream's view of one type: wildcard, or an interned set of names,
// plus what the stream was last sent (a shared map; replaced, never modified).
type subscription struct {
	legacyWildcard bool // no name asked for yet: an empty request means everything
	wildcard       bool
	names          *nameSet
	returned       map[string]string
}

var _ cachev3.Subscription = (*subscription)(nil)

func (s *subscription) ReturnedResources() map[string]string { return s.returned }
func (s *subscription) SubscribedResources() map[string]struct{} {
	if s.names == nil {
		return nil
	}
	return s.names.m
}
func (s *subscription) IsWildcard() bool { return s.wildcard }

// set applies the names of a state-of-the-world request, following the xDS rules: an
// empty list is a wildcard until the first name is asked for; "*" asks for everything.
// An ACK usually repeats the names the stream already asks for; that costs no allocation.
func (s *subscription) set(names []string) {
	if s.legacyWildcard && len(names) == 0 {
		s.wildcard = true
		return
	}
	s.legacyWildcard = false
	s.wildcard = false
	if slices.Contains(names, "*") {
		s.wildcard = true
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "*" })
	}
	if s.names == nil || !s.names.equals(names) {
		s.names = internNames(names)
	}
	if !s.wildcard && len(s.returned) > 0 && !s.names.holdsAll(s.returned) {
		// Forget what was sent of names no longer asked for, so that asking again gets
		// them even at an unchanged version. The map is shared: copy, never modify.
		kept := make(map[string]string, len(s.returned))
		for n, v := range s.returned {
			if _, ok := s.names.m[n]; ok {
				kept[n] = v
			}
		}
		s.returned = kept
	}
}

// nameSet is a set of resource names shared by every subscription to exactly those names.
type nameSet struct {
	key uint64
	m   map[string]struct{}
}

var nameSets = struct {
	sync.Mutex
	byKey map[uint64][]weak.Pointer[nameSet]
}{byKey: map[uint64][]weak.Pointer[nameSet]{}}

// internNames returns the shared set of these names (in any order, duplicates allowed).
func internNames(names []string) *nameSet {
	h := fnv.New64a()
	var sum uint64
	for _, n := range names { // order-independent: sum of per-name hashes
		h.Reset()
		h.Write([]byte(n))
		sum += h.Sum64()
	}
	nameSets.Lock()
	defer nameSets.Unlock()
	for _, wp := range nameSets.byKey[sum] {
		if set := wp.Value(); set != nil && set.equals(names) {
			return set
		}
	}
	set := &nameSet{key: sum, m: make(map[string]struct{}, len(names))}
	for _, n := range names {
		set.m[n] = struct{}{}
	}
	nameSets.byKey[sum] = append(nameSets.byKey[sum], weak.Make(set))
	runtime.AddCleanup(set, forgetNameSets, sum)
	return set
}

// forgetNameSets drops the table's dead entries under key.
func forgetNameSets(key uint64) {
	nameSets.Lock()
	defer nameSets.Unlock()
	live := nameSets.byKey[key][:0]
	for _, wp := range nameSets.byKey[key] {
		if wp.Value() != nil {
			live = append(live, wp)
		}
	}
	if len(live) == 0 {
		delete(nameSets.byKey, key)
	} else {
		nameSets.byKey[key] = live
	}
}

// holdsAll reports whether every name of m is in the set.
func (s *nameSet) holdsAll(m map[string]string) bool {
	if len(m) > len(s.m) {
		return false
	}
	for n := range m {
		if _, ok := s.m[n]; !ok {
			return false
		}
	}
	return true
}

func (s *nameSet) equals(names []string) bool {
	for _, n := range names {
		if _, ok := s.m[n]; !ok {
			return false
		}
	}
	// Every name is in the set; the set has no others if it is no larger than the
	// distinct names given.
	if len(s.m) == len(names) {
		return true
	}
	distinct := make(map[string]struct{}, len(names))
	for _, n := range names {
		distinct[n] = struct{}{}
	}
	return len(distinct) == len(s.m)
}

var _ discoveryv3.AggregatedDiscoveryServiceServer = (*adsServer)(nil)
