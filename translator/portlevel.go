package translator

import (
	"fmt"

	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// compilePortPolicies compiles the portLevelSettings of one trafficPolicy (top-level or a
// subset's) found at path. Each setting replaces, for its port, the blocks it sets
// wholesale; base(port) is what it replaces, so that lost fields are reported the way they
// are for subsets. The first setting for a port wins, as in Istio.
func (w *world) compilePortPolicies(src model.Ref, path string, svc *model.Service, tp *networking.TrafficPolicy,
	base func(port uint32) writtenBlocks) map[uint32]clusterPolicy {
	if len(tp.GetPortLevelSettings()) == 0 {
		return nil
	}
	out := map[uint32]clusterPolicy{}
	for i, pl := range tp.PortLevelSettings {
		ppath := fmt.Sprintf("%s.portLevelSettings[%d]", path, i)
		w.diags.add(ignoredFields(src, ppath, pl, "port", "loadBalancer", "connectionPool", "outlierDetection", "tls")...)
		n := pl.GetPort().GetNumber() // validation: set
		if _, dup := out[n]; dup {
			w.diags.add(model.Warnf(src, ppath+".port.number",
				"port %d already has settings earlier in this list (the first wins, as in Istio); ignored", n))
			continue
		}
		if _, ok := httpPort(svc, n); !ok {
			w.diags.add(model.Warnf(src, ppath+".port.number",
				"service %s has no HTTP port %d (weir serves HTTP ports only); ignored", svc.Hostname, n))
			continue
		}
		p, diags := compileBlocks(src, ppath, pl.LoadBalancer, pl.ConnectionPool, pl.OutlierDetection, pl.Tls)
		w.diags.add(diags...)
		w.diags.add(replacedBlocks(src, fmt.Sprintf("port %d", n), base(n), portSettingBlocks(ppath, pl))...)
		out[n] = p
	}
	return out
}

func portSettingBlocks(path string, pl *networking.TrafficPolicy_PortTrafficPolicy) writtenBlocks {
	return newWrittenBlocks(path, pl.GetLoadBalancer(), pl.GetConnectionPool(), pl.GetOutlierDetection(), pl.GetTls())
}

// portBlocks are the blocks the first of tp's portLevelSettings for port sets, if any.
func portBlocks(tp *networking.TrafficPolicy, port uint32) writtenBlocks {
	for i, pl := range tp.GetPortLevelSettings() {
		if pl.GetPort().GetNumber() == port {
			return portSettingBlocks(fmt.Sprintf("spec.trafficPolicy.portLevelSettings[%d]", i), pl)
		}
	}
	return writtenBlocks{}
}
