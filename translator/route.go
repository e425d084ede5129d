package translator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weir-mesh/weir/model"
)

// vhostTarget is what a virtual host serves: one HTTP port of one service on a sidecar,
// or one host on a Gateway port (svc nil, gateways the Gateways it is served for).
type vhostTarget struct {
	svc      *model.Service
	port     model.ServicePort
	gateways []string // namespace/name
}

// servesFor reports whether the virtual host serves requests through the gateway a
// match entry names ("mesh" is every sidecar); a bare name is in namespace ns.
func (v vhostTarget) servesFor(gateway, ns string) bool {
	if v.svc != nil {
		return gateway == meshGateway
	}
	if !strings.Contains(gateway, "/") {
		gateway = ns + "/" + gateway
	}
	return slices.Contains(v.gateways, gateway)
}

func (v vhostTarget) name() string { return virtualHostName(v.svc.Hostname, v.port.Number) }

// routes builds the sidecar's outbound route table, split by service: one
// RouteConfiguration per service (one virtual host per HTTP port) and one route scope per
// host name a client may use for it. The listener picks the scope by the request's host
// without its port, so a change to one service's routes resends that service's route
// configuration alone, not the whole mesh's. Both lists are sorted by name.
func (t *translation) routes() ([]*routev3.RouteConfiguration, []*routev3.ScopedRouteConfiguration) {
	var targets []vhostTarget
	for _, svc := range t.w.services {
		for _, p := range httpPorts(svc) {
			targets = append(targets, vhostTarget{svc: svc, port: p})
		}
	}
	slices.SortFunc(targets, func(a, b vhostTarget) int { return cmp.Compare(a.name(), b.name()) })
	domains, hosts := t.claimHosts(targets)
	byService := map[string]*routev3.RouteConfiguration{}
	var rcs []*routev3.RouteConfiguration
	for i, vt := range targets {
		name := RouteConfigName(vt.svc.Hostname)
		rc, ok := byService[name]
		if !ok {
			rc = &routev3.RouteConfiguration{Name: name}
			byService[name] = rc
			rcs = append(rcs, rc)
		}
		rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
			Name:    vt.name(),
			Domains: domains[i],
			Routes:  t.vhostRoutes(vt),
		})
	}
	slices.SortFunc(rcs, func(a, b *routev3.RouteConfiguration) int { return cmp.Compare(a.Name, b.Name) })
	scopes := make([]*routev3.ScopedRouteConfiguration, 0, len(hosts))
	for host, svc := range hosts {
		scopes = append(scopes, routeScope(host, RouteConfigName(svc.Hostname)))
		t.origin(host, svc.Source)
	}
	slices.SortFunc(scopes, func(a, b *routev3.ScopedRouteConfiguration) int { return cmp.Compare(a.Name, b.Name) })
	return rcs, scopes
}

// routeScope sends requests for one host name (the Host header without its port) to a
// route configuration. The scope is named after its key.
func routeScope(host, routeConfig string) *routev3.ScopedRouteConfiguration {
	return &routev3.ScopedRouteConfiguration{
		Name:                   host,
		RouteConfigurationName: routeConfig,
		Key: &routev3.ScopedRouteConfiguration_Key{Fragments: []*routev3.ScopedRouteConfiguration_Key_Fragment{{
			Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: host},
		}}},
	}
}

// claimHosts gives each host name (a domain without its port) to exactly one service: a
// request's host picks one route scope, and so one service's route configuration. Each
// service's own hostname is claimed first; an alias that another service already holds is
// left out of the other's virtual hosts, with a warning. It returns each target's domains
// and the service that owns each host name.
func (t *translation) claimHosts(targets []vhostTarget) ([][]string, map[string]*model.Service) {
	cands := make([][]domain, len(targets))
	for i, vt := range targets {
		portless := portlessPort(vt.svc) == vt.port.Number
		cands[i] = serviceDomains(vt.svc, vt.port.Number, portless, t.class.Namespace)
	}
	owner := map[string]*model.Service{}
	warned := map[[2]string]bool{}
	for _, canonical := range []bool{true, false} {
		for i, vt := range targets {
			for _, d := range cands[i] {
				held, taken := owner[d.host]
				switch {
				case d.canonical != canonical || (taken && held == vt.svc):
					// Not this pass's kind of name, or already this service's.
				case taken:
					if k := [2]string{d.host, vt.svc.Hostname}; !warned[k] {
						warned[k] = true
						t.diags.add(model.Warnf(vt.svc.Source, "", "host name %q is already served by service %s; left out of the routes of %s",
							d.host, held.Hostname, vt.svc.Hostname))
					}
				default:
					owner[d.host] = vt.svc
				}
			}
		}
	}
	out := make([][]string, len(targets))
	for i, vt := range targets {
		for _, d := range cands[i] {
			if owner[d.host] == vt.svc && !slices.Contains(out[i], d.name) {
				out[i] = append(out[i], d.name)
			}
		}
	}
	return out, owner
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
		r := defaultRoute(clusterName(vt.port.Number, "", vt.svc.Hostname))
		t.addHashPolicy(r.GetRoute(), vt.svc.Source, "") // DestinationRule consistentHash: see hashpolicy.go
		return []*routev3.Route{r}
	}
	t.origin(vt.name(), vssSources(vss)...)
	t.origin(RouteConfigName(vt.svc.Hostname), vssSources(vss)...)
	return t.concatRoutes(vss, vt)
}

// concatRoutes builds the routes of several VirtualServices for one virtual host, in
// order, and warns about each route that a route before it leaves unreachable.
func (t *translation) concatRoutes(vss []*model.VirtualService, vt vhostTarget) []*routev3.Route {
	var routes []*routev3.Route
	var catchAll string // the http route that matches every request, once there is one
	for _, vs := range vss {
		for i, hr := range vs.Spec.Http {
			path := fmt.Sprintf("spec.http[%d]", i)
			rs := t.httpRoutes(vs, path, hr, vt)
			if catchAll != "" && len(rs) > 0 {
				t.diags.add(model.Warnf(vs.Source, path, "never matches on port %d: %s matches every request first",
					vt.port.Number, catchAll))
			}
			if catchAll == "" && slices.ContainsFunc(rs, matchesEverything) {
				catchAll = fmt.Sprintf("%s of %s", path, vs.Source)
			}
			routes = append(routes, rs...)
		}
	}
	return routes
}

func vssSources(vss []*model.VirtualService) []model.Ref {
	out := make([]model.Ref, len(vss))
	for i, vs := range vss {
		out[i] = vs.Source
	}
	return out
}

// matchesEverything reports whether a route takes every request: a "/" prefix and no
// other condition.
func matchesEverything(r *routev3.Route) bool {
	m := r.GetMatch()
	return m.GetPrefix() == "/" && len(m.Headers) == 0 && len(m.QueryParameters) == 0 && len(m.Cookies) == 0 &&
		m.RuntimeFraction == nil && m.Grpc == nil && m.TlsContext == nil && len(m.DynamicMetadata) == 0 && len(m.FilterState) == 0
}

// defaultRoute sends everything to one cluster with the same timeout and retry defaults
// as a VirtualService route that sets neither.
func defaultRoute(cluster string) *routev3.Route {
	return &routev3.Route{
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: routeAction([]weightedDestination{{cluster: cluster, weight: 1}}, nil, retryPolicy(nil))},
	}
}
