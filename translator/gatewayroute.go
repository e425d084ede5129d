package translator

import (
	"cmp"
	"fmt"
	"slices"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weir-mesh/weir/model"
)

// gatewayHost is one host name a gateway port serves, with the VirtualServices that
// route it (in namespace/name order) and whether plain HTTP must be redirected to HTTPS.
type gatewayHost struct {
	name     string
	vss      []*model.VirtualService
	redirect bool
	gateways []string // namespace/name of the Gateways whose servers serve it
}

// gatewayRouteConfiguration holds a virtual host per host name that a VirtualService
// bound to one of the port's servers serves there. A port no VirtualService routes gets
// an empty route configuration: Envoy answers 404, as Istio's gateway does.
func (t *translation) gatewayRouteConfiguration(gp *gatewayPort) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{Name: gatewayRouteName(gp.number)}
	for _, h := range t.gatewayHosts(gp) {
		vh := &routev3.VirtualHost{Name: fmt.Sprintf("%s:%d", h.name, gp.number), Domains: gatewayDomains(h.name)}
		if h.redirect {
			vh.RequireTls = routev3.VirtualHost_ALL
		}
		vt := vhostTarget{port: model.ServicePort{Number: gp.number, Protocol: model.ProtocolHTTP}, gateways: h.gateways}
		t.origin(rc.Name, vssSources(h.vss)...)
		t.origin(vh.Name, vssSources(h.vss)...)
		vh.Routes = t.concatRoutes(h.vss, vt)
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	return rc
}

// gatewayHosts collects the host names of one port, sorted, each with its
// VirtualServices. Several VirtualServices of one host are merged in namespace/name order
// (their routes concatenated), with a warning, as on sidecars.
func (t *translation) gatewayHosts(gp *gatewayPort) []*gatewayHost {
	byName := map[string]*gatewayHost{}
	for _, s := range gp.servers {
		redirect := s.proto == model.ProtocolHTTP && s.srv.GetTls().GetHttpsRedirect()
		for _, vs := range t.w.vsByGateway[gatewayName(s.gw)] {
			for _, name := range serverHostsFor(vs, s.gw, s.srv) {
				h := byName[name]
				if h == nil {
					h = &gatewayHost{name: name}
					byName[name] = h
				}
				h.redirect = h.redirect || redirect
				if g := gatewayName(s.gw); !slices.Contains(h.gateways, g) {
					h.gateways = append(h.gateways, g)
				}
				if !slices.Contains(h.vss, vs) {
					h.vss = append(h.vss, vs)
				}
			}
		}
	}
	out := make([]*gatewayHost, 0, len(byName))
	for _, h := range byName {
		slices.SortFunc(h.vss, func(a, b *model.VirtualService) int { return compareObjects(a.Source, b.Source) })
		for i, vs := range h.vss[1:] {
			t.diags.add(mergeWarning(vs, "spec.hosts", fmt.Sprintf("host %s on gateway port %d", h.name, gp.number), h.vss[:i+1]))
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b *gatewayHost) int { return cmp.Compare(a.name, b.name) })
	return out
}

// gatewayDomains matches a host with any port in the Host header: clients reach a gateway
// on whatever port its Service maps, so "name" and "name:<any port>" both route.
func gatewayDomains(host string) []string {
	if host == "*" {
		return []string{"*"}
	}
	return []string{host, host + ":*"}
}
