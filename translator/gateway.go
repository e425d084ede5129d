package translator

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// boundServer is one server of a Gateway that selects this gateway proxy.
type boundServer struct {
	gw    *model.Gateway
	path  string // spec.servers[i]
	srv   *networking.Server
	proto model.Protocol // ProtocolHTTP or ProtocolHTTPS
}

// gatewayPort is everything a gateway proxy serves on one Gateway port.
type gatewayPort struct {
	number  uint32
	proto   model.Protocol
	servers []boundServer
}

// gatewayPorts lists, by port, the servers of every Gateway whose selector matches this
// proxy's labels. Servers weir cannot serve were reported by model.ValidateGateway and are
// left out here.
func (w *world) gatewayPorts(gws []*model.Gateway) []*gatewayPort {
	byPort := map[uint32]*gatewayPort{}
	gws = slices.Clone(gws)
	slices.SortFunc(gws, func(a, b *model.Gateway) int { return compareObjects(a.Source, b.Source) })
	for _, gw := range gws {
		if !w.selects(gw) {
			continue
		}
		diags := model.ValidateGateway(gw)
		w.diags.add(diags...)
		if model.HasErrors(diags) {
			continue
		}
		w.diags.add(ignoredFields(gw.Source, "spec", gw.Spec, "servers", "selector")...)
		for i, s := range gw.Spec.Servers {
			p, ok := model.GatewayServerProtocol(s)
			if !ok || (p == model.ProtocolHTTPS && !terminatesTLS(s.Tls)) {
				continue
			}
			gp := byPort[s.Port.Number]
			if gp == nil {
				gp = &gatewayPort{number: s.Port.Number, proto: p}
				byPort[s.Port.Number] = gp
			}
			path := fmt.Sprintf("spec.servers[%d]", i)
			w.diags.add(ignoredFields(gw.Source, path, s, "port", "hosts", "tls", "name")...)
			w.diags.add(ignoredFields(gw.Source, path+".port", s.Port, "number", "protocol", "name")...)
			if s.Tls != nil {
				w.diags.add(ignoredFields(gw.Source, path+".tls", s.Tls, "httpsRedirect", "mode", "serverCertificate",
					"privateKey", "credentialName", "minProtocolVersion", "maxProtocolVersion", "cipherSuites",
					"caCertificates", "caCertCredentialName", "subjectAltNames", "verifyCertificateSpki", "verifyCertificateHash")...)
			}
			if gp.proto != p {
				w.diags.add(model.Errorf(gw.Source, path+".port.protocol",
					"port %d is already served as %s by another Gateway on this proxy; server ignored", s.Port.Number, gp.proto))
				continue
			}
			gp.servers = append(gp.servers, boundServer{gw: gw, path: path, srv: s, proto: p})
		}
	}
	out := slices.Collect(maps.Values(byPort))
	slices.SortFunc(out, func(a, b *gatewayPort) int { return cmp.Compare(a.number, b.number) })
	return out
}

// terminatesTLS reports whether weir serves an HTTPS server's TLS mode: it terminates
// TLS, with or without client certificates.
func terminatesTLS(tls *networking.ServerTLSSettings) bool {
	switch tls.GetMode() {
	case networking.ServerTLSSettings_SIMPLE, networking.ServerTLSSettings_MUTUAL, networking.ServerTLSSettings_OPTIONAL_MUTUAL:
		return true
	}
	return false
}

// selects reports whether a Gateway's selector matches this proxy. Like Istio (without
// PILOT_SCOPE_GATEWAY_TO_NAMESPACE), a Gateway selects gateway proxies of any namespace.
func (w *world) selects(gw *model.Gateway) bool {
	return hasLabels(w.class.Labels, gw.Spec.Selector)
}

// gatewayName is how VirtualServices name a Gateway: namespace/name.
func gatewayName(gw *model.Gateway) string {
	return gw.Source.Namespace + "/" + gw.Source.Name
}

// boundGatewayNames lists the Gateways a VirtualService binds to, as namespace/name; a
// bare name is in the VirtualService's namespace. "mesh" is not a Gateway.
func boundGatewayNames(vs *model.VirtualService) []string {
	var out []string
	for _, g := range vs.Spec.Gateways {
		switch {
		case g == meshGateway:
		case strings.Contains(g, "/"):
			out = append(out, g)
		default:
			out = append(out, vs.Source.Namespace+"/"+g)
		}
	}
	return out
}

// serverHostsFor intersects a VirtualService's hosts with one server's hosts: the
// names the server answers for with this VirtualService's routes. The more specific of
// two matching names wins ("*.example.com" and "a.example.com" give "a.example.com").
func serverHostsFor(vs *model.VirtualService, gw *model.Gateway, srv *networking.Server) []string {
	var out []string
	for _, sh := range srv.Hosts {
		ns, host, ok := model.SplitGatewayHost(sh)
		if !ok || !namespaceMatches(ns, gw.Source.Namespace, vs.Source.Namespace) {
			continue
		}
		for _, vh := range vs.Spec.Hosts {
			switch {
			case hostMatches(host, vh):
				out = append(out, vh)
			case hostMatches(vh, host):
				out = append(out, host)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// namespaceMatches reads the namespace part of a server host: "*" any, "." the Gateway's.
func namespaceMatches(pattern, gatewayNS, vsNS string) bool {
	switch pattern {
	case "*":
		return true
	case ".":
		return vsNS == gatewayNS
	}
	return pattern == vsNS
}

// hostMatches reports whether host is covered by pattern: equal, "*", or a "*.suffix"
// wildcard covering host (a wildcard host is covered only by an equal or wider one).
func hostMatches(pattern, host string) bool {
	switch {
	case pattern == host || pattern == "*":
		return true
	case strings.HasPrefix(pattern, "*."):
		suffix := pattern[1:]
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return false
}
