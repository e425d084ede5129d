package translator

import (
	"cmp"
	"fmt"
	"slices"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weir-mesh/weir/model"
)

// vhostTarget is one HTTP port of one service: what a virtual host serves.
type vhostTarget struct {
	svc  *model.Service
	port model.ServicePort
}

func (v vhostTarget) name() string { return virtualHostName(v.svc.Hostname, v.port.Number) }

// routeConfiguration is the sidecar's "outbound" route table: one virtual host per HTTP
// service port, sorted by name.
func (t *translation) routeConfiguration() *routev3.RouteConfiguration {
	var targets []vhostTarget
	for _, svc := range t.w.services {
		for _, p := range httpPorts(svc) {
			targets = append(targets, vhostTarget{svc, p})
		}
	}
	slices.SortFunc(targets, func(a, b vhostTarget) int { return cmp.Compare(a.name(), b.name()) })
	domains := t.claimDomains(targets)
	rc := &routev3.RouteConfiguration{Name: outboundRouteName}
	for i, vt := range targets {
		rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
			Name:    vt.name(),
			Domains: domains[i],
			Routes:  t.vhostRoutes(vt),
		})
	}
	return rc
}

// claimDomains gives each domain to exactly one virtual host: Envoy rejects a route
// configuration in which a domain appears twice. Each service's own hostname is claimed
// first; an alias that another virtual host already holds is left out, with a warning.
func (t *translation) claimDomains(targets []vhostTarget) [][]string {
	cands := make([][]domain, len(targets))
	for i, vt := range targets {
		portless := portlessPort(vt.svc) == vt.port.Number
		cands[i] = serviceDomains(vt.svc, vt.port.Number, portless, t.class.Namespace)
	}
	owner := map[string]int{}
	for _, canonical := range []bool{true, false} {
		for i, vt := range targets {
			for _, d := range cands[i] {
				j, taken := owner[d.name]
				switch {
				case d.canonical != canonical || (taken && j == i):
					// Not this pass's kind of domain, or already this virtual host's.
				case taken:
					t.diags.add(model.Warnf(vt.svc.Source, "", "domain %q is already served by virtual host %s; left out of virtual host %s",
						d.name, targets[j].name(), vt.name()))
				default:
					owner[d.name] = i
				}
			}
		}
	}
	out := make([][]string, len(targets))
	for i := range targets {
		for _, d := range cands[i] {
			if owner[d.name] == i && !slices.Contains(out[i], d.name) {
				out[i] = append(out[i], d.name)
			}
		}
	}
	return out
}

// portlessPort is the port that names without ":port" reach: 80 when the service has it
// (what a client means by http://name/), else its lowest HTTP port.
func portlessPort(svc *model.Service) uint32 {
	ports := httpPorts(svc)
	if _, ok := httpPort(svc, 80); ok || len(ports) == 0 {
		return 80
	}
	return ports[0].Number
}

// vhostRoutes are the routes of the VirtualServices of the target's host, in order, or a
// single default route to the port's cluster when no VirtualService routes the host.
func (t *translation) vhostRoutes(vt vhostTarget) []*routev3.Route {
	vss := t.w.vsByHost[vt.svc.Hostname]
	if len(vss) == 0 {
		return []*routev3.Route{defaultRoute(clusterName(vt.port.Number, "", vt.svc.Hostname))}
	}
	var routes []*routev3.Route
	for _, vs := range vss {
		t.origin(vt.name(), vs.Source)
		t.origin(outboundRouteName, vs.Source)
		for i, hr := range vs.Spec.Http {
			routes = append(routes, t.httpRoutes(vs, fmt.Sprintf("spec.http[%d]", i), hr, vt)...)
		}
	}
	return routes
}

// defaultRoute sends everything to one cluster with the same timeout and retry defaults
// as a VirtualService route that sets neither.
func defaultRoute(cluster string) *routev3.Route {
	return &routev3.Route{
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: routeAction([]weightedDestination{{cluster: cluster, weight: 1}}, nil, retryPolicy(nil))},
	}
}
