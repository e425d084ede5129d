package translator

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// mirrorPolicies translates an http route's mirror: a copy of each request (or of the
// given percentage) goes to the mirror's cluster and its answer is thrown away. A mirror
// that does not resolve to a cluster is dropped with an error; the route still serves.
func (t *translation) mirrorPolicies(vs *model.VirtualService, path string, hr *networking.HTTPRoute, vt vhostTarget) []*routev3.RouteAction_RequestMirrorPolicy {
	if hr.Mirror == nil {
		return nil
	}
	pct := mirrorPercent(hr)
	if pct <= 0 {
		return nil // Istio: an explicit 0 % mirrors nothing
	}
	cluster, ok := t.destinationCluster(vs.Source, path+".mirror", hr.Mirror, vt, "mirror")
	if !ok {
		return nil
	}
	return []*routev3.RouteAction_RequestMirrorPolicy{requestMirrorPolicy(cluster, pct)}
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
