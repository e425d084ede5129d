package translator

import (
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// HTTP filter names. A route configures a filter for itself under the filter's name in
// its typed_per_filter_config.
const (
	corsFilterName  = "envoy.filters.http.cors"
	faultFilterName = "envoy.filters.http.fault"
)

// httpFilters is the sidecar's HTTP filter chain, in Istio's order: cors, fault, router.
// The cors and fault filters carry no config of their own and do nothing until a route
// gives them one, so routes without corsPolicy or fault are not affected. Faults come
// after CORS so that a preflight is answered even on a route that aborts requests.
func httpFilters() []*hcmv3.HttpFilter {
	return []*hcmv3.HttpFilter{corsFilter(), faultFilter(), routerFilter()}
}

func corsFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       corsFilterName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typedConfig(&corsv3.Cors{})},
	}
}

func faultFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       faultFilterName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typedConfig(&faultv3.HTTPFault{})},
	}
}
