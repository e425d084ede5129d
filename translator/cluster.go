package translator

import (
	"math"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-mesh/weir/model"
)

// defaultConnectTimeout is Istio's default (Envoy's own is 5s).
const defaultConnectTimeout = 10 * time.Second

const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// buildClusters emits one cluster per HTTP service port and one per DestinationRule subset
// of it, plus a ClusterLoadAssignment for each EDS cluster (empty when no endpoint is
// ready, so that Envoy does not wait for one).
func (t *translation) buildClusters() {
	for _, svc := range t.w.services {
		rule := t.w.rules[svc.Hostname]
		for _, port := range httpPorts(svc) {
			t.addCluster(svc, port, rule, subset{})
			if rule != nil {
				for _, s := range rule.subsets {
					t.addCluster(svc, port, rule, s)
				}
			}
		}
	}
}

func (t *translation) addCluster(svc *model.Service, port model.ServicePort, rule *destinationRule, s subset) {
	name := clusterName(port.Number, s.name, svc.Hostname)
	p := rule.policyFor(s, port.Number)
	all := t.w.endpoints[endpointKey{svc.Hostname, port.Number}]
	var c *clusterv3.Cluster
	if svc.Resolution == model.ResolutionDNS {
		eps := dnsEndpoints(svc, port, all, s.labels)
		plan := t.localityPlan(name, p, eps)
		c = dnsCluster(name, port, p, clusterLoadAssignment(name, eps, port, plan))
		applyLocalityPlan(c, plan)
	} else {
		eps := selectEndpoints(all, s.labels)
		plan := t.localityPlan(name, p, eps)
		c = edsCluster(name, port, p)
		applyLocalityPlan(c, plan)
		t.out.Endpoints = append(t.out.Endpoints, clusterLoadAssignment(name, eps, port, plan))
	}
	applyUpstreamTLS(c, p.tls, svc.Hostname, speaksHTTP2(port, p.pool))
	t.checkHTTP2Options(name, port, p.pool)
	t.recordHashPolicy(name, p.lb)
	t.out.Clusters = append(t.out.Clusters, c)
	t.origin(name, svc.Source)
	if rule != nil {
		t.origin(name, rule.source)
	}
}

func edsCluster(name string, port model.ServicePort, p clusterPolicy) *clusterv3.Cluster {
	c := cluster(name, port, p)
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
	c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsConfigSource()}
	return c
}

// dnsCluster lets Envoy resolve the service's hostname (or its listed endpoint addresses)
// itself; its endpoints travel inline, so no ClusterLoadAssignment is sent for it.
func dnsCluster(name string, port model.ServicePort, p clusterPolicy, cla *endpointv3.ClusterLoadAssignment) *clusterv3.Cluster {
	c := cluster(name, port, p)
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
	// Envoy's default (AUTO) prefers IPv6: "localhost" would become ::1, which an IPv4
	// service does not listen on. IPv4 first, IPv6 when a name has no IPv4 address.
	c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	c.LoadAssignment = cla
	return c
}

// dnsEndpoints are the service's listed endpoints or, when it lists none, its hostname.
func dnsEndpoints(svc *model.Service, port model.ServicePort, all []*model.Endpoint, labels map[string]string) []*model.Endpoint {
	if len(all) == 0 {
		all = []*model.Endpoint{{Hostname: svc.Hostname, ServicePort: port.Number, Address: svc.Hostname, Ready: true}}
	}
	return selectEndpoints(all, labels)
}

// cluster holds the settings common to every kind of cluster: those of the traffic policy.
func cluster(name string, port model.ServicePort, p clusterPolicy) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                          name,
		ConnectTimeout:                connectTimeout(p.pool),
		CircuitBreakers:               circuitBreakers(p.pool, p.budget),
		UpstreamConnectionOptions:     upstreamConnectionOptions(p.pool),
		TypedExtensionProtocolOptions: typedExtensionProtocolOptions(port, p.pool),
	}
	applyLoadBalancer(c, p.lb)
	if p.outlier != nil {
		c.OutlierDetection = proto.Clone(p.outlier.detection).(*clusterv3.OutlierDetection)
		c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{
			HealthyPanicThreshold: proto.Clone(p.outlier.panicThreshold).(*typev3.Percent),
		}
	}
	return c
}

func connectTimeout(p *poolSettings) *durationpb.Duration {
	if p != nil && p.connectTimeout != nil {
		return cloneDuration(p.connectTimeout)
	}
	return durationpb.New(defaultConnectTimeout)
}

// circuitBreakers always sets every limit: Envoy's defaults (1024 connections, pending and
// active requests, 3 concurrent retries) silently throttle a busy service, so, like Istio,
// weir lifts each limit the user did not set.
func circuitBreakers(p *poolSettings, budget *clusterv3.CircuitBreakers_Thresholds_RetryBudget) *clusterv3.CircuitBreakers {
	var s poolSettings
	if p != nil {
		s = *p
	}
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
		Priority:           corev3.RoutingPriority_DEFAULT,
		MaxConnections:     limit(s.maxConnections),
		MaxPendingRequests: limit(s.maxPending),
		MaxRequests:        limit(s.maxRequests),
		MaxRetries:         limit(s.maxRetries),
		RetryBudget:        cloneRetryBudget(budget),
		TrackRemaining:     true,
	}}}
}

func limit(v uint32) *wrapperspb.UInt32Value {
	if v == 0 {
		return wrapperspb.UInt32(math.MaxUint32)
	}
	return wrapperspb.UInt32(v)
}

func upstreamConnectionOptions(p *poolSettings) *clusterv3.UpstreamConnectionOptions {
	if p == nil || p.keepalive == nil {
		return nil
	}
	return &clusterv3.UpstreamConnectionOptions{TcpKeepalive: proto.Clone(p.keepalive).(*corev3.TcpKeepalive)}
}

func typedExtensionProtocolOptions(port model.ServicePort, p *poolSettings) map[string]*anypb.Any {
	o := httpProtocolOptions(port, p)
	if o == nil {
		return nil
	}
	return map[string]*anypb.Any{httpProtocolOptionsKey: typedConfig(o)}
}

// httpProtocolOptions says which HTTP version weir's proxy speaks to the backend: the
// client's own with useClientProtocol; HTTP/2 in clear text (h2c) for HTTP2 and gRPC ports
// and when h2UpgradePolicy is UPGRADE; HTTP/1.1 (Envoy's default) otherwise. It is nil
// when nothing differs from Envoy's defaults.
func httpProtocolOptions(port model.ServicePort, p *poolSettings) *upstreamhttpv3.HttpProtocolOptions {
	var s poolSettings
	if p != nil {
		s = *p
	}
	h2opts := &corev3.Http2ProtocolOptions{}
	if s.h2 != nil {
		h2opts = proto.Clone(s.h2).(*corev3.Http2ProtocolOptions)
	}
	o := &upstreamhttpv3.HttpProtocolOptions{}
	if s.common != nil {
		o.CommonHttpProtocolOptions = proto.Clone(s.common).(*corev3.HttpProtocolOptions)
	}
	switch {
	case s.useClientProtocol:
		o.UpstreamProtocolOptions = &upstreamhttpv3.HttpProtocolOptions_UseDownstreamProtocolConfig{
			UseDownstreamProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_UseDownstreamHttpConfig{
				HttpProtocolOptions:  &corev3.Http1ProtocolOptions{},
				Http2ProtocolOptions: h2opts,
			},
		}
	case speaksHTTP2(port, p):
		o.UpstreamProtocolOptions = explicitHTTP(&upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: h2opts},
		})
	case s.common != nil:
		o.UpstreamProtocolOptions = explicitHTTP(&upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}},
		})
	default:
		return nil
	}
	return o
}

// speaksHTTP2 reports whether the proxy always speaks HTTP/2 to the port's backends.
func speaksHTTP2(port model.ServicePort, p *poolSettings) bool {
	if p != nil && p.useClientProtocol {
		return false
	}
	return port.Protocol == model.ProtocolHTTP2 || port.Protocol == model.ProtocolGRPC || (p != nil && p.upgradeH2)
}

func explicitHTTP(c *upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig) *upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_ {
	return &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: c}
}

func cloneRetryBudget(b *clusterv3.CircuitBreakers_Thresholds_RetryBudget) *clusterv3.CircuitBreakers_Thresholds_RetryBudget {
	if b == nil {
		return nil
	}
	return proto.Clone(b).(*clusterv3.CircuitBreakers_Thresholds_RetryBudget)
}

// adsConfigSource points a resource at the ADS stream the proxy already has.
func adsConfigSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// typedConfig packs m into an Any with deterministic bytes. Marshalling only fails on
// invalid UTF-8 in string fields; the user-written strings weir packs (TLS file names,
// SNI, subject alternative names) were parsed from JSON, which holds valid UTF-8 only, so
// the error cannot happen and an empty Any of the right type would only ever make
// Envoy reject the resource loudly.
func typedConfig(m proto.Message) *anypb.Any {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()), Value: b}
}
