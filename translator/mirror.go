package translator

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// mirrorPolicies translates an http route's mirror and mirrors: a copy of each request
// (or of the given percentage) goes to each mirror's cluster and its answer is thrown
// away. A mirror that does not resolve to a cluster is dropped with an error; the route
// still serves.
func (t *translation) mirrorPolicies(vs *model.VirtualService, path string, hr *networking.HTTPRoute, vt vhostTarget) []*routev3.RouteAction_RequestMirrorPolicy {
	var out []*routev3.RouteAction_RequestMirrorPolicy
	add := func(d *networking.Destination, dpath string, pct float64) {
		if pct <= 0 {
			return // Istio: an explicit 0 % mirrors nothing
		}
		if cluster, ok := t.destinationCluster(vs.Source, dpath, d, vt, "mirror"); ok {
			out = append(out, requestMirrorPolicy(cluster, pct))
		}
	}
	if hr.Mirror != nil {
		if len(hr.Mirrors) > 0 {
			t.diags.add(model.Warnf(vs.Source, path+".mirrors", "both mirror and mirrors are set (Istio refuses this); every one of them gets copies"))
		}
		add(hr.Mirror, path+".mirror", mirrorPercent(hr))
	}
	for i, m := range hr.Mirrors {
		mpath := fmt.Sprintf("%s.mirrors[%d]", path, i)
		t.diags.add(ignoredFields(vs.Source, mpath, m, "destination", "percentage")...)
		pct := 100.0
		if m.Percentage != nil {
			pct = m.Percentage.Value
		}
		add(m.Destination, mpath+".destination", pct)
	}
	return out
}

// mirrorPercent is the share of requests to mirror, as Istio reads it: mirrorPercentage,
// else the deprecated mirrorPercent, else 100.
func mirrorPercent(hr *networking.HTTPRoute) float64 {
	switch {
	case hr.MirrorPercentage != nil:
		return hr.MirrorPercentage.Value
	case hr.MirrorPercent != nil:
		return float64(hr.MirrorPercent.Value)
	}
	return 100
}

func requestMirrorPolicy(cluster string, pct float64) *routev3.RouteAction_RequestMirrorPolicy {
	return &routev3.RouteAction_RequestMirrorPolicy{Cluster: cluster, RuntimeFraction: runtimeFractionalPercent(pct)}
}

func runtimeFractionalPercent(pct float64) *corev3.RuntimeFractionalPercent {
	return &corev3.RuntimeFractionalPercent{DefaultValue: fractionalPercent(pct)}
}
