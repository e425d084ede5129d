package translator

import (
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// clusterPolicy is a DestinationRule traffic policy compiled into the Envoy settings weir
// supports. A nil block means "not configured": the defaults apply. Policies are compiled
// once per DestinationRule and subset, so their diagnostics are reported once, not once
// per port.
type clusterPolicy struct {
	lb      *lbSettings
	pool    *poolSettings
	outlier *outlierSettings
}

type lbSettings struct {
	policy clusterv3.Cluster_LbPolicy
}

type poolSettings struct {
	connectTimeout *durationpb.Duration
	// Zero means unlimited, as in Istio.
	maxConnections, maxPending, maxRequests, maxRetries uint32
	keepalive                                           *corev3.TcpKeepalive
	upgradeH2                                           bool
	// common is nil unless idleTimeout or maxRequestsPerConnection is set.
	common *corev3.HttpProtocolOptions
}

type outlierSettings struct {
	detection      *clusterv3.OutlierDetection
	panicThreshold *typev3.Percent
}

// compileTrafficPolicy translates one trafficPolicy block; path is where it sits in the
// DestinationRule, for diagnostics.
func compileTrafficPolicy(src model.Ref, path string, tp *networking.TrafficPolicy) (clusterPolicy, []model.Diagnostic) {
	var p clusterPolicy
	if tp == nil {
		return p, nil
	}
	diags := ignoredFields(src, path, tp, "loadBalancer", "connectionPool", "outlierDetection")
	var ds []model.Diagnostic
	if tp.LoadBalancer != nil {
		p.lb, ds = compileLoadBalancer(src, path+".loadBalancer", tp.LoadBalancer)
		diags = append(diags, ds...)
	}
	if tp.ConnectionPool != nil {
		p.pool, ds = compileConnectionPool(src, path+".connectionPool", tp.ConnectionPool)
		diags = append(diags, ds...)
	}
	if tp.OutlierDetection != nil {
		p.outlier, ds = compileOutlierDetection(src, path+".outlierDetection", tp.OutlierDetection)
		diags = append(diags, ds...)
	}
	return p, diags
}

// subsetPolicy applies Istio's override rule: each block a subset sets (loadBalancer,
// connectionPool, outlierDetection) replaces the top-level block wholesale; blocks it does
// not set are inherited. Users expect a field-by-field merge, so every top-level field lost
// that way is reported.
func subsetPolicy(src model.Ref, path string, top *networking.TrafficPolicy, inherited clusterPolicy,
	sub *networking.TrafficPolicy) (clusterPolicy, []model.Diagnostic) {
	if sub == nil {
		return inherited, nil
	}
	own, diags := compileTrafficPolicy(src, path, sub)
	p := inherited
	if sub.LoadBalancer != nil {
		p.lb = own.lb
		diags = append(diags, replacedBlock(src, path+".loadBalancer", "spec.trafficPolicy.loadBalancer",
			top.GetLoadBalancer(), sub.LoadBalancer)...)
	}
	if sub.ConnectionPool != nil {
		p.pool = own.pool
		diags = append(diags, replacedBlock(src, path+".connectionPool", "spec.trafficPolicy.connectionPool",
			top.GetConnectionPool(), sub.ConnectionPool)...)
	}
	if sub.OutlierDetection != nil {
		p.outlier = own.outlier
		diags = append(diags, replacedBlock(src, path+".outlierDetection", "spec.trafficPolicy.outlierDetection",
			top.GetOutlierDetection(), sub.OutlierDetection)...)
	}
	return p, diags
}

// replacedBlock warns when a subset block drops fields that the top-level block set.
func replacedBlock(src model.Ref, path, topPath string, top, sub proto.Message) []model.Diagnostic {
	if !top.ProtoReflect().IsValid() {
		return nil
	}
	kept := leafPaths(sub.ProtoReflect(), "")
	var lost []string
	for _, f := range leafPaths(top.ProtoReflect(), "") {
		if !containsPathOrParent(kept, f) {
			lost = append(lost, f)
		}
	}
	if len(lost) == 0 {
		return nil
	}
	return []model.Diagnostic{model.Warnf(src, path,
		"replaces %s wholesale (Istio's rule; blocks are not merged field by field), so these fields set there fall back to their defaults for this subset: %s; repeat them here to keep them",
		topPath, strings.Join(lost, ", "))}
}

// containsPathOrParent reports whether f, or a path that f refines or that refines f
// (a oneof or a set message), is among paths.
func containsPathOrParent(paths []string, f string) bool {
	for _, p := range paths {
		if p == f || strings.HasPrefix(f, p+".") || strings.HasPrefix(p, f+".") {
			return true
		}
	}
	return false
}

func compileLoadBalancer(src model.Ref, path string, lb *networking.LoadBalancerSettings) (*lbSettings, []model.Diagnostic) {
	diags := ignoredFields(src, path, lb, "simple")
	// LEAST_REQUEST is Istio's default when simple is unset.
	s := &lbSettings{policy: clusterv3.Cluster_LEAST_REQUEST}
	switch lb.GetSimple() {
	case networking.LoadBalancerSettings_ROUND_ROBIN:
		s.policy = clusterv3.Cluster_ROUND_ROBIN
	case networking.LoadBalancerSettings_RANDOM:
		s.policy = clusterv3.Cluster_RANDOM
	case networking.LoadBalancerSettings_LEAST_CONN:
		diags = append(diags, model.Warnf(src, path+".simple",
			"LEAST_CONN is a deprecated alias of LEAST_REQUEST; translated as LEAST_REQUEST"))
	case networking.LoadBalancerSettings_PASSTHROUGH:
		diags = append(diags, model.Warnf(src, path+".simple",
			"PASSTHROUGH is not supported yet; ignored (LEAST_REQUEST is used)"))
	}
	return s, diags
}

func compileConnectionPool(src model.Ref, path string, cp *networking.ConnectionPoolSettings) (*poolSettings, []model.Diagnostic) {
	diags := ignoredFields(src, path, cp, "tcp", "http")
	s := &poolSettings{}
	if tcp := cp.GetTcp(); tcp != nil {
		diags = append(diags, ignoredFields(src, path+".tcp", tcp, "maxConnections", "connectTimeout", "tcpKeepalive")...)
		s.maxConnections = positive(tcp.MaxConnections)
		s.connectTimeout = cloneDuration(tcp.ConnectTimeout)
		s.keepalive = tcpKeepalive(tcp.TcpKeepalive)
	}
	if h := cp.GetHttp(); h != nil {
		diags = append(diags, ignoredFields(src, path+".http", h, "http1MaxPendingRequests", "http2MaxRequests",
			"maxRetries", "maxRequestsPerConnection", "idleTimeout", "h2UpgradePolicy")...)
		s.maxPending = positive(h.Http1MaxPendingRequests)
		s.maxRequests = positive(h.Http2MaxRequests)
		s.maxRetries = positive(h.MaxRetries)
		s.upgradeH2 = h.H2UpgradePolicy == networking.ConnectionPoolSettings_HTTPSettings_UPGRADE
		s.common = commonHTTPProtocolOptions(h)
	}
	return s, diags
}

// commonHTTPProtocolOptions carries the per-connection HTTP limits; nil when none is set so
// that clusters without them stay free of protocol options.
func commonHTTPProtocolOptions(h *networking.ConnectionPoolSettings_HTTPSettings) *corev3.HttpProtocolOptions {
	if h.MaxRequestsPerConnection <= 0 && h.IdleTimeout == nil {
		return nil
	}
	o := &corev3.HttpProtocolOptions{IdleTimeout: cloneDuration(h.IdleTimeout)}
	if h.MaxRequestsPerConnection > 0 {
		o.MaxRequestsPerConnection = wrapperspb.UInt32(uint32(h.MaxRequestsPerConnection))
	}
	return o
}

// tcpKeepalive converts Istio's durations to the whole seconds Envoy's socket options take.
func tcpKeepalive(k *networking.ConnectionPoolSettings_TCPSettings_TcpKeepalive) *corev3.TcpKeepalive {
	if k == nil {
		return nil
	}
	out := &corev3.TcpKeepalive{}
	if k.Probes > 0 {
		out.KeepaliveProbes = wrapperspb.UInt32(k.Probes)
	}
	if k.Time != nil {
		out.KeepaliveTime = wrapperspb.UInt32(seconds(k.Time))
	}
	if k.Interval != nil {
		out.KeepaliveInterval = wrapperspb.UInt32(seconds(k.Interval))
	}
	return out
}

func seconds(d *durationpb.Duration) uint32 {
	return uint32(d.AsDuration() / time.Second)
}

func positive(v int32) uint32 {
	if v <= 0 {
		return 0
	}
	return uint32(v)
}

func cloneDuration(d *durationpb.Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	return proto.Clone(d).(*durationpb.Duration)
}
