package load

import (
	"context"
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// deltaStream behaves like one Envoy on an incremental ADS stream. It keeps, per type,
// which names each held resource references, since a delta response carries only what
// changed.
type deltaStream struct {
	index    int
	node     *corev3.Node
	stats    *streamStats
	counters *typeCounters
	shared   *sharedNames
	ackable  func(int, string) bool

	stream   discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	nodeSent bool
	held     map[string]nameIndex // type -> resource name -> referenced names
	names    map[string][]string  // subscribed names of EDS and RDS
	scoped   map[string]bool      // listeners that use scoped routes
	ldsSent  bool
	routes   routeFollower
}

func (s *deltaStream) run(ctx context.Context, conn *grpc.ClientConn) error {
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("open delta stream: %w", err)
	}
	s.stream = st
	s.held, s.names, s.scoped = map[string]nameIndex{}, map[string][]string{}, map[string]bool{}
	s.stats.start(time.Now())
	if err := s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType}); err != nil {
		return err
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		if err := s.handle(resp); err != nil {
			return err
		}
	}
}

func (s *deltaStream) send(req *discoveryv3.DeltaDiscoveryRequest) error {
	if !s.nodeSent {
		req.Node, s.nodeSent = s.node, true
	}
	if err := s.stream.Send(req); err != nil {
		return fmt.Errorf("send %s delta request: %w", shortType(req.GetTypeUrl()), err)
	}
	return nil
}

func (s *deltaStream) handle(resp *discoveryv3.DeltaDiscoveryResponse) error {
	t, version := resp.GetTypeUrl(), resp.GetSystemVersionInfo()
	s.counters.add(t, len(resp.GetResources()), proto.Size(resp))
	s.stats.received(t, version, time.Now())
	if err := s.apply(resp); err != nil {
		return s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: resp.GetNonce(),
			ErrorDetail: &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}})
	}
	if s.ackable != nil && !s.ackable(s.index, t) {
		return nil
	}
	if err := s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: resp.GetNonce()}); err != nil {
		return err
	}
	s.stats.acked(t, version, time.Now())
	switch dep, ok := dependent[t]; {
	case t == resourcev3.ListenerType:
		s.routes.listeners(s.held[t].union(), len(s.scoped) > 0)
		if err := s.followScopes(); err != nil {
			return err
		}
	case t == resourcev3.ScopedRouteType:
		s.routes.scopes(s.held[t].union())
	case ok:
		if err := s.follow(dep, s.held[t].union()); err != nil {
			return err
		}
	}
	if t == resourcev3.ListenerType || t == resourcev3.ScopedRouteType {
		if names, ok := s.routes.names(); ok {
			if err := s.follow(resourcev3.RouteType, names); err != nil {
				return err
			}
		}
	}
	if t == resourcev3.ClusterType && !s.ldsSent {
		s.ldsSent = true
		return s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType})
	}
	return nil
}

// apply updates the held resources of a type others depend on (only their references
// are kept); a resource that cannot be decoded fails the whole response, as Envoy
// rejects it.
func (s *deltaStream) apply(resp *discoveryv3.DeltaDiscoveryResponse) error {
	t := resp.GetTypeUrl()
	if _, ok := dependent[t]; !ok {
		return nil
	}
	next := nameIndex{}
	for n, refs := range s.held[t] {
		next[n] = refs
	}
	for _, r := range resp.GetResources() {
		refs, scoped, err := referencedNames(t, r.GetResource())
		if err != nil {
			return err
		}
		next[r.GetName()] = refs
		if t == resourcev3.ListenerType {
			if scoped {
				s.scoped[r.GetName()] = true
			} else {
				delete(s.scoped, r.GetName())
			}
		}
	}
	for _, n := range resp.GetRemovedResources() {
		delete(next, n)
		if t == resourcev3.ListenerType {
			delete(s.scoped, n)
		}
	}
	s.held[t] = next
	return nil
}

// followScopes subscribes to every route scope once a listener uses scoped routes.
func (s *deltaStream) followScopes() error {
	if len(s.scoped) == 0 {
		s.stats.nothingToSubscribe(resourcev3.ScopedRouteType, time.Now())
		return nil
	}
	if s.routes.scopesAsked {
		return nil
	}
	s.routes.scopesAsked = true
	return s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ScopedRouteType})
}

func (s *deltaStream) follow(t string, names []string) error {
	prev, subscribed := s.names[t]
	if subscribed && sameNames(prev, names) {
		return nil
	}
	if !subscribed && len(names) == 0 {
		s.stats.nothingToSubscribe(t, time.Now())
		return nil
	}
	s.names[t] = s.shared.share(t, names)
	sub, unsub := diff(prev, names)
	return s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: t, ResourceNamesSubscribe: sub, ResourceNamesUnsubscribe: unsub})
}
