package load

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
)

// Type URLs in the order an Envoy asks for them.
var allTypes = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.ScopedRouteType, resourcev3.RouteType}

// dependent is the type whose subscription a type's resources decide. Route
// configurations are named by listeners (RDS) or by route scopes (scoped RDS); a
// listener with scoped routes also makes the stream subscribe to every scope.
var dependent = map[string]string{
	resourcev3.ClusterType:     resourcev3.EndpointType,
	resourcev3.ListenerType:    resourcev3.RouteType,
	resourcev3.ScopedRouteType: resourcev3.RouteType,
}

// parents are the types whose resources name the route configurations to subscribe to.
var routeParents = []string{resourcev3.ListenerType, resourcev3.ScopedRouteType}

func shortType(typeURL string) string {
	switch typeURL {
	case resourcev3.ClusterType:
		return "cds"
	case resourcev3.EndpointType:
		return "eds"
	case resourcev3.ListenerType:
		return "lds"
	case resourcev3.RouteType:
		return "rds"
	case resourcev3.ScopedRouteType:
		return "srds"
	}
	return typeURL
}

// referencedNames returns the names one resource makes its dependent type subscribe to:
// the EDS service name of an EDS cluster, the route configs of a listener's HTTP
// connection managers or of a route scope. scoped reports a listener whose connection
// managers take their routes from scoped RDS. Other types reference nothing.
func referencedNames(typeURL string, res *anypb.Any) (names []string, scoped bool, err error) {
	switch typeURL {
	case resourcev3.ClusterType:
		names, err = edsNames(res)
		return names, false, err
	case resourcev3.ListenerType:
		return routeNames(res)
	case resourcev3.ScopedRouteType:
		if !res.MessageIs((*routev3.ScopedRouteConfiguration)(nil)) {
			return nil, false, fmt.Errorf("decode route scope: resource is a %s", res.GetTypeUrl())
		}
		name, err := scanScope(res.GetValue())
		if err != nil {
			return nil, false, fmt.Errorf("decode route scope: %w", err)
		}
		if name != "" {
			return []string{name}, false, nil
		}
	}
	return nil, false, nil
}

// scopeRouteConfigName is ScopedRouteConfiguration.route_configuration_name's field number.
const scopeRouteConfigName = 2

// scanScope reads a route scope's route configuration name off the wire: a large mesh has
// thousands of scopes per stream.
func scanScope(b []byte) (name string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", protowire.ParseError(n)
		}
		b = b[n:]
		if num == scopeRouteConfigName && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", protowire.ParseError(n)
			}
			name, b = string(v), b[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return "", protowire.ParseError(n)
		}
		b = b[n:]
	}
	return name, nil
}

// edsNames reads only the three fields it needs off the wire: a CDS response of a large
// mesh holds thousands of clusters per stream, and the load client shares the machine
// with the server it measures.
func edsNames(res *anypb.Any) ([]string, error) {
	if !res.MessageIs((*clusterv3.Cluster)(nil)) {
		return nil, fmt.Errorf("decode cluster: resource is a %s", res.GetTypeUrl())
	}
	name, discovery, service, err := scanCluster(res.GetValue())
	if err != nil {
		return nil, fmt.Errorf("decode cluster: %w", err)
	}
	if discovery != clusterv3.Cluster_EDS {
		return nil, nil
	}
	if service != "" {
		return []string{service}, nil
	}
	return []string{name}, nil
}

// Field numbers of envoy.config.cluster.v3.Cluster and EdsClusterConfig.
const (
	clusterName          = 1 // Cluster.name
	clusterType          = 2 // Cluster.type (oneof cluster_discovery_type)
	clusterEDSConfig     = 3 // Cluster.eds_cluster_config
	clusterCustomType    = 38
	edsConfigServiceName = 2 // EdsClusterConfig.service_name
)

// scanCluster returns a Cluster's name, discovery type and EDS service name, with the
// proto rules: the last value of a scalar wins, and an absent type is STATIC.
func scanCluster(b []byte) (name string, discovery clusterv3.Cluster_DiscoveryType, service string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", 0, "", protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == clusterName && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", 0, "", protowire.ParseError(n)
			}
			name, b = string(v), b[n:]
		case num == clusterType && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return "", 0, "", protowire.ParseError(n)
			}
			discovery, b = clusterv3.Cluster_DiscoveryType(int32(v)), b[n:]
		case num == clusterCustomType && typ == protowire.BytesType:
			// The other member of the oneof: setting it clears type.
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return "", 0, "", protowire.ParseError(n)
			}
			discovery, b = -1, b[n:]
		case num == clusterEDSConfig && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", 0, "", protowire.ParseError(n)
			}
			b = b[n:]
			if sn, ok, err := scanServiceName(v); err != nil {
				return "", 0, "", err
			} else if ok {
				service = sn
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return "", 0, "", protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return name, discovery, service, nil
}

func scanServiceName(b []byte) (name string, found bool, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false, protowire.ParseError(n)
		}
		b = b[n:]
		if num == edsConfigServiceName && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", false, protowire.ParseError(n)
			}
			name, found, b = string(v), true, b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", false, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return name, found, nil
}

func routeNames(res *anypb.Any) (names []string, scoped bool, err error) {
	var l listenerv3.Listener
	if err := res.UnmarshalTo(&l); err != nil {
		return nil, false, fmt.Errorf("decode listener: %w", err)
	}
	chains := l.GetFilterChains()
	if l.GetDefaultFilterChain() != nil {
		chains = append(chains, l.GetDefaultFilterChain())
	}
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			tc := f.GetTypedConfig()
			if tc == nil || !tc.MessageIs(&hcmv3.HttpConnectionManager{}) {
				continue
			}
			var hcm hcmv3.HttpConnectionManager
			if err := tc.UnmarshalTo(&hcm); err != nil {
				return nil, false, fmt.Errorf("decode http connection manager of listener %s: %w", l.GetName(), err)
			}
			if n := hcm.GetRds().GetRouteConfigName(); n != "" {
				names = append(names, n)
			}
			if hcm.GetScopedRoutes().GetScopedRds() != nil {
				scoped = true
			}
		}
	}
	return names, scoped, nil
}

// nameIndex maps each resource of a type to the names it references, so the union can
// be recomputed when a delta response adds or removes a single resource.
type nameIndex map[string][]string

// union returns every referenced name, sorted and unique.
func (ix nameIndex) union() []string {
	set := map[string]bool{}
	for _, names := range ix {
		for _, n := range names {
			set[n] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// sortedUnique sorts names and drops duplicates, in place.
func sortedUnique(names []string) []string {
	slices.Sort(names)
	return slices.Compact(names)
}

// sharedNames lets streams that subscribe to the same names hold one copy of the list:
// the streams of one class all do, and 10,000 copies of a large mesh's EDS names would
// dominate the client's memory. A shared list is never modified.
type sharedNames struct {
	mu     sync.Mutex
	recent [numTypes][][]string // most recent first
}

// maxShared bounds the distinct lists kept per type.
const maxShared = 16

func (c *sharedNames) share(typeURL string, names []string) []string {
	ti := typeIndex(typeURL)
	if c == nil || ti < 0 {
		return names
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lists := c.recent[ti]
	for i, l := range lists {
		if sameNames(l, names) {
			// Move to the front: the next stream of a class likely asks for it again.
			copy(lists[1:i+1], lists[:i])
			lists[0] = l
			return l
		}
	}
	if len(lists) < maxShared {
		lists = append(lists, nil)
	}
	copy(lists[1:], lists[:len(lists)-1])
	lists[0] = names
	c.recent[ti] = lists
	return names
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// diff returns what is in next but not prev (subscribe) and the reverse (unsubscribe).
func diff(prev, next []string) (sub, unsub []string) {
	in := func(s []string, n string) bool {
		i := sort.SearchStrings(s, n)
		return i < len(s) && s[i] == n
	}
	for _, n := range next {
		if !in(prev, n) {
			sub = append(sub, n)
		}
	}
	for _, n := range prev {
		if !in(next, n) {
			unsub = append(unsub, n)
		}
	}
	return sub, unsub
}

// routeFollower works out the route configurations a stream subscribes to: those its
// listeners name, and, once a listener uses scoped routes, those its route scopes name.
// Until the first scopes arrive, the names are not known.
type routeFollower struct {
	fromListeners []string
	fromScopes    []string
	scoped        bool // some listener uses scoped routes
	scopesSeen    bool
	scopesAsked   bool
}

func (f *routeFollower) listeners(names []string, scoped bool) {
	f.fromListeners, f.scoped = names, scoped
}

func (f *routeFollower) scopes(names []string) {
	f.fromScopes, f.scopesSeen = names, true
}

// names returns the route configurations to subscribe to, sorted, or false while the
// scopes that name them are still awaited.
func (f *routeFollower) names() ([]string, bool) {
	if f.scoped && !f.scopesSeen {
		return nil, false
	}
	names := append([]string(nil), f.fromListeners...)
	if f.scoped {
		names = append(names, f.fromScopes...)
	}
	return sortedUnique(names), true
}
