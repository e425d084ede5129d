package translator

import (
	"fmt"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// routeSkipped ends the message of every error that keeps an http route out.
const routeSkipped = "route skipped (requests it matches fall through to the next route)"

// httpRoutes translates one VirtualService http route for one virtual host: one Envoy
// route per match entry (entries are OR'ed) that applies to this virtual host and proxy,
// all alike but for the match.
func (t *translation) httpRoutes(vs *model.VirtualService, path string, hr *networking.HTTPRoute, vt vhostTarget) []*routev3.Route {
	base := t.httpRoute(vs, path, hr, vt)
	if base == nil {
		return nil
	}
	matches := hr.Match
	if len(matches) == 0 {
		matches = []*networking.HTTPMatchRequest{{}}
	}
	var out []*routev3.Route
	for k, m := range matches {
		mpath := fmt.Sprintf("%s.match[%d]", path, k)
		t.diags.add(ignoredMatchFields(vs.Source, mpath, m)...)
		if !t.matchApplies(vs.Source, mpath, m, vt) {
			continue
		}
		r := proto.Clone(base).(*routev3.Route)
		r.Name = routeName(hr.Name, m.Name)
		r.Match = routeMatch(m)
		r.StatPrefix = m.StatPrefix
		out = append(out, r)
	}
	return out
}

// httpRoute builds what every Envoy route of an http route shares: its action, header
// changes and per-route filter config. It returns nil when the route must be skipped:
// an error in any part of it fails the whole route, never only that part, so that a
// request is never served in a way the user did not write.
func (t *translation) httpRoute(vs *model.VirtualService, path string, hr *networking.HTTPRoute, vt vhostTarget) *routev3.Route {
	src := vs.Source
	ds := ignoredFields(src, path, hr, "name", "match", "route", "redirect", "directResponse", "delegate",
		"rewrite", "timeout", "retries", "fault", "mirror", "mirrors", "mirrorPercent", "mirrorPercentage", "corsPolicy", "headers")
	r := &routev3.Route{}
	ops, more := headerOperations(src, path+".headers", hr.Headers)
	ds = append(ds, more...)
	switch {
	case hr.Delegate != nil:
		ds = append(ds, model.Errorf(src, path+".delegate", "delegate is not supported yet"))
	case hr.Redirect != nil:
		ds = append(ds, forwardingOnly(src, path, hr, "redirect")...)
		a, more := redirectAction(src, path+".redirect", hr.Redirect, vt)
		ds = append(ds, more...)
		r.Action = &routev3.Route_Redirect{Redirect: a}
	case hr.DirectResponse != nil:
		ds = append(ds, forwardingOnly(src, path, hr, "directResponse")...)
		a, more := directResponseAction(src, path+".directResponse", hr.DirectResponse)
		ds = append(ds, more...)
		r.Action = &routev3.Route_DirectResponse{DirectResponse: a}
	default:
		a, dsOps, more := t.forwardAction(vs, path, hr, vt)
		ds = append(ds, more...)
		if a == nil {
			t.diags.add(skipped(ds)...)
			return nil
		}
		r.Action = &routev3.Route_Route{Route: a}
		if a.HostRewriteSpecifier != nil && (ops.authority != "" || dsOps.authority != "") {
			ds = append(ds, model.Warnf(src, path+".rewrite.authority", "a header set of host replaces rewrite.authority; ignored"))
		}
		ops = dsOps.then(ops)
	}
	fault, more := httpFault(src, path+".fault", hr.Fault)
	ds = append(ds, more...)
	cors, more := corsPolicy(src, path+".corsPolicy", hr.CorsPolicy)
	ds = append(ds, more...)
	if model.HasErrors(ds) {
		t.diags.add(skipped(ds)...)
		return nil
	}
	t.diags.add(ds...)
	ops.applyToRoute(r)
	r.TypedPerFilterConfig = perFilterConfig(map[string]proto.Message{corsFilterName: cors, faultFilterName: fault})
	return r
}

// forwardAction is the action of a route that forwards to its destinations, or nil when
// no destination is usable (the reason is reported). With a single destination, Envoy
// has no weighted cluster to carry that destination's header changes, so they are
// returned to go on the route.
func (t *translation) forwardAction(vs *model.VirtualService, path string, hr *networking.HTTPRoute, vt vhostTarget) (*routev3.RouteAction, headerOps, []model.Diagnostic) {
	src := vs.Source
	var ds []model.Diagnostic
	if len(hr.Route) == 0 {
		return nil, headerOps{}, append(ds, model.Errorf(src, path+".route", "route has no destination"))
	}
	destOps := make([]headerOps, len(hr.Route))
	for j, rd := range hr.Route {
		var more []model.Diagnostic
		destOps[j], more = headerOperations(src, fmt.Sprintf("%s.route[%d].headers", path, j), rd.Headers)
		ds = append(ds, more...)
	}
	dests := t.destinations(vs, path, hr, vt, destOps)
	if len(dests) == 0 {
		return nil, headerOps{}, append(ds, model.Errorf(src, path+".route", "no usable destination is left"))
	}
	if hr.Retries != nil {
		ds = append(ds, ignoredFields(src, path+".retries", hr.Retries, "attempts", "perTryTimeout", "retryOn",
			"retryRemoteLocalities", "retryIgnorePreviousHosts", "backoff")...)
	}
	a := routeAction(dests, hr.Timeout, retryPolicy(hr.Retries))
	a.RequestMirrorPolicies = t.mirrorPolicies(vs, path, hr, vt)
	ds = append(ds, rewrite(src, path+".rewrite", hr.Rewrite, a)...)
	t.addHashPolicy(a, src, path+".route") // DestinationRule consistentHash: see hashpolicy.go
	var ops headerOps
	if len(dests) == 1 {
		ops = dests[0].headers
	}
	return a, ops, ds
}

// forwardingOnly warns about the fields of a route that only apply when it forwards:
// a redirect or a direct response answers without reaching any destination.
func forwardingOnly(src model.Ref, path string, hr *networking.HTTPRoute, action string) []model.Diagnostic {
	var ds []model.Diagnostic
	for _, f := range setFields(hr.ProtoReflect()) {
		switch f {
		case "rewrite", "timeout", "retries", "mirror", "mirrors", "mirrorPercent", "mirrorPercentage":
			ds = append(ds, model.Warnf(src, path+"."+f, "%s has no effect on a route with %s; ignored", f, action))
		}
	}
	if hr.GetHeaders().GetRequest() != nil {
		ds = append(ds, model.Warnf(src, path+".headers.request", "request headers have no effect on a route with %s; ignored", action))
	}
	return ds
}

// skipped marks every error as the reason the route is skipped.
func skipped(ds []model.Diagnostic) []model.Diagnostic {
	out := make([]model.Diagnostic, len(ds))
	for i, d := range ds {
		if d.Severity == model.SeverityError && !strings.HasSuffix(d.Message, routeSkipped) {
			d.Message += "; " + routeSkipped
		}
		out[i] = d
	}
	return out
}

// perFilterConfig packs the per-route config of each HTTP filter that has one.
func perFilterConfig(byFilter map[string]proto.Message) map[string]*anypb.Any {
	var out map[string]*anypb.Any
	for name, m := range byFilter {
		if m == nil || !m.ProtoReflect().IsValid() {
			continue
		}
		if out == nil {
			out = map[string]*anypb.Any{}
		}
		out[name] = typedConfig(m)
	}
	return out
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
		c := &routev3.WeightedCluster_ClusterWeight{
			Name:   d.cluster,
			Weight: wrapperspb.UInt32(d.weight),
		}
		d.headers.applyToCluster(c)
		wc.Clusters = append(wc.Clusters, c)
	}
	return wc
}
