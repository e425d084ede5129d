package translator

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weir-mesh/weir/model"
)

// meshGateway is the reserved gateway name that binds a VirtualService to sidecars.
const meshGateway = "mesh"

// indexVirtualServices records the valid VirtualServices this proxy uses, ordered by
// namespace/name: for a sidecar, those bound to "mesh", by service hostname; for a
// gateway, those bound to Gateways, by Gateway.
func (w *world) indexVirtualServices(in []*model.VirtualService, gateways []*model.Gateway) {
	vss := slices.Clone(in)
	slices.SortFunc(vss, func(a, b *model.VirtualService) int { return compareObjects(a.Source, b.Source) })
	known := map[string]bool{}
	for _, gw := range gateways {
		known[gatewayName(gw)] = true
	}
	for _, vs := range vss {
		diags := model.ValidateVirtualService(vs)
		w.diags.add(diags...)
		if model.HasErrors(diags) {
			continue
		}
		w.diags.add(ignoredFields(vs.Source, "spec", vs.Spec, "hosts", "http", "gateways", "exportTo")...)
		w.checkGateways(vs, known)
		if !model.ExportedTo(vs.Spec.ExportTo, vs.Source.Namespace, w.class.Namespace) {
			continue
		}
		if len(vs.Spec.Http) == 0 {
			continue
		}
		if w.class.Role == model.RoleGateway {
			for _, g := range boundGatewayNames(vs) {
				w.vsByGateway[g] = append(w.vsByGateway[g], vs)
			}
			continue
		}
		if !appliesToSidecars(vs) {
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
func appliesToSidecars(vs *model.VirtualService) bool {
	return len(vs.Spec.Gateways) == 0 || slices.Contains(vs.Spec.Gateways, meshGateway)
}

// checkGateways warns about each Gateway a VirtualService binds to that does not exist:
// Istio ignores such a binding silently, which hides typos.
func (w *world) checkGateways(vs *model.VirtualService, known map[string]bool) {
	for i, g := range vs.Spec.Gateways {
		if g == meshGateway {
			continue
		}
		name := g
		if !strings.Contains(g, "/") {
			name = vs.Source.Namespace + "/" + g
		}
		if !known[name] {
			w.diags.add(model.Warnf(vs.Source, fmt.Sprintf("spec.gateways[%d]", i),
				"Gateway %s does not exist; no gateway serves these routes through it", name))
		}
	}
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
	case len(httpPorts(svc)) == 0 && hasProtocol(svc, model.ProtocolHTTPS):
		// Seed 002's external API: Istio passes HTTPS through and ignores these routes too.
		w.diags.add(model.Warnf(src, path,
			"service %s has only HTTPS ports, which carry TLS the sidecar cannot read, so these http routes never apply (Istio ignores them too); "+
				"to apply them, have the application send plain HTTP to an HTTP port of the service with targetPort 443 and add a DestinationRule with tls mode SIMPLE, so that the sidecar originates TLS", host))
	case len(httpPorts(svc)) == 0:
		w.diags.add(model.Warnf(src, path,
			"service %s has no HTTP port; http routes are not used for it (TCP and TLS routing come later)", host))
	default:
		return true
	}
	return false
}

// addVirtualService appends vs to the host's list. Istio keeps only the oldest
// VirtualService of a host for sidecars and drops the others silently; weir merges them:
// routes are concatenated in namespace/name order, and the merge is reported.
func (w *world) addVirtualService(host string, vs *model.VirtualService, hostIndex int) {
	if prev := w.vsByHost[host]; len(prev) > 0 {
		w.diags.add(mergeWarning(vs, fmt.Sprintf("spec.hosts[%d]", hostIndex), "host "+host, prev))
	}
	w.vsByHost[host] = append(w.vsByHost[host], vs)
}

// mergeWarning reports that vs's routes for what (a host, on a port) come after those of
// earlier VirtualServices. A route that can then never match gets its own warning when
// routes are built.
func mergeWarning(vs *model.VirtualService, field, what string, earlier []*model.VirtualService) model.Diagnostic {
	return model.Warnf(vs.Source, field, "also routes %s; its http routes are appended after those of %s (merged in namespace/name order)",
		what, earlier[0].Source)
}

func hasProtocol(svc *model.Service, p model.Protocol) bool {
	return slices.ContainsFunc(svc.Ports, func(sp model.ServicePort) bool { return sp.Protocol == p })
}
