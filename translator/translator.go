// Package translator turns a model.Snapshot into the Envoy resources one proxy class needs.
// It is pure: no I/O, no clock, no logging; the same input always gives the same bytes.
package translator

import (
	"cmp"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/weir-mesh/weir/model"
)

// Output is every Envoy resource one proxy class receives, each list sorted by name.
type Output struct {
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	// Scopes map each host name to the route configuration that serves it.
	Scopes []*routev3.ScopedRouteConfiguration
	// Secrets are the TLS certificates a gateway's listeners take from SDS.
	Secrets []*tlsv3.Secret
	// Origins maps an Envoy resource name to the source objects that shaped it, so that a
	// NACK can be attributed to what a user wrote.
	Origins map[string][]model.Ref
}

// Translate builds the resources for one proxy class. It keeps going past bad objects and
// returns partial output plus every diagnostic.
//
// Objects that fail model.ValidateVirtualService or model.ValidateDestinationRule are left
// out (sources are expected to have replaced them by their last good version already).
// A nil snapshot translates like an empty one.
func Translate(snap *model.Snapshot, class model.ProxyClass) (*Output, []model.Diagnostic) {
	if snap == nil {
		snap = &model.Snapshot{}
	}
	diags := &diagnostics{}
	t := &translation{
		class: class,
		w:     newWorld(snap, class, diags),
		diags: diags,
		out:   &Output{Origins: map[string][]model.Ref{}},
	}
	t.buildClusters()
	// A gateway's listeners and routes come from the Gateways that select it; any other
	// role is a sidecar.
	if class.Role == model.RoleGateway {
		t.gateway(snap.Gateways, snap.Secrets)
	} else {
		t.out.Listeners = append(t.out.Listeners, outboundListener(class, t.w.scope.allowAny))
		t.out.Routes, t.out.Scopes = t.routes()
		if t.w.scope.allowAny {
			t.passthrough()
		}
	}
	t.finish()
	return t.out, diags.sorted()
}

// passthrough adds what ALLOW_ANY needs: the passthrough scope, route configuration and
// cluster, and the switch that keeps known services' requests out of it.
func (t *translation) passthrough() {
	for _, rc := range t.out.Routes {
		knownHostOnly(rc)
	}
	t.out.Routes = append(t.out.Routes, passthroughRoutes())
	t.out.Scopes = append(t.out.Scopes, routeScope(passthroughScopeKey, passthroughRouteConfig))
	t.out.Clusters = append(t.out.Clusters, passthroughCluster())
	src := t.w.scope.src.Source
	for _, name := range []string{passthroughRouteConfig, passthroughScopeKey, passthroughClusterName, outboundListenerName} {
		t.origin(name, src)
	}
	slices.SortFunc(t.out.Routes, func(a, b *routev3.RouteConfiguration) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(t.out.Scopes, func(a, b *routev3.ScopedRouteConfiguration) int { return cmp.Compare(a.Name, b.Name) })
}

// translation is the state of one Translate call.
type translation struct {
	class model.ProxyClass
	w     *world
	diags *diagnostics
	out   *Output
	// hashPolicies holds what each consistent-hash cluster hashes on (hashpolicy.go).
	hashPolicies map[string]*routev3.RouteAction_HashPolicy
}

// origin records that refs shaped the resource called name.
func (t *translation) origin(name string, refs ...model.Ref) {
	t.out.Origins[name] = append(t.out.Origins[name], refs...)
}

func (t *translation) finish() {
	slices.SortFunc(t.out.Clusters, func(a, b *clusterv3.Cluster) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(t.out.Endpoints, func(a, b *endpointv3.ClusterLoadAssignment) int {
		return cmp.Compare(a.ClusterName, b.ClusterName)
	})
	for name, refs := range t.out.Origins {
		t.out.Origins[name] = sortedRefs(refs)
	}
}
