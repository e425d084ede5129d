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

// sotwStream behaves like one Envoy on a state-of-the-world ADS stream: CDS and LDS are
// wildcard, EDS and RDS follow the names the clusters and listeners reference.
type sotwStream struct {
	index    int
	node     *corev3.Node
	stats    *streamStats
	counters *typeCounters
	shared   *sharedNames
	ackable  func(int, string) bool

	stream   discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	nodeSent bool
	names    map[string][]string // subscribed names of EDS and RDS
	version  map[string]string   // last ACKed version per type
	nonce    map[string]string   // last nonce per type
	ldsSent  bool
	routes   routeFollower
}

func (s *sotwStream) run(ctx context.Context, conn *grpc.ClientConn) error {
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("open sotw stream: %w", err)
	}
	s.stream = st
	s.names, s.version, s.nonce = map[string][]string{}, map[string]string{}, map[string]string{}
	s.stats.start(time.Now())
	if err := s.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType}); err != nil {
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

func (s *sotwStream) send(req *discoveryv3.DiscoveryRequest) error {
	if !s.nodeSent {
		req.Node, s.nodeSent = s.node, true
	}
	if err := s.stream.Send(req); err != nil {
		return fmt.Errorf("send %s request: %w", shortType(req.GetTypeUrl()), err)
	}
	return nil
}

// handle ACKs (or NACKs) a response, then moves the dependent subscription, in the order
// Envoy does: the parent's ACK first, the new child names after.
func (s *sotwStream) handle(resp *discoveryv3.DiscoveryResponse) error {
	t, version := resp.GetTypeUrl(), resp.GetVersionInfo()
	s.counters.add(t, len(resp.GetResources()), proto.Size(resp))
	s.stats.received(t, version, time.Now())
	s.nonce[t] = resp.GetNonce()

	dep, hasDep := dependent[t]
	var refs []string
	scoped := false
	if hasDep {
		for _, r := range resp.GetResources() {
			names, sc, err := referencedNames(t, r)
			if err != nil {
				return s.nack(resp, err)
			}
			refs, scoped = append(refs, names...), scoped || sc
		}
	}
	if s.ackable != nil && !s.ackable(s.index, t) {
		return nil
	}
	if err := s.send(&discoveryv3.DiscoveryRequest{TypeUrl: t, VersionInfo: version, ResponseNonce: resp.GetNonce(), ResourceNames: s.names[t]}); err != nil {
		return err
	}
	s.version[t] = version
	s.stats.acked(t, version, time.Now())
	switch {
	case t == resourcev3.ListenerType:
		s.routes.listeners(refs, scoped)
		if err := s.followScopes(scoped); err != nil {
			return err
		}
	case t == resourcev3.ScopedRouteType:
		s.routes.scopes(refs)
	case hasDep:
		if err := s.follow(dep, sortedUnique(refs)); err != nil {
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
		return s.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ListenerType})
	}
	return nil
}

// followScopes subscribes to every route scope once a listener uses scoped routes, as
// Envoy does; a stream whose listeners use none has no scopes to wait for.
func (s *sotwStream) followScopes(scoped bool) error {
	if !scoped {
		s.stats.nothingToSubscribe(resourcev3.ScopedRouteType, time.Now())
		return nil
	}
	if _, sent := s.version[resourcev3.ScopedRouteType]; sent || s.routes.scopesAsked {
		return nil
	}
	s.routes.scopesAsked = true
	return s.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ScopedRouteType})
}

// follow changes the subscription of t to names, keeping the last ACKed version and
// nonce so the server sees an update, not a new stream.
func (s *sotwStream) follow(t string, names []string) error {
	prev, subscribed := s.names[t]
	if subscribed && sameNames(prev, names) {
		return nil
	}
	if !subscribed && len(names) == 0 {
		// An empty first request would be a wildcard; Envoy sends nothing.
		s.stats.nothingToSubscribe(t, time.Now())
		return nil
	}
	names = s.shared.share(t, names)
	s.names[t] = names
	return s.send(&discoveryv3.DiscoveryRequest{TypeUrl: t, VersionInfo: s.version[t], ResponseNonce: s.nonce[t], ResourceNames: names})
}

func (s *sotwStream) nack(resp *discoveryv3.DiscoveryResponse, cause error) error {
	t := resp.GetTypeUrl()
	return s.send(&discoveryv3.DiscoveryRequest{
		TypeUrl: t, VersionInfo: s.version[t], ResponseNonce: resp.GetNonce(), ResourceNames: s.names[t],
		ErrorDetail: &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: cause.Error()},
	})
}
