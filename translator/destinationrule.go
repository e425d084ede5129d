package translator

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weir-mesh/weir/model"
)

// destinationRule is the DestinationRule that applies to one service, compiled.
type destinationRule struct {
	source  model.Ref
	policy  clusterPolicy
	subsets []subset // in the order written; names are unique (validation)
}

type subset struct {
	name   string
	labels map[string]string
	policy clusterPolicy
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

// indexDestinationRules picks, for each service, the first valid DestinationRule by
// namespace/name (Istio's rule for conflicts) and compiles it.
func (w *world) indexDestinationRules(in []*model.DestinationRule) {
	drs := slices.Clone(in)
	slices.SortFunc(drs, func(a, b *model.DestinationRule) int { return compareObjects(a.Source, b.Source) })
	for _, dr := range drs {
		diags := model.ValidateDestinationRule(dr)
		w.diags.add(diags...)
		if model.HasErrors(diags) {
			continue
		}
		host := w.resolve(dr.Spec.Host, dr.Source.Namespace)
		switch first, taken := w.rules[host]; {
		case isWildcard(host):
			w.diags.add(model.Warnf(dr.Source, "spec.host", "wildcard hosts are not supported yet; DestinationRule not used"))
		case !w.knownHost(host):
			w.diags.add(model.Warnf(dr.Source, "spec.host", "host %s matches no service; DestinationRule not used",
				describeHost(dr.Spec.Host, host)))
		case taken:
			w.diags.add(model.Errorf(dr.Source, "spec.host",
				"host %s is already configured by %s (the first by namespace/name wins); this DestinationRule is ignored",
				host, first.source))
		default:
			w.rules[host] = w.compileDestinationRule(dr)
		}
	}
}

func (w *world) compileDestinationRule(dr *model.DestinationRule) *destinationRule {
	src, spec := dr.Source, dr.Spec
	w.diags.add(ignoredFields(src, "spec", spec, "host", "trafficPolicy", "subsets")...)
	top, diags := compileTrafficPolicy(src, "spec.trafficPolicy", spec.TrafficPolicy)
	w.diags.add(diags...)
	out := &destinationRule{source: src, policy: top}
	for i, s := range spec.Subsets {
		path := fmt.Sprintf("spec.subsets[%d]", i)
		w.diags.add(ignoredFields(src, path, s, "name", "labels", "trafficPolicy")...)
		p, diags := subsetPolicy(src, path+".trafficPolicy", spec.TrafficPolicy, top, s.TrafficPolicy)
		w.diags.add(diags...)
		out.subsets = append(out.subsets, subset{name: s.Name, labels: s.Labels, policy: p})
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
