package translator

import (
	"fmt"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// weightedDestination is one cluster a route sends traffic to, with its relative weight
// and the header changes of the destination that names it.
type weightedDestination struct {
	cluster string
	weight  uint32
	headers headerOps
}

// destinations resolves a route's destinations for one virtual host. Weights are
// relative. When any destination has a weight, weight-0 destinations are dropped (they
// mean "no traffic"); when none has one, traffic is split equally. A destination whose
// service, port or subset does not exist is dropped with an error, so that no route ever
// names a cluster that is not sent. ops holds each destination's header changes.
func (t *translation) destinations(vs *model.VirtualService, path string, hr *networking.HTTPRoute, vt vhostTarget, ops []headerOps) []weightedDestination {
	idx := make([]int, len(hr.Route))
	for j := range idx {
		idx[j] = j
	}
	if j, ok := t.coordinatedDestination(vs, hr, vt); ok {
		t.diags.add(model.Warnf(vs.Source, path+".route",
			"lists one unweighted destination per host of this VirtualService; each host routes to its own destination, not to an equal split across all of them"))
		idx = []int{j}
	}
	weighted := slices.ContainsFunc(idx, func(j int) bool { return hr.Route[j].Weight > 0 })
	var out []weightedDestination
	for _, j := range idx {
		rd, dpath := hr.Route[j], fmt.Sprintf("%s.route[%d]", path, j)
		t.diags.add(ignoredFields(vs.Source, dpath, rd, "destination", "weight", "headers")...)
		cluster, ok := t.destinationCluster(vs.Source, dpath+".destination", rd.Destination, vt, "destination")
		if !ok || (weighted && rd.Weight == 0) {
			continue
		}
		w := uint32(1)
		if weighted {
			w = uint32(rd.Weight)
		}
		out = addDestination(out, weightedDestination{cluster, w, ops[j]})
	}
	return out
}

// addDestination merges destinations that land on the same cluster with the same header
// changes; destinations whose header changes differ stay apart.
func addDestination(ds []weightedDestination, d weightedDestination) []weightedDestination {
	for i := range ds {
		if ds[i].cluster == d.cluster && ds[i].headers.equal(d.headers) {
			ds[i].weight += d.weight
			return ds
		}
	}
	return append(ds, d)
}

// coordinatedDestination recognises the seeds' "coordinated deployment" shape: a
// VirtualService with several hosts whose route lists, without weights, one destination
// per host. Read literally it splits each host's traffic across the other services too;
// what its author means is that each host goes to its own destination.
func (t *translation) coordinatedDestination(vs *model.VirtualService, hr *networking.HTTPRoute, vt vhostTarget) (int, bool) {
	if vt.svc == nil || len(hr.Route) < 2 || len(vs.Spec.Hosts) < 2 {
		return 0, false
	}
	var vsHosts, destHosts []string
	for _, h := range vs.Spec.Hosts {
		vsHosts = append(vsHosts, t.w.resolve(h, vs.Source.Namespace))
	}
	pick := -1
	for j, rd := range hr.Route {
		h := t.w.resolve(rd.GetDestination().GetHost(), vs.Source.Namespace)
		if rd.Weight != 0 || slices.Contains(destHosts, h) || !slices.Contains(vsHosts, h) {
			return 0, false
		}
		destHosts = append(destHosts, h)
		if h == vt.svc.Hostname {
			pick = j
		}
	}
	return pick, pick >= 0
}

// destinationCluster names the cluster of one destination as seen from virtual host vt,
// or reports why there is none and that what (a "destination", a "mirror") is dropped.
func (t *translation) destinationCluster(src model.Ref, path string, d *networking.Destination, vt vhostTarget, what string) (string, bool) {
	host := t.w.resolve(d.GetHost(), src.Namespace)
	svc := t.w.byHost[host]
	if svc == nil {
		t.diags.add(model.Errorf(src, path+".host", "host %s matches no service; %s dropped",
			describeHost(d.GetHost(), host), what))
		return "", false
	}
	if !t.w.visible(svc) {
		t.diags.add(model.Errorf(src, path+".host", "%s; %s dropped", t.w.invisibleReason(svc), what))
		return "", false
	}
	port, ok := t.destinationPort(src, path, d, svc, vt, what)
	if !ok {
		return "", false
	}
	if d.Subset != "" {
		rule := t.w.rules[host]
		if _, ok := rule.subset(d.Subset); !ok {
			t.diags.add(model.Errorf(src, path+".subset", "%s; %s dropped", missingSubset(rule, d.Subset, host), what))
			return "", false
		}
	}
	return clusterName(port, d.Subset, host), true
}

func missingSubset(rule *destinationRule, name, host string) string {
	if rule == nil {
		return fmt.Sprintf("subset %q is not defined: no DestinationRule applies to host %s", name, host)
	}
	return fmt.Sprintf("subset %q is not defined for host %s by %s (subsets: %s)", name, host, rule.source, rule.subsetNames())
}

// destinationPort picks the service port: port.number when given; else the virtual
// host's own port when the service has it; else the service's only HTTP port.
func (t *translation) destinationPort(src model.Ref, path string, d *networking.Destination, svc *model.Service, vt vhostTarget, what string) (uint32, bool) {
	ports := httpPorts(svc)
	if n := d.GetPort().GetNumber(); n != 0 {
		if _, ok := httpPort(svc, n); ok {
			return n, true
		}
		t.diags.add(model.Errorf(src, path+".port.number", "service %s has no HTTP port %d; %s dropped", svc.Hostname, n, what))
		return 0, false
	}
	if _, ok := httpPort(svc, vt.port.Number); ok {
		return vt.port.Number, true
	}
	if len(ports) == 1 {
		return ports[0].Number, true
	}
	if len(ports) == 0 {
		t.diags.add(model.Errorf(src, path+".host", "service %s has no HTTP port; %s dropped", svc.Hostname, what))
		return 0, false
	}
	var nums []string
	for _, p := range ports {
		nums = append(nums, fmt.Sprint(p.Number))
	}
	t.diags.add(model.Errorf(src, path+".port", "service %s has several HTTP ports (%s) and none is %d; set port.number; %s dropped",
		svc.Hostname, strings.Join(nums, ", "), vt.port.Number, what))
	return 0, false
}
