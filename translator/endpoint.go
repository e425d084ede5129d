package translator

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-mesh/weir/model"
)

// selectEndpoints keeps the ready endpoints whose labels contain every subset label.
// Endpoints that Kubernetes reports not ready stay out of EDS rather than being sent with
// an unhealthy status, so Envoy's panic mode can never route to them.
func selectEndpoints(eps []*model.Endpoint, labels map[string]string) []*model.Endpoint {
	var out []*model.Endpoint
	for _, e := range eps {
		if e.Ready && hasLabels(e.Labels, labels) {
			out = append(out, e)
		}
	}
	return out
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// clusterLoadAssignment groups endpoints (already sorted by locality, then address) by
// locality. Every locality is at priority 0: weir does not do locality failover.
func clusterLoadAssignment(name string, eps []*model.Endpoint, port model.ServicePort) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	var cur *endpointv3.LocalityLbEndpoints
	var curLoc model.Locality
	for _, e := range eps {
		if cur == nil || e.Locality != curLoc {
			cur = &endpointv3.LocalityLbEndpoints{Locality: locality(e.Locality)}
			curLoc = e.Locality
			cla.Endpoints = append(cla.Endpoints, cur)
		}
		cur.LbEndpoints = append(cur.LbEndpoints, lbEndpoint(e.Address, endpointPort(e, port), e.Weight))
	}
	return cla
}

func locality(l model.Locality) *corev3.Locality {
	if l == (model.Locality{}) {
		return nil
	}
	return &corev3.Locality{Region: l.Region, Zone: l.Zone, SubZone: l.SubZone}
}

func lbEndpoint(address string, port, weight uint32) *endpointv3.LbEndpoint {
	ep := &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: socketAddress(address, port),
		}},
	}
	if weight > 0 {
		ep.LoadBalancingWeight = wrapperspb.UInt32(weight)
	}
	return ep
}

// endpointPort is the port an endpoint listens on; sources should always fill it, and the
// service's target port is the fallback Kubernetes itself would use.
func endpointPort(e *model.Endpoint, port model.ServicePort) uint32 {
	switch {
	case e.Port != 0:
		return e.Port
	case port.TargetPort != 0:
		return port.TargetPort
	}
	return port.Number
}

func socketAddress(address string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       address,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}
