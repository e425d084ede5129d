package translator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// Topology labels that failoverPriority may name; weir reads them from the proxy's and the
// endpoint's locality rather than from labels.
const (
	labelRegion  = "topology.kubernetes.io/region"
	labelZone    = "topology.kubernetes.io/zone"
	labelSubZone = "topology.istio.io/subzone"
)

// localitySettings is a compiled, enabled localityLbSetting. Which localities a proxy
// prefers depends on the proxy's own locality, so it is applied per proxy class when the
// endpoints of a cluster are assigned (see localityPlan).
type localitySettings struct {
	src  model.Ref
	path string
	// distribute, failover and failoverPriority in the order written; validation has
	// checked patterns, weights and that distribute and failover exclude each other.
	distribute       []*networking.LocalityLoadBalancerSetting_Distribute
	failover         []*networking.LocalityLoadBalancerSetting_Failover
	failoverPriority []string
}

func compileLocality(src model.Ref, path string, ls *networking.LocalityLoadBalancerSetting) (*localitySettings, []model.Diagnostic) {
	if ls == nil {
		return nil, nil
	}
	diags := ignoredFields(src, path, ls, "distribute", "failover", "failoverPriority", "enabled")
	if ls.Enabled != nil && !ls.Enabled.Value {
		if len(ls.Distribute) > 0 || len(ls.Failover) > 0 || len(ls.FailoverPriority) > 0 {
			diags = append(diags, model.Warnf(src, path+".enabled",
				"enabled: false turns locality load balancing off; distribute, failover and failoverPriority are ignored"))
		}
		return nil, diags
	}
	if len(ls.Distribute) > 0 && len(ls.FailoverPriority) > 0 {
		diags = append(diags, model.Warnf(src, path+".failoverPriority",
			"failoverPriority is ignored when distribute is set (Istio's rule: distribute weighs localities, it sets no failover order)"))
	}
	for _, p := range ls.FailoverPriority {
		if key, _, _ := strings.Cut(p, "="); key == "kubernetes.io/hostname" {
			diags = append(diags, model.Warnf(src, path+".failoverPriority",
				"weir knows no node names: %s is compared as a workload label, which proxies and endpoints rarely carry", key))
		}
	}
	return &localitySettings{src: src, path: path, distribute: ls.Distribute, failover: ls.Failover,
		failoverPriority: ls.FailoverPriority}, diags
}

// localityPlan is how one cluster's endpoints are laid out for one proxy class: at which
// priority each endpoint sits and what weight each locality gets. The zero plan puts
// everything at priority 0 with no locality weights (Envoy spreads by endpoint).
type localityPlan struct {
	priority func(*model.Endpoint) uint32
	// weights holds every locality that receives traffic; nil means no locality weights.
	// A locality absent from a non-nil map receives no traffic and is left out.
	weights map[model.Locality]uint32
}

// localityPlan decides the layout of a cluster's endpoints for this proxy class.
// Failover needs outlier detection to notice failing endpoints; Istio ignores failover
// silently without it, weir says so. Nothing here is switched on by outlier detection
// alone.
func (t *translation) localityPlan(cluster string, p clusterPolicy, eps []*model.Endpoint) localityPlan {
	ls := p.lb.getLocality()
	if ls == nil {
		return localityPlan{}
	}
	if len(ls.distribute) > 0 {
		weights := distributeWeights(t.class.Locality, ls.distribute, eps)
		if weights != nil && len(weights) == 0 && len(eps) > 0 {
			t.diags.add(model.Warnf(ls.src, ls.path+".distribute",
				"for proxies in %s, the localities distribute sends traffic to hold no endpoint of cluster %s: it gets no traffic from them",
				describeLocality(t.class.Locality), cluster))
		}
		return localityPlan{weights: weights}
	}
	if p.outlier == nil {
		t.diags.add(model.Warnf(ls.src, ls.path,
			"locality failover needs outlierDetection to notice failing endpoints, and cluster %s has none: no locality priorities are set and traffic is spread over every locality; add outlierDetection next to this loadBalancer",
			cluster))
		return localityPlan{}
	}
	proxy, labels := t.class.Locality, t.class.Labels
	byLabels := len(ls.failoverPriority) > 0
	byLocality := !byLabels || len(ls.failover) > 0
	return localityPlan{priority: func(e *model.Endpoint) uint32 {
		var prio uint32
		if byLabels {
			prio = labelPriority(ls.failoverPriority, proxy, labels, e)
		}
		if byLocality {
			// Istio's encoding: five locality levels per label level.
			prio = prio*5 + localityPriority(proxy, e.Locality, ls.failover)
		}
		return prio
	}}
}

func (s *lbSettings) getLocality() *localitySettings {
	if s == nil {
		return nil
	}
	return s.locality
}

// localityPriority is Istio's order: same sub-zone 0, same zone 1, same region 2, other
// regions 3, except that when a failover rule names the proxy's region only its target
// region stays at 3 and every other region moves to 4.
func localityPriority(proxy, ep model.Locality, failover []*networking.LocalityLoadBalancerSetting_Failover) uint32 {
	switch {
	case proxy.Region == ep.Region && proxy.Zone == ep.Zone && proxy.SubZone == ep.SubZone:
		return 0
	case proxy.Region == ep.Region && proxy.Zone == ep.Zone:
		return 1
	case proxy.Region == ep.Region:
		return 2
	}
	for _, f := range failover {
		if f.From == proxy.Region {
			if ep.Region != f.To {
				return 4
			}
			break
		}
	}
	return 3
}

// labelPriority implements failoverPriority: an endpoint matching the first k of n labels
// (and not the next) gets priority n-k. A "key=value" entry compares with value instead of
// the proxy's own label.
func labelPriority(order []string, proxy model.Locality, proxyLabels map[string]string, e *model.Endpoint) uint32 {
	for j, entry := range order {
		key, want, fixed := strings.Cut(entry, "=")
		if !fixed {
			want = topologyValue(key, proxy, proxyLabels)
		}
		if topologyValue(key, e.Locality, e.Labels) != want {
			return uint32(len(order) - j)
		}
	}
	return 0
}

func topologyValue(key string, loc model.Locality, labels map[string]string) string {
	switch key {
	case labelRegion:
		return loc.Region
	case labelZone:
		return loc.Zone
	case labelSubZone:
		return loc.SubZone
	}
	return labels[key]
}

// distributeWeights applies the first distribute entry whose from matches the proxy's
// locality. Each endpoint locality takes the most specific to pattern that matches it;
// the pattern's weight is shared among its localities in proportion to their endpoints'
// weights (Istio's rule). Localities no pattern matches receive nothing. Nil when no
// entry is for this proxy: its traffic is not weighted by locality.
func distributeWeights(proxy model.Locality, rules []*networking.LocalityLoadBalancerSetting_Distribute, eps []*model.Endpoint) map[model.Locality]uint32 {
	i := slices.IndexFunc(rules, func(d *networking.LocalityLoadBalancerSetting_Distribute) bool {
		return localityMatch(proxy, d.From)
	})
	if i < 0 {
		return nil
	}
	patterns := slices.SortedFunc(func(yield func(string) bool) {
		for p := range rules[i].To {
			if !yield(p) {
				return
			}
		}
	}, func(a, b string) int { return cmp.Or(cmp.Compare(specificity(b), specificity(a)), cmp.Compare(a, b)) })
	size := map[model.Locality]uint64{}  // endpoint weight per locality
	owner := map[model.Locality]string{} // the pattern each locality takes
	patternSize := map[string]uint64{}   // endpoint weight per pattern
	for _, e := range eps {
		k := slices.IndexFunc(patterns, func(p string) bool { return localityMatch(e.Locality, p) })
		if k < 0 {
			continue
		}
		w := uint64(max(e.Weight, 1))
		size[e.Locality] += w
		owner[e.Locality] = patterns[k]
		patternSize[patterns[k]] += w
	}
	return localityWeights(rules[i].To, size, owner, patternSize)
}

// localityWeights turns pattern weights into whole locality weights with the exact ratios:
// locality L of pattern P gets weight(P) * size(L) / size(P), scaled by the least common
// multiple of the pattern sizes and reduced by the common divisor, so that one locality
// per pattern reads as the weights written.
func localityWeights(to map[string]uint32, size map[model.Locality]uint64, owner map[model.Locality]string, patternSize map[string]uint64) map[model.Locality]uint32 {
	scale := uint64(1)
	for _, s := range patternSize {
		scale = lcm(scale, s)
		if scale > 1_000_000 {
			scale = 1_000_000 // ratios off by at most one part in a million
			break
		}
	}
	raw := map[model.Locality]uint64{}
	common := scale
	for loc, s := range size {
		p := owner[loc]
		w := max(1, uint64(to[p])*s*scale/patternSize[p])
		raw[loc] = w
		common = gcd(common, w)
	}
	out := make(map[model.Locality]uint32, len(raw))
	for loc, w := range raw {
		out[loc] = uint32(w / max(common, 1))
	}
	return out
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func lcm(a, b uint64) uint64 {
	if a == 0 || b == 0 {
		return max(a, b)
	}
	return a / gcd(a, b) * b
}

// localityMatch is Istio's: pattern is region[/zone[/subzone]], where "*" or a missing
// segment matches anything (and a "*" region matches every locality).
func localityMatch(loc model.Locality, pattern string) bool {
	parts := append(strings.SplitN(pattern, "/", 3), "", "")
	match := func(want, got string) bool { return want == "*" || want == "" || want == got }
	if parts[0] == "*" {
		return true
	}
	return parts[0] == loc.Region && match(parts[1], loc.Zone) && match(parts[2], loc.SubZone)
}

// specificity counts a pattern's concrete segments, so that us-west/zone1 wins over
// us-west/* for an endpoint in us-west/zone1.
func specificity(pattern string) int {
	n := 0
	for _, p := range strings.SplitN(pattern, "/", 3) {
		if p != "" && p != "*" {
			n++
		}
	}
	return n
}

// applyLocalityPlan marks the cluster for locality weights when the plan has them (Envoy
// ignores locality weights otherwise).
func applyLocalityPlan(c *clusterv3.Cluster, plan localityPlan) {
	if plan.weights == nil {
		return
	}
	if c.CommonLbConfig == nil {
		c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{}
	}
	c.CommonLbConfig.LocalityConfigSpecifier = &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{
		LocalityWeightedLbConfig: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig{},
	}
}

// describeLocality prints a locality the way Istio writes one.
func describeLocality(l model.Locality) string {
	return strings.TrimRight(fmt.Sprintf("%s/%s/%s", l.Region, l.Zone, l.SubZone), "/")
}
