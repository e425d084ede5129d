package translator

import (
	"cmp"
	"slices"

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
// priority and locality, as the plan says: without a locality policy every locality is at
// priority 0 and unweighted.
func clusterLoadAssignment(name string, eps []*model.Endpoint, port model.ServicePort, plan localityPlan) *endpointv3.ClusterLoadAssignment {
	type group struct {
		priority uint32
		loc      model.Locality
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	groups := map[group]*endpointv3.LocalityLbEndpoints{}
	var order []group
	for _, e := range eps {
		weight, kept := plan.weights[e.Locality]
		if plan.weights != nil && !kept {
			continue // distribute sends this locality nothing
		}
		g := group{loc: e.Locality}
		if plan.priority != nil {
			g.priority = plan.priority(e)
		}
		cur, ok := groups[g]
		if !ok {
			cur = &endpointv3.LocalityLbEndpoints{Locality: locality(e.Locality), Priority: g.priority}
			if plan.weights != nil {
				cur.LoadBalancingWeight = wrapperspb.UInt32(weight)
			}
			groups[g] = cur
			order = append(order, g)
		}
		cur.LbEndpoints = append(cur.LbEndpoints, lbEndpoint(e.Address, endpointPort(e, port), e.Weight))
	}
	// Envoy wants priorities numbered from 0 without gaps.
	slices.SortStableFunc(order, func(a, b group) int { return cmp.Compare(a.priority, b.priority) })
	rank, last := uint32(0), uint32(0)
	for i, g := range order {
		if i > 0 && g.priority != last {
			rank++
		}
		last = g.priority
		groups[g].Priority = rank
		cla.Endpoints = append(cla.Endpoints, groups[g])
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
