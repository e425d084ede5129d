package translator

import (
	"fmt"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// defaultMinimumRingSize is Envoy's (and Istio's) ring size when none is given; weir
// writes it out so that the output says what the proxy will do.
const defaultMinimumRingSize = 1024

// slowStartAggressionKey lets an operator override warmup.aggression through Envoy's
// runtime, which Envoy requires a key for.
const slowStartAggressionKey = "upstream.weir.slow_start.aggression"

type lbSettings struct {
	policy   clusterv3.Cluster_LbPolicy
	ringHash *clusterv3.Cluster_RingHashLbConfig
	maglev   *clusterv3.Cluster_MaglevLbConfig
	// slowStart ramps new endpoints up (warmup); only round robin and least request have it.
	slowStart *clusterv3.Cluster_SlowStartConfig
	// hash is what every route to a consistent-hash cluster must hash on; nil otherwise.
	hash *routev3.RouteAction_HashPolicy
	// locality is nil unless localityLbSetting is set and enabled.
	locality *localitySettings
}

func compileLoadBalancer(src model.Ref, path string, lb *networking.LoadBalancerSettings) (*lbSettings, []model.Diagnostic) {
	diags := ignoredFields(src, path, lb, "simple", "consistentHash", "localityLbSetting", "warmup", "warmupDurationSecs")
	// LEAST_REQUEST is Istio's default when simple is unset.
	s := &lbSettings{policy: clusterv3.Cluster_LEAST_REQUEST}
	switch p := lb.LbPolicy.(type) {
	case *networking.LoadBalancerSettings_Simple:
		diags = append(diags, s.simple(src, path+".simple", p.Simple)...)
	case *networking.LoadBalancerSettings_ConsistentHash:
		diags = append(diags, s.consistentHash(src, path+".consistentHash", p.ConsistentHash)...)
	}
	diags = append(diags, s.warmup(src, path, lb)...)
	var ds []model.Diagnostic
	s.locality, ds = compileLocality(src, path+".localityLbSetting", lb.LocalityLbSetting)
	return s, append(diags, ds...)
}

func (s *lbSettings) simple(src model.Ref, path string, simple networking.LoadBalancerSettings_SimpleLB) []model.Diagnostic {
	switch simple {
	case networking.LoadBalancerSettings_ROUND_ROBIN:
		s.policy = clusterv3.Cluster_ROUND_ROBIN
	case networking.LoadBalancerSettings_RANDOM:
		s.policy = clusterv3.Cluster_RANDOM
	case networking.LoadBalancerSettings_LEAST_CONN:
		return []model.Diagnostic{model.Warnf(src, path,
			"LEAST_CONN is a deprecated alias of LEAST_REQUEST; translated as LEAST_REQUEST")}
	case networking.LoadBalancerSettings_PASSTHROUGH:
		return []model.Diagnostic{model.Warnf(src, path,
			"PASSTHROUGH is not supported: it forwards to the address the client dialled, and clients of weir's outbound listener dial the listener itself, so there is no such address; LEAST_REQUEST is used")}
	}
	return nil
}

// consistentHash picks ring hash (the default) or Maglev and the key every route to the
// cluster must hash on. Validation has already refused bad sizes and cookies.
func (s *lbSettings) consistentHash(src model.Ref, path string, ch *networking.LoadBalancerSettings_ConsistentHashLB) []model.Diagnostic {
	diags := ignoredFields(src, path, ch, "httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName",
		"ringHash", "maglev", "minimumRingSize")
	s.hash = hashPolicyOf(ch)
	if s.hash == nil {
		diags = append(diags, model.Warnf(src, path,
			"names no hash key (httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName): every request hashes differently, so endpoints are picked at random"))
	}
	switch a := ch.HashAlgorithm.(type) {
	case *networking.LoadBalancerSettings_ConsistentHashLB_Maglev:
		s.policy = clusterv3.Cluster_MAGLEV
		s.maglev = &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(a.Maglev.TableSize)}
		return diags
	case *networking.LoadBalancerSettings_ConsistentHashLB_RingHash_:
		s.policy = clusterv3.Cluster_RING_HASH
		s.ringHash = ringHash(a.RingHash.MinimumRingSize)
		return diags
	}
	s.policy = clusterv3.Cluster_RING_HASH
	s.ringHash = ringHash(ch.MinimumRingSize)
	if ch.MinimumRingSize > 0 {
		diags = append(diags, model.Warnf(src, path+".minimumRingSize",
			"minimumRingSize is deprecated; translated as ringHash.minimumRingSize: %d; write ringHash: {minimumRingSize: %d} instead",
			ch.MinimumRingSize, ch.MinimumRingSize))
	}
	return diags
}

func ringHash(minimum uint64) *clusterv3.Cluster_RingHashLbConfig {
	if minimum == 0 {
		minimum = defaultMinimumRingSize
	}
	return &clusterv3.Cluster_RingHashLbConfig{MinimumRingSize: wrapperspb.UInt64(minimum)}
}

// hashPolicyOf is the route-side half of consistent hashing: what Envoy hashes on. Nil
// when no key is named.
func hashPolicyOf(ch *networking.LoadBalancerSettings_ConsistentHashLB) *routev3.RouteAction_HashPolicy {
	switch k := ch.HashKey.(type) {
	case *networking.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: k.HttpHeaderName}}}
	case *networking.LoadBalancerSettings_ConsistentHashLB_HttpCookie:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{
			Cookie: hashCookie(k.HttpCookie)}}
	case *networking.LoadBalancerSettings_ConsistentHashLB_UseSourceIp:
		if !k.UseSourceIp {
			return nil
		}
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true}}}
	case *networking.LoadBalancerSettings_ConsistentHashLB_HttpQueryParameterName:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_QueryParameter_{
			QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: k.HttpQueryParameterName}}}
	}
	return nil
}

// hashCookie hashes on a cookie; with a ttl Envoy sets the cookie itself on a client's first
// request (a ttl of 0s makes it a session cookie), so that the client sticks from then on.
func hashCookie(c *networking.LoadBalancerSettings_ConsistentHashLB_HTTPCookie) *routev3.RouteAction_HashPolicy_Cookie {
	out := &routev3.RouteAction_HashPolicy_Cookie{Name: c.Name, Path: c.Path, Ttl: cloneDuration(c.Ttl)}
	for _, a := range c.Attributes {
		out.Attributes = append(out.Attributes, &routev3.RouteAction_HashPolicy_CookieAttribute{Name: a.Name, Value: a.Value})
	}
	return out
}

// warmup translates warmup (or the deprecated warmupDurationSecs) into Envoy's slow start,
// which exists for round robin and least request only.
func (s *lbSettings) warmup(src model.Ref, path string, lb *networking.LoadBalancerSettings) []model.Diagnostic {
	var diags []model.Diagnostic
	w := lb.Warmup
	switch {
	case w != nil && lb.WarmupDurationSecs != nil:
		diags = append(diags, model.Warnf(src, path+".warmupDurationSecs",
			"warmupDurationSecs (deprecated) and warmup are both set; warmup wins and warmupDurationSecs is ignored"))
	case lb.WarmupDurationSecs != nil:
		diags = append(diags, model.Warnf(src, path+".warmupDurationSecs",
			"warmupDurationSecs is deprecated; translated as warmup.duration; write warmup: {duration: %s} instead",
			strconv.FormatFloat(lb.WarmupDurationSecs.AsDuration().Seconds(), 'f', -1, 64)+"s"))
		w = &networking.WarmupConfiguration{Duration: lb.WarmupDurationSecs}
	case w == nil:
		return nil
	}
	if lb.Warmup != nil {
		diags = append(diags, ignoredFields(src, path+".warmup", lb.Warmup, "duration", "minimumPercent", "aggression")...)
	}
	if s.policy != clusterv3.Cluster_ROUND_ROBIN && s.policy != clusterv3.Cluster_LEAST_REQUEST {
		field := "warmup"
		if lb.Warmup == nil {
			field = "warmupDurationSecs"
		}
		return append(diags, model.Warnf(src, path+"."+field,
			"warmup works with ROUND_ROBIN and LEAST_REQUEST only (Envoy's slow start), not %s; ignored", s.policy))
	}
	s.slowStart = &clusterv3.Cluster_SlowStartConfig{SlowStartWindow: cloneDuration(w.Duration)}
	if w.Aggression != nil {
		s.slowStart.Aggression = &corev3.RuntimeDouble{DefaultValue: w.Aggression.Value, RuntimeKey: slowStartAggressionKey}
	}
	if w.MinimumPercent != nil {
		s.slowStart.MinWeightPercent = &typev3.Percent{Value: w.MinimumPercent.Value}
	}
	return diags
}

// applyLoadBalancer sets the cluster's algorithm and its settings.
func applyLoadBalancer(c *clusterv3.Cluster, lb *lbSettings) {
	if lb == nil {
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST // Istio's default
		return
	}
	c.LbPolicy = lb.policy
	switch {
	case lb.ringHash != nil:
		c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: proto.Clone(lb.ringHash).(*clusterv3.Cluster_RingHashLbConfig)}
	case lb.maglev != nil:
		c.LbConfig = &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: proto.Clone(lb.maglev).(*clusterv3.Cluster_MaglevLbConfig)}
	case lb.slowStart != nil && lb.policy == clusterv3.Cluster_ROUND_ROBIN:
		c.LbConfig = &clusterv3.Cluster_RoundRobinLbConfig_{RoundRobinLbConfig: &clusterv3.Cluster_RoundRobinLbConfig{
			SlowStartConfig: proto.Clone(lb.slowStart).(*clusterv3.Cluster_SlowStartConfig)}}
	case lb.slowStart != nil:
		c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{
			SlowStartConfig: proto.Clone(lb.slowStart).(*clusterv3.Cluster_SlowStartConfig)}}
	}
}

// describeHash names a hash key for messages.
func describeHash(h *routev3.RouteAction_HashPolicy) string {
	switch p := h.GetPolicySpecifier().(type) {
	case *routev3.RouteAction_HashPolicy_Header_:
		return fmt.Sprintf("header %s", p.Header.HeaderName)
	case *routev3.RouteAction_HashPolicy_Cookie_:
		return fmt.Sprintf("cookie %s", p.Cookie.Name)
	case *routev3.RouteAction_HashPolicy_ConnectionProperties_:
		return "source IP"
	case *routev3.RouteAction_HashPolicy_QueryParameter_:
		return fmt.Sprintf("query parameter %s", p.QueryParameter.Name)
	}
	return "nothing"
}
