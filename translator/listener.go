package translator

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/weir-mesh/weir/model"
)

// outboundListener is the sidecar's single outbound HTTP listener. The application sends
// plain HTTP to it; the Host header, without its port, picks a route scope and so the
// route configuration of one service, and the full Host header then picks the virtual
// host in it. Scopes and route configurations arrive over the same ADS stream.
//
// With allowAny (Sidecar outboundTrafficPolicy ALLOW_ANY), requests for hosts weir does
// not know pass through to them (see passthrough.go); without it they get 404.
func outboundListener(class model.ProxyClass, allowAny bool) *listenerv3.Listener {
	addr, port := class.OutboundAddress, class.OutboundPort
	if addr == "" {
		addr = model.DefaultOutboundAddress
	}
	if port == 0 {
		port = model.DefaultOutboundPort
	}
	hcm := httpConnectionManager()
	if allowAny {
		hcm.HttpFilters = append(passthroughFilters(), hcm.HttpFilters...)
	}
	return &listenerv3.Listener{
		Name:    outboundListenerName,
		Address: socketAddress(addr, port),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typedConfig(hcm)},
			}},
		}},
	}
}

func httpConnectionManager() *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: outboundListenerName,
		RouteSpecifier: &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcmv3.ScopedRoutes{
			Name:            outboundScopesName,
			ScopeKeyBuilder: hostScopeKey(),
			RdsConfigSource: adsConfigSource(),
			ConfigSpecifier: &hcmv3.ScopedRoutes_ScopedRds{ScopedRds: &hcmv3.ScopedRds{ScopedRdsConfigSource: adsConfigSource()}},
		}},
		HttpFilters: httpFilters(),
	}
}

// hostScopeKey keys route scopes by the request's host without its port: ":authority"
// (Host in HTTP/1.1) split at ":", first element.
func hostScopeKey() *hcmv3.ScopedRoutes_ScopeKeyBuilder {
	return &hcmv3.ScopedRoutes_ScopeKeyBuilder{Fragments: []*hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{{
		Type: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_{
			HeaderValueExtractor: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor{
				Name:             ":authority",
				ElementSeparator: ":",
				ExtractType:      &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index{Index: 0},
			},
		},
	}}}
}

func routerFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       "envoy.filters.http.router",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typedConfig(&routerv3.Router{})},
	}
}
