package translator

import (
	"cmp"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

type poolSettings struct {
	connectTimeout *durationpb.Duration
	// Zero means unlimited, as in Istio.
	maxConnections, maxPending, maxRequests, maxRetries uint32
	keepalive                                           *corev3.TcpKeepalive
	upgradeH2                                           bool
	// useClientProtocol speaks to the backend whatever HTTP version the client spoke.
	useClientProtocol bool
	// common is nil unless a per-connection HTTP limit (idle timeout, requests or
	// lifetime per connection) is set.
	common *corev3.HttpProtocolOptions
	// h2 is nil unless an HTTP/2 setting (concurrent streams, PING keepalive) is set; it
	// applies where the proxy speaks HTTP/2 to the backend. src and path say where it was
	// written, for the warning when it cannot apply.
	h2   *corev3.Http2ProtocolOptions
	src  model.Ref
	path string
}

func compileConnectionPool(src model.Ref, path string, cp *networking.ConnectionPoolSettings) (*poolSettings, []model.Diagnostic) {
	diags := ignoredFields(src, path, cp, "tcp", "http")
	s := &poolSettings{src: src, path: path + ".http"}
	tcp, h := cp.GetTcp(), cp.GetHttp()
	if tcp != nil {
		diags = append(diags, ignoredFields(src, path+".tcp", tcp, "maxConnections", "connectTimeout", "tcpKeepalive",
			"maxConnectionDuration", "idleTimeout")...)
		s.maxConnections = positive(tcp.MaxConnections)
		s.connectTimeout = cloneDuration(tcp.ConnectTimeout)
		s.keepalive = tcpKeepalive(tcp.TcpKeepalive)
	}
	if h != nil {
		diags = append(diags, ignoredFields(src, path+".http", h, "http1MaxPendingRequests", "http2MaxRequests",
			"maxRetries", "maxRequestsPerConnection", "idleTimeout", "h2UpgradePolicy", "useClientProtocol",
			"maxConcurrentStreams", "http2KeepAlive")...)
		s.maxPending = positive(h.Http1MaxPendingRequests)
		s.maxRequests = positive(h.Http2MaxRequests)
		s.maxRetries = positive(h.MaxRetries)
		s.upgradeH2 = h.H2UpgradePolicy == networking.ConnectionPoolSettings_HTTPSettings_UPGRADE
		s.useClientProtocol = h.UseClientProtocol
		if s.useClientProtocol && s.upgradeH2 {
			diags = append(diags, model.Warnf(src, path+".http.h2UpgradePolicy",
				"has no effect with useClientProtocol: the proxy speaks to the backend the HTTP version the client spoke (Istio's rule)"))
		}
		var ds []model.Diagnostic
		s.h2, ds = http2Options(src, path+".http", h)
		diags = append(diags, ds...)
	}
	s.common = commonHTTPProtocolOptions(tcp, h)
	return s, diags
}

// commonHTTPProtocolOptions carries the per-connection HTTP limits; nil when none is set so
// that clusters without them stay free of protocol options. The idle timeout is
// http.idleTimeout, else tcp.idleTimeout: both describe the same upstream connections,
// which on the HTTP ports weir serves are HTTP connections.
func commonHTTPProtocolOptions(tcp *networking.ConnectionPoolSettings_TCPSettings, h *networking.ConnectionPoolSettings_HTTPSettings) *corev3.HttpProtocolOptions {
	o := &corev3.HttpProtocolOptions{
		IdleTimeout:           cloneDuration(h.GetIdleTimeout()),
		MaxConnectionDuration: cloneDuration(tcp.GetMaxConnectionDuration()),
	}
	if o.IdleTimeout == nil {
		o.IdleTimeout = cloneDuration(tcp.GetIdleTimeout())
	}
	if n := h.GetMaxRequestsPerConnection(); n > 0 {
		o.MaxRequestsPerConnection = wrapperspb.UInt32(uint32(n))
	}
	if o.IdleTimeout == nil && o.MaxConnectionDuration == nil && o.MaxRequestsPerConnection == nil {
		return nil
	}
	return o
}

// http2Options carries maxConcurrentStreams and http2KeepAlive; nil when neither is set.
func http2Options(src model.Ref, path string, h *networking.ConnectionPoolSettings_HTTPSettings) (*corev3.Http2ProtocolOptions, []model.Diagnostic) {
	var diags []model.Diagnostic
	o := &corev3.Http2ProtocolOptions{}
	set := false
	if h.MaxConcurrentStreams > 0 {
		o.MaxConcurrentStreams = wrapperspb.UInt32(uint32(h.MaxConcurrentStreams))
		set = true
	}
	if ka := h.Http2KeepAlive; ka != nil {
		diags = append(diags, ignoredFields(src, path+".http2KeepAlive", ka, "interval", "timeout")...)
		if ka.Timeout == nil {
			// Envoy requires the PING timeout; inventing one would be a silent default.
			diags = append(diags, model.Warnf(src, path+".http2KeepAlive.timeout",
				"timeout is required with http2KeepAlive (how long a PING may go unanswered before the connection is closed); http2KeepAlive ignored"))
		} else {
			o.ConnectionKeepalive = &corev3.KeepaliveSettings{Interval: cloneDuration(ka.Interval), Timeout: cloneDuration(ka.Timeout)}
			set = true
		}
	}
	if !set {
		return nil, diags
	}
	return o, diags
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

// checkHTTP2Options warns when HTTP/2 settings were written for a cluster the proxy speaks
// HTTP/1.1 to.
func (t *translation) checkHTTP2Options(cluster string, port model.ServicePort, p *poolSettings) {
	if p == nil || p.h2 == nil || p.useClientProtocol || speaksHTTP2(port, p) {
		return
	}
	t.diags.add(model.Warnf(p.src, p.path,
		"maxConcurrentStreams and http2KeepAlive apply to HTTP/2 connections, and the proxy speaks HTTP/1.1 to cluster %s (an %s port without h2UpgradePolicy: UPGRADE); ignored there",
		cluster, cmp.Or(port.Protocol, model.ProtocolHTTP)))
}
