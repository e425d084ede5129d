package xds

import (
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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

func (a *adsServer) StreamAggregatedResources(st discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	// Own id space, apart from go-control-plane's delta streams (negated in callbacks).
	id := a.streams.Add(1)
	ctx := st.Context()
	if err := a.cb.OnStreamOpen(ctx, id, ""); err != nil {
		return err
	}
	var node *corev3.Node
	var class string // the node's class key, worked out once
	watches := map[string]*sotwWatch{}
	defer func() {
		for _, w := range watches {
			if w.cancel != nil {
				w.cancel()
			}
		}
		a.cb.OnStreamClosed(id, node)
	}()

	reqs := make(chan *discoveryv3.DiscoveryRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := st.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()

	// One channel for every type: responses leave in the order the cache answers, which
	// is CDS, EDS, LDS, RDS for one change.
	out := make(chan cachev3.Response, 2*len(orderedTypes))
	var nonce int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.s.ctx.Done():
			return nil
		case <-recvErr:
			return nil // the proxy went away or the stream broke; nothing to answer
		case resp := <-out:
			t := resp.GetRequest().GetTypeUrl()
			w := watches[t]
			if w == nil || resp.GetRequest() != w.req {
				continue // answers a watch that a newer request replaced
			}
			msg, err := resp.GetDiscoveryResponse()
			if err != nil {
				return status.Errorf(codes.Internal, "build %s response: %v", shortType(t), err)
			}
			nonce++
			msg.Nonce = strconv.FormatInt(nonce, 10)
			w.nonce = msg.Nonce
			w.sub.returned = resp.GetReturnedResources()
			a.cb.OnStreamResponse(ctx, id, w.req, msg)
			if err := st.Send(msg); err != nil {
				return err
			}
		case req := <-reqs:
			if req.GetNode() != nil {
				if node == nil { // Envoy may repeat its node on every request; it does not change
					class = ClassOf(req.GetNode()).Key()
				}
				node = req.GetNode()
			} else if node == nil {
				return status.Error(codes.InvalidArgument, "the first request of a stream must carry the node")
			} else {
				req.Node = node
			}
			t := req.GetTypeUrl()
			if t == "" {
				return status.Error(codes.InvalidArgument, "type_url is required on an ADS stream")
			}
			if err := a.cb.OnStreamRequest(id, req); err != nil {
				return err
			}
			w := watches[t]
			if w != nil && w.nonce != "" && req.GetResponseNonce() != w.nonce {
				continue // answers an older response; the newer one is on its way
			}
			if w == nil {
				w = &sotwWatch{sub: &subscription{legacyWildcard: true}}
				watches[t] = w
			} else if w.cancel != nil {
				w.cancel()
			}
			w.sub.set(req.GetResourceNames())
			w.req = &cachev3.Request{Node: node, TypeUrl: t, VersionInfo: req.GetVersionInfo(),
				ResponseNonce: req.GetResponseNonce(), ErrorDetail: req.GetErrorDetail()}
			w.cancel = a.s.cache.watchClass(class, w.req, w.sub, out)
		}
	}
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
