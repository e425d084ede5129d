package translator

import (
	"cmp"
	"slices"

	"github.com/weir-mesh/weir/model"
)

// world is a Snapshot indexed for translation: services by hostname, endpoints by service
// port, the winning DestinationRule and the VirtualServices of each hostname. Building it
// sorts every input, so nothing downstream depends on the order of the Snapshot's slices.
type world struct {
	class     model.ProxyClass
	services  []*model.Service // sorted by hostname, one per hostname
	byHost    map[string]*model.Service
	endpoints map[endpointKey][]*model.Endpoint
	rules     map[string]*destinationRule
	vsByHost  map[string][]*model.VirtualService
	// vsByGateway holds, for a gateway proxy, the VirtualServices bound to each Gateway
	// (namespace/name).
	vsByGateway map[string][]*model.VirtualService
	// scope is what the proxy's Sidecar lets it reach; services holds only what it allows.
	scope sidecarScope
	diags *diagnostics
}

type endpointKey struct {
	hostname string
	port     uint32
}

func newWorld(snap *model.Snapshot, class model.ProxyClass, diags *diagnostics) *world {
	w := &world{
		class:       class,
		byHost:      map[string]*model.Service{},
		endpoints:   map[endpointKey][]*model.Endpoint{},
		rules:       map[string]*destinationRule{},
		vsByHost:    map[string][]*model.VirtualService{},
		vsByGateway: map[string][]*model.VirtualService{},
		diags:       diags,
	}
	w.indexServices(snap.Services)
	w.scope = w.sidecarFor(snap.Sidecars)
	w.services = slices.DeleteFunc(w.services, func(s *model.Service) bool { return !w.visible(s) })
	w.indexEndpoints(snap.Endpoints)
	w.indexDestinationRules(snap.DestinationRules)
	w.indexVirtualServices(snap.VirtualServices, snap.Gateways)
	return w
}

// indexServices keeps one service per hostname: the first by source object. Two sources
// claiming one hostname (a Service and a ServiceEntry, say) would otherwise produce two
// clusters of one name, which Envoy rejects.
func (w *world) indexServices(in []*model.Service) {
	svcs := slices.Clone(in)
	slices.SortFunc(svcs, func(a, b *model.Service) int {
		return cmp.Or(cmp.Compare(a.Hostname, b.Hostname), compareRefs(a.Source, b.Source))
	})
	for _, s := range svcs {
		if first, dup := w.byHost[s.Hostname]; dup {
			w.diags.add(model.Errorf(s.Source, "", "hostname %s is already defined by %s; this one is ignored",
				s.Hostname, first.Source))
			continue
		}
		w.byHost[s.Hostname] = s
		w.services = append(w.services, s)
	}
}

func (w *world) indexEndpoints(in []*model.Endpoint) {
	for _, e := range in {
		k := endpointKey{e.Hostname, e.ServicePort}
		w.endpoints[k] = append(w.endpoints[k], e)
	}
	for _, eps := range w.endpoints {
		slices.SortFunc(eps, compareEndpoints)
	}
}

func compareEndpoints(a, b *model.Endpoint) int {
	return cmp.Or(cmp.Compare(a.Locality.Region, b.Locality.Region), cmp.Compare(a.Locality.Zone, b.Locality.Zone),
		cmp.Compare(a.Locality.SubZone, b.Locality.SubZone), cmp.Compare(a.Address, b.Address),
		cmp.Compare(a.Port, b.Port), compareRefs(a.Source, b.Source))
}

// visible reports whether this proxy may reach a service: it is exported to the proxy's
// namespace and its Sidecar's egress hosts allow it.
func (w *world) visible(svc *model.Service) bool {
	return model.ExportedTo(svc.ExportTo, svc.Namespace, w.class.Namespace) && w.scope.allows(svc)
}

// knownHost reports whether a hostname names a service; resolveHost takes such names as
// written.
func (w *world) knownHost(h string) bool {
	_, ok := w.byHost[h]
	return ok
}

// resolve expands a host written in an object of namespace ns.
func (w *world) resolve(host, ns string) string {
	return resolveHost(host, ns, w.knownHost)
}

// httpPorts lists the ports of a service that the HTTP listener serves, by number.
func httpPorts(svc *model.Service) []model.ServicePort {
	var out []model.ServicePort
	for _, p := range svc.Ports {
		if p.Protocol.IsHTTP() {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b model.ServicePort) int { return cmp.Compare(a.Number, b.Number) })
	return slices.CompactFunc(out, func(a, b model.ServicePort) bool { return a.Number == b.Number })
}

// httpPort finds an HTTP port of svc by number.
func httpPort(svc *model.Service, number uint32) (model.ServicePort, bool) {
	for _, p := range httpPorts(svc) {
		if p.Number == number {
			return p, true
		}
	}
	return model.ServicePort{}, false
}

func compareObjects(a, b model.Ref) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), compareRefs(a, b))
}
