package load

import (
	"fmt"
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// Type URLs in the order an Envoy asks for them.
var allTypes = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType}

// dependent is the type whose subscription a type's resources decide.
var dependent = map[string]string{
	resourcev3.ClusterType:  resourcev3.EndpointType,
	resourcev3.ListenerType: resourcev3.RouteType,
}

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
	}
	return typeURL
}

// referencedNames returns the names one resource makes its dependent type subscribe to:
// the EDS service name of an EDS cluster, the route configs of a listener's HTTP
// connection managers. Other types reference nothing.
func referencedNames(typeURL string, res *anypb.Any) ([]string, error) {
	switch typeURL {
	case resourcev3.ClusterType:
		return edsNames(res)
	case resourcev3.ListenerType:
		return routeNames(res)
	}
	return nil, nil
}

func edsNames(res *anypb.Any) ([]string, error) {
	var c clusterv3.Cluster
	if err := res.UnmarshalTo(&c); err != nil {
		return nil, fmt.Errorf("decode cluster: %w", err)
	}
	if c.GetType() != clusterv3.Cluster_EDS {
		return nil, nil
	}
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return []string{n}, nil
	}
	return []string{c.GetName()}, nil
}

func routeNames(res *anypb.Any) ([]string, error) {
	var l listenerv3.Listener
	if err := res.UnmarshalTo(&l); err != nil {
		return nil, fmt.Errorf("decode listener: %w", err)
	}
	chains := l.GetFilterChains()
	if l.GetDefaultFilterChain() != nil {
		chains = append(chains, l.GetDefaultFilterChain())
	}
	var names []string
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			tc := f.GetTypedConfig()
			if tc == nil || !tc.MessageIs(&hcmv3.HttpConnectionManager{}) {
				continue
			}
			var hcm hcmv3.HttpConnectionManager
			if err := tc.UnmarshalTo(&hcm); err != nil {
				return nil, fmt.Errorf("decode http connection manager of listener %s: %w", l.GetName(), err)
			}
			if n := hcm.GetRds().GetRouteConfigName(); n != "" {
				names = append(names, n)
			}
		}
	}
	return names, nil
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
