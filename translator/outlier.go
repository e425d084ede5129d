package translator

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

type outlierSettings struct {
	detection      *clusterv3.OutlierDetection
	panicThreshold *typev3.Percent
}

// defaultConsecutive5xx is Istio's documented default for consecutive5xxErrors (it is also
// Envoy's). weir writes it out so that the output says what the proxy will do.
const defaultConsecutive5xx = 5

func compileOutlierDetection(src model.Ref, path string, od *networking.OutlierDetection) (*outlierSettings, []model.Diagnostic) {
	diags := ignoredFields(src, path, od, "consecutiveErrors", "consecutiveGatewayErrors", "consecutive5xxErrors",
		"interval", "baseEjectionTime", "maxEjectionPercent", "minHealthPercent", "splitExternalLocalOriginErrors",
		"consecutiveLocalOriginFailures")
	n5xx, ds := consecutive5xx(src, path, od)
	diags = append(diags, ds...)
	d := &clusterv3.OutlierDetection{
		Consecutive_5Xx:          wrapperspb.UInt32(n5xx),
		EnforcingConsecutive_5Xx: wrapperspb.UInt32(enforcing(n5xx)),
		// Envoy enforces success-rate ejection by default; Istio has no field for it and
		// turns it off, and so does weir.
		EnforcingSuccessRate: wrapperspb.UInt32(0),
		Interval:             cloneDuration(od.Interval),
		BaseEjectionTime:     cloneDuration(od.BaseEjectionTime),
	}
	if g := od.ConsecutiveGatewayErrors; g != nil {
		d.ConsecutiveGatewayFailure = wrapperspb.UInt32(g.Value)
		// Envoy does not enforce gateway-failure ejection unless told to (its default is 0%).
		d.EnforcingConsecutiveGatewayFailure = wrapperspb.UInt32(enforcing(g.Value))
	}
	diags = append(diags, gatewayShadowed(src, path, od, n5xx)...)
	diags = append(diags, localOrigin(src, path, od, d)...)
	if od.MaxEjectionPercent > 0 {
		d.MaxEjectionPercent = wrapperspb.UInt32(uint32(od.MaxEjectionPercent))
	}
	// Istio's mapping: minHealthPercent becomes the panic threshold, and when it is unset the
	// threshold is 0, which turns panic mode off. Envoy's own default (50%) would send
	// traffic back to ejected hosts once half of a small deployment is ejected, which is not
	// what someone who asked for outlier detection expects.
	// Nothing here enables locality failover or priorities: unlike Istio, configuring
	// outlier detection never changes which localities receive traffic.
	return &outlierSettings{
		detection:      d,
		panicThreshold: &typev3.Percent{Value: float64(positive(od.MinHealthPercent))},
	}, diags
}

// gatewayShadowed warns when the gateway-error threshold can never be reached first:
// gateway errors (502, 503, 504) count as 5xx too.
func gatewayShadowed(src model.Ref, path string, od *networking.OutlierDetection, n5xx uint32) []model.Diagnostic {
	g := od.ConsecutiveGatewayErrors
	if g == nil || g.Value == 0 || n5xx == 0 || g.Value < n5xx {
		return nil
	}
	return []model.Diagnostic{model.Warnf(src, path+".consecutiveGatewayErrors",
		"has no effect: %d consecutive gateway errors are also %d consecutive 5xx, and consecutive5xxErrors ejects at %d already",
		g.Value, g.Value, n5xx)}
}

// localOrigin separates failures the proxy sees itself (connect errors, resets, timeouts)
// from the backend's answers, as Istio does: local-origin failures then eject on their own
// threshold, and success-rate ejection stays off for them too.
func localOrigin(src model.Ref, path string, od *networking.OutlierDetection, d *clusterv3.OutlierDetection) []model.Diagnostic {
	if !od.SplitExternalLocalOriginErrors {
		if od.ConsecutiveLocalOriginFailures != nil {
			return []model.Diagnostic{model.Warnf(src, path+".consecutiveLocalOriginFailures",
				"takes effect only with splitExternalLocalOriginErrors: true; ignored")}
		}
		return nil
	}
	d.SplitExternalLocalOriginErrors = true
	d.EnforcingLocalOriginSuccessRate = wrapperspb.UInt32(0)
	n := uint32(defaultConsecutive5xx) // Envoy's default, written out
	if c := od.ConsecutiveLocalOriginFailures; c != nil {
		n = c.Value
	}
	d.ConsecutiveLocalOriginFailure = wrapperspb.UInt32(n)
	d.EnforcingConsecutiveLocalOriginFailure = wrapperspb.UInt32(enforcing(n))
	return nil
}

// consecutive5xx picks the 5xx ejection threshold. The deprecated consecutiveErrors is
// translated (Istio's later releases silently dropped it), with the meaning Istio's docs
// gave it: consecutive 5xx responses.
func consecutive5xx(src model.Ref, path string, od *networking.OutlierDetection) (uint32, []model.Diagnostic) {
	legacy := positive(od.ConsecutiveErrors)
	switch {
	case od.Consecutive_5XxErrors != nil && legacy > 0:
		return od.Consecutive_5XxErrors.Value, []model.Diagnostic{model.Warnf(src, path+".consecutiveErrors",
			"consecutiveErrors (deprecated) and consecutive5xxErrors are both set; consecutive5xxErrors (%d) wins and consecutiveErrors (%d) is ignored",
			od.Consecutive_5XxErrors.Value, legacy)}
	case od.Consecutive_5XxErrors != nil:
		return od.Consecutive_5XxErrors.Value, nil
	case legacy > 0:
		return legacy, []model.Diagnostic{model.Warnf(src, path+".consecutiveErrors",
			"consecutiveErrors is deprecated; translated as consecutive5xxErrors: %d (a host is ejected after %d consecutive 5xx responses); write consecutive5xxErrors instead",
			legacy, legacy)}
	}
	return defaultConsecutive5xx, nil
}

// enforcing turns a threshold into Envoy's enforcement percentage: 0 disables the check.
func enforcing(threshold uint32) uint32 {
	if threshold == 0 {
		return 0
	}
	return 100
}
