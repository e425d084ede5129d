package translator

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	dfpclusterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	dnscachev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/dynamic_forward_proxy/v3"
	dfpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	luav3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Outbound traffic to hosts weir does not know (Sidecar outboundTrafficPolicy ALLOW_ANY).
//
// The sidecar picks a service's routes by the request's host (scoped routes), and a host
// without a scope has no route. With ALLOW_ANY, a small Lua filter runs for exactly those
// requests (every known service's route configuration turns it off): it moves the host
// aside and names the passthrough scope instead, whose one route sends the request to the
// host it named through a dynamic forward proxy cluster. Requests for known hosts never
// run Lua.
const (
	passthroughScopeKey     = "weir-passthrough"
	passthroughRouteConfig  = "outbound|passthrough"
	passthroughClusterName  = "PassthroughCluster"
	passthroughHostHeader   = "x-weir-authority"
	passthroughDNSCacheName = "weir_passthrough"
	luaFilterName           = "envoy.filters.http.lua"
	dfpFilterName           = "envoy.filters.http.dynamic_forward_proxy"
)

// passthroughLua runs only for requests no route serves (see above).
const passthroughLua = `-- weir: ALLOW_ANY passthrough for a host no route serves.
function envoy_on_request(handle)
  local headers = handle:headers()
  headers:replace("` + passthroughHostHeader + `", headers:get(":authority"))
  headers:replace(":authority", "` + passthroughScopeKey + `")
end
`

// passthroughFilters go first in the sidecar's HTTP filters when ALLOW_ANY applies.
func passthroughFilters() []*hcmv3.HttpFilter {
	return []*hcmv3.HttpFilter{
		{
			Name: luaFilterName,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typedConfig(&luav3.Lua{
				DefaultSourceCode: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: passthroughLua}},
			})},
		},
		{
			Name: dfpFilterName,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typedConfig(&dfpv3.FilterConfig{
				ImplementationSpecifier: &dfpv3.FilterConfig_DnsCacheConfig{DnsCacheConfig: passthroughDNSCache()},
			})},
		},
	}
}

func passthroughDNSCache() *dnscachev3.DnsCacheConfig {
	return &dnscachev3.DnsCacheConfig{Name: passthroughDNSCacheName, DnsLookupFamily: clusterv3.Cluster_V4_PREFERRED}
}

// passthroughCluster connects to whatever host a passthrough request named.
func passthroughCluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:           passthroughClusterName,
		ConnectTimeout: durationpb.New(defaultConnectTimeout),
		LbPolicy:       clusterv3.Cluster_CLUSTER_PROVIDED,
		ClusterDiscoveryType: &clusterv3.Cluster_ClusterType{ClusterType: &clusterv3.Cluster_CustomClusterType{
			Name: "envoy.clusters.dynamic_forward_proxy",
			TypedConfig: typedConfig(&dfpclusterv3.ClusterConfig{
				ClusterImplementationSpecifier: &dfpclusterv3.ClusterConfig_DnsCacheConfig{DnsCacheConfig: passthroughDNSCache()},
			}),
		}},
	}
}

// passthroughRoutes is the passthrough scope's route configuration: every request goes to
// the host it originally named.
func passthroughRoutes() *routev3.RouteConfiguration {
	action := routeAction([]weightedDestination{{cluster: passthroughClusterName, weight: 1}}, nil, retryPolicy(nil))
	return &routev3.RouteConfiguration{
		Name: passthroughRouteConfig,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "passthrough",
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: action},
				TypedPerFilterConfig: map[string]*anypb.Any{
					dfpFilterName: typedConfig(&dfpv3.PerRouteConfig{
						HostRewriteSpecifier: &dfpv3.PerRouteConfig_HostRewriteHeader{HostRewriteHeader: passthroughHostHeader},
					}),
				},
				RequestHeadersToRemove: []string{passthroughHostHeader},
			}},
		}},
	}
}

// knownHostOnly keeps the passthrough Lua away from a known service's requests, and ends
// each of its virtual hosts with a 404 so that a request no route of the service matches
// is refused, not passed through.
func knownHostOnly(rc *routev3.RouteConfiguration) {
	rc.TypedPerFilterConfig = map[string]*anypb.Any{luaFilterName: typedConfig(&luav3.LuaPerRoute{
		Override: &luav3.LuaPerRoute_Disabled{Disabled: true},
	})}
	for _, vh := range rc.VirtualHosts {
		vh.Routes = append(vh.Routes, &routev3.Route{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 404}},
		})
	}
}
