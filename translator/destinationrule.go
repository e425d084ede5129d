package translator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/weir-mesh/weir/model"
)

// destinationRule is the DestinationRule that applies to one service, compiled. Each layer
// holds only the blocks written at that layer; policyFor stacks them.
type destinationRule struct {
	source model.Ref
	policy clusterPolicy
	// ports holds the top-level portLevelSettings, by port number.
	ports   map[uint32]clusterPolicy
	subsets []subset // in the order written; names are unique (validation)
}

type subset struct {
	name   string
	labels map[string]string
	// own holds the blocks the subset's trafficPolicy sets, ports its portLevelSettings.
	own   clusterPolicy
	ports map[uint32]clusterPolicy
}

// policyFor is the policy of one port of one subset (the zero subset: the service's own
// cluster), layered in Istio's order: the top-level blocks, replaced block by block by the
// top-level portLevelSettings for the port, then by the subset's blocks, then by the
// subset's portLevelSettings for the port. A nil rule has no policy.
func (r *destinationRule) policyFor(s subset, port uint32) clusterPolicy {
	if r == nil {
		return clusterPolicy{}
	}
	p := overlay(r.policy, r.ports[port])
	p = overlay(p, s.own)
	return overlay(p, s.ports[port])
}

func (r *destinationRule) subset(name string) (subset, bool) {
	if r == nil {
		return subset{}, false
	}
	for _, s := range r.subsets {
		if s.name == name {
			return s, true
		}
	}
	return subset{}, false
}

func (r *destinationRule) subsetNames() string {
	var names []string
	for _, s := range r.subsets {
		names = append(names, s.name)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// indexDestinationRules picks, for each service, the DestinationRule this proxy class sees
// and compiles it. Among the rules exported to the proxy's namespace, Istio's order
// decides: one whose workloadSelector selects the proxy, then one in the proxy's
// namespace, then one in the service's, then one in the root namespace, then any other;
// two rules of one rank conflict, and the first by namespace/name wins.
func (w *world) indexDestinationRules(in []*model.DestinationRule) {
	drs := slices.Clone(in)
	rank := func(dr *model.DestinationRule) int {
		host := w.resolve(dr.Spec.GetHost(), dr.Source.Namespace)
		switch ns := dr.Source.Namespace; {
		case dr.Spec.GetWorkloadSelector() != nil:
			return 0
		case ns == w.class.Namespace:
			return 1
		case w.byHost[host] != nil && ns == w.byHost[host].Namespace:
			return 2
		case ns == rootNamespace:
			return 3
		}
		return 4
	}
	slices.SortFunc(drs, func(a, b *model.DestinationRule) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), compareObjects(a.Source, b.Source))
	})
	ranks := map[string]int{} // rank of the rule each host took
	for _, dr := range drs {
		diags := model.ValidateDestinationRule(dr)
		w.diags.add(diags...)
		if model.HasErrors(diags) || !w.seesRule(dr) {
			continue
		}
		host := w.resolve(dr.Spec.Host, dr.Source.Namespace)
		switch first, taken := w.rules[host]; {
		case isWildcard(host):
			w.diags.add(model.Warnf(dr.Source, "spec.host", "wildcard hosts are not supported yet; DestinationRule not used"))
		case !w.knownHost(host):
			w.diags.add(model.Warnf(dr.Source, "spec.host", "host %s matches no service; DestinationRule not used",
				describeHost(dr.Spec.Host, host)))
		case taken && ranks[host] < rank(dr):
			// A rule nearer the proxy applies to it; this one still applies elsewhere.
		case taken:
			w.diags.add(model.Errorf(dr.Source, "spec.host",
				"host %s is already configured by %s (the first by namespace/name wins); this DestinationRule is ignored",
				host, first.source))
		default:
			w.rules[host] = w.compileDestinationRule(dr, w.byHost[host])
			ranks[host] = rank(dr)
		}
	}
}

// seesRule reports whether the proxy class is one the rule applies to: exportTo names its
// namespace (or is empty, or "*"; "." is the rule's own namespace), and a workloadSelector,
// if any, selects it within the rule's namespace.
func (w *world) seesRule(dr *model.DestinationRule) bool {
	ns := w.class.Namespace
	if !model.ExportedTo(dr.Spec.ExportTo, dr.Source.Namespace, ns) {
		return false
	}
	sel := dr.Spec.WorkloadSelector
	return sel == nil || (ns == dr.Source.Namespace && hasLabels(w.class.Labels, sel.MatchLabels))
}

func (w *world) compileDestinationRule(dr *model.DestinationRule, svc *model.Service) *destinationRule {
	src, spec := dr.Source, dr.Spec
	w.diags.add(ignoredFields(src, "spec", spec, "host", "trafficPolicy", "subsets", "exportTo", "workloadSelector")...)
	top, diags := compileTrafficPolicy(src, "spec.trafficPolicy", spec.TrafficPolicy)
	w.diags.add(diags...)
	topBlocks := writtenBlocksOf("spec.trafficPolicy", spec.TrafficPolicy)
	out := &destinationRule{source: src, policy: top}
	out.ports = w.compilePortPolicies(src, "spec.trafficPolicy", svc, spec.TrafficPolicy,
		func(uint32) writtenBlocks { return topBlocks })
	for i, s := range spec.Subsets {
		path := fmt.Sprintf("spec.subsets[%d]", i)
		w.diags.add(ignoredFields(src, path, s, "name", "labels", "trafficPolicy")...)
		own, diags := subsetPolicy(src, path+".trafficPolicy", spec.TrafficPolicy, s.TrafficPolicy)
		w.diags.add(diags...)
		subBlocks := writtenBlocksOf(path+".trafficPolicy", s.TrafficPolicy)
		ports := w.compilePortPolicies(src, path+".trafficPolicy", svc, s.TrafficPolicy, func(port uint32) writtenBlocks {
			return topBlocks.under(portBlocks(spec.TrafficPolicy, port)).under(subBlocks)
		})
		out.subsets = append(out.subsets, subset{name: s.Name, labels: s.Labels, own: own, ports: ports})
	}
	return out
}

// describeHost prints a host as written and, when different, what it resolved to.
func describeHost(written, resolved string) string {
	if written == resolved {
		return fmt.Sprintf("%q", written)
	}
	return fmt.Sprintf("%q (%s)", written, resolved)
}
