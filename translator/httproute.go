package translator

import (
	"fmt"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// httpRoutes translates one VirtualService http route for one virtual host: one Envoy
// route per match entry (entries are OR'ed), all with the same action.
func (t *translation) httpRoutes(vs *model.VirtualService, path string, hr *networking.HTTPRoute, vt vhostTarget) []*routev3.Route {
	action := t.httpRouteAction(vs, path, hr, vt)
	if action == nil {
		return nil
	}
	matches := hr.Match
	if len(matches) == 0 {
		matches = []*networking.HTTPMatchRequest{{}}
	}
	var out []*routev3.Route
	for k, m := range matches {
		t.diags.add(ignoredMatchFields(vs.Source, fmt.Sprintf("%s.match[%d]", path, k), m)...)
		out = append(out, &routev3.Route{
			Name:   routeName(hr.Name, m.Name),
			Match:  routeMatch(m),
			Action: &routev3.Route_Route{Route: proto.Clone(action).(*routev3.RouteAction)},
		})
	}
	return out
}

// httpRouteAction is the forwarding action of an http route, or nil when the route must
// be skipped (the reason is reported).
func (t *translation) httpRouteAction(vs *model.VirtualService, path string, hr *networking.HTTPRoute, vt vhostTarget) *routev3.RouteAction {
	src := vs.Source
	t.diags.add(ignoredFields(src, path, hr, "name", "match", "route", "timeout", "retries",
		"mirror", "mirrorPercent", "mirrorPercentage", "redirect", "directResponse", "delegate")...)
	if action := unsupportedAction(hr); action != "" {
		// Sending these requests to the route's destinations (or anywhere else chosen by
		// weir) is not what the user asked for, so the route goes.
		t.diags.add(model.Errorf(src, path+"."+action,
			"%s is not supported yet; route skipped (requests it matches fall through to the next route)", action))
		return nil
	}
	if len(hr.Route) == 0 {
		t.diags.add(model.Errorf(src, path+".route", "route has no destination; skipped"))
		return nil
	}
	dests := t.destinations(vs, path, hr, vt)
	if len(dests) == 0 {
		t.diags.add(model.Errorf(src, path+".route",
			"no usable destination is left; route skipped (requests it matches fall through to the next route)"))
		return nil
	}
	if hr.Retries != nil {
		t.diags.add(ignoredFields(src, path+".retries", hr.Retries, "attempts", "perTryTimeout", "retryOn")...)
	}
	action := routeAction(dests, hr.Timeout, retryPolicy(hr.Retries))
	action.RequestMirrorPolicies = t.mirrorPolicies(vs, path, hr, vt)
	t.addHashPolicy(action, src, path+".route") // DestinationRule consistentHash: see hashpolicy.go
	return action
}

// unsupportedAction names the action of a route that does not forward to its
// destinations, if it has one.
func unsupportedAction(hr *networking.HTTPRoute) string {
	switch {
	case hr.Redirect != nil:
		return "redirect"
	case hr.DirectResponse != nil:
		return "directResponse"
	case hr.Delegate != nil:
		return "delegate"
	}
	return ""
}

// routeName joins the route's and the match entry's names the way Istio does.
func routeName(route, match string) string {
	var parts []string
	for _, p := range []string{route, match} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ".")
}

// routeAction forwards to one cluster, or splits across several by relative weight.
// An unset timeout becomes 0 (no timeout), Istio's default: Envoy's own default of 15s
// would cut long requests that the user never limited.
func routeAction(dests []weightedDestination, timeout *durationpb.Duration, retry *routev3.RetryPolicy) *routev3.RouteAction {
	a := &routev3.RouteAction{Timeout: durationpb.New(0), RetryPolicy: retry}
	if timeout != nil {
		a.Timeout = cloneDuration(timeout)
	}
	if len(dests) == 1 {
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: dests[0].cluster}
	} else {
		a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: weightedClusters(dests)}
	}
	return a
}

// weightedClusters carries the weights as written: Envoy treats them as relative and sums
// them itself (total_weight is deprecated), so they need not add up to 100.
func weightedClusters(dests []weightedDestination) *routev3.WeightedCluster {
	wc := &routev3.WeightedCluster{}
	for _, d := range dests {
		wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{
			Name:   d.cluster,
			Weight: wrapperspb.UInt32(d.weight),
		})
	}
	return wc
}
