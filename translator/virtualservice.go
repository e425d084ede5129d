package translator

import (
	"fmt"
	"slices"

	"github.com/weir-mesh/weir/model"
)

// meshGateway is the reserved gateway name that binds a VirtualService to sidecars.
const meshGateway = "mesh"

// indexVirtualServices records, for each service hostname, the valid VirtualServices whose
// http routes apply to it, ordered by namespace/name.
func (w *world) indexVirtualServices(in []*model.VirtualService) {
	vss := slices.Clone(in)
	slices.SortFunc(vss, func(a, b *model.VirtualService) int { return compareObjects(a.Source, b.Source) })
	for _, vs := range vss {
		diags := model.ValidateVirtualService(vs)
		w.diags.add(diags...)
		if model.HasErrors(diags) || !w.appliesToSidecars(vs) {
			continue
		}
		w.diags.add(ignoredFields(vs.Source, "spec", vs.Spec, "hosts", "http", "gateways")...)
		if len(vs.Spec.Http) == 0 {
			continue
		}
		var seen []string
		for k, h := range vs.Spec.Hosts {
			host := w.resolve(h, vs.Source.Namespace)
			if !slices.Contains(seen, host) && w.routableHost(vs.Source, fmt.Sprintf("spec.hosts[%d]", k), h, host) {
				seen = append(seen, host)
				w.addVirtualService(host, vs, k)
			}
		}
	}
}

// appliesToSidecars follows Istio: a VirtualService bound to gateways reaches sidecars only
// when its gateways include "mesh".
func (w *world) appliesToSidecars(vs *model.VirtualService) bool {
	gws := vs.Spec.Gateways
	switch {
	case len(gws) == 0:
		return true
	case !slices.Contains(gws, meshGateway):
		w.diags.add(model.Warnf(vs.Source, "spec.gateways",
			"binds only to gateways (no %q), which weir does not serve yet; not applied to sidecars", meshGateway))
		return false
	case len(gws) > 1:
		w.diags.add(model.Warnf(vs.Source, "spec.gateways",
			"gateways other than %q are not supported yet; applied to sidecars only", meshGateway))
	}
	return true
}

// routableHost reports whether a VirtualService host names a service with HTTP ports.
func (w *world) routableHost(src model.Ref, path, written, host string) bool {
	svc := w.byHost[host]
	switch {
	case isWildcard(host):
		w.diags.add(model.Warnf(src, path, "wildcard hosts are not supported yet; ignored"))
	case svc == nil:
		w.diags.add(model.Warnf(src, path, "host %s matches no service; its routes are not used",
			describeHost(written, host)))
	case len(httpPorts(svc)) == 0:
		w.diags.add(model.Warnf(src, path,
			"service %s has no HTTP port; http routes are not used for it (TCP and TLS routing come later)", host))
	default:
		return true
	}
	return false
}

// addVirtualService appends vs to the host's list. Istio merges several VirtualServices of
// one host only in narrow cases; weir concatenates their routes in namespace/name order
// and says so, until the merge rules are settled.
func (w *world) addVirtualService(host string, vs *model.VirtualService, hostIndex int) {
	if prev := w.vsByHost[host]; len(prev) > 0 {
		w.diags.add(model.Warnf(vs.Source, fmt.Sprintf("spec.hosts[%d]", hostIndex),
			"also routes host %s; its http routes are appended after those of %s (merged in namespace/name order)",
			host, prev[0].Source))
	}
	w.vsByHost[host] = append(w.vsByHost[host], vs)
}
