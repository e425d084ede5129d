package xds

import (
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-mesh/weir/model"
)

// Node metadata keys an Envoy sets in its bootstrap to say who it is.
const (
	metaRole            = "role"
	metaNamespace       = "namespace"
	metaLabels          = "labels"
	metaOutboundAddress = "outbound_address"
	metaOutboundPort    = "outbound_port"
	metaListenerAddress = "listener_address"
	metaListenerPorts   = "listener_ports"
)

// ClassOf derives the proxy class from an Envoy node. Missing metadata falls back to a
// sidecar in namespace "default" with the default outbound listener.
func ClassOf(node *corev3.Node) model.ProxyClass {
	md := node.GetMetadata().GetFields()
	class := model.ProxyClass{
		Role:            model.RoleSidecar,
		Namespace:       "default",
		OutboundAddress: model.DefaultOutboundAddress,
		OutboundPort:    model.DefaultOutboundPort,
	}
	if r := md[metaRole].GetStringValue(); r == string(model.RoleGateway) {
		class.Role = model.RoleGateway
	}
	if ns := md[metaNamespace].GetStringValue(); ns != "" {
		class.Namespace = ns
	}
	if labels := md[metaLabels].GetStructValue().GetFields(); len(labels) > 0 {
		class.Labels = make(map[string]string, len(labels))
		for k, v := range labels {
			class.Labels[k] = stringOf(v)
		}
	}
	if a := md[metaOutboundAddress].GetStringValue(); a != "" {
		class.OutboundAddress = a
	}
	if p := portOf(md[metaOutboundPort]); p != 0 {
		class.OutboundPort = p
	}
	if a := md[metaListenerAddress].GetStringValue(); a != "" {
		class.ListenerAddress = a
	}
	for k, v := range md[metaListenerPorts].GetStructValue().GetFields() {
		from, to := portOf(structpb.NewStringValue(k)), portOf(v)
		if from == 0 || to == 0 {
			continue
		}
		if class.ListenerPorts == nil {
			class.ListenerPorts = map[uint32]uint32{}
		}
		class.ListenerPorts[from] = to
	}
	if l := node.GetLocality(); l != nil {
		class.Locality = model.Locality{Region: l.GetRegion(), Zone: l.GetZone(), SubZone: l.GetSubZone()}
	}
	return class
}

func stringOf(v *structpb.Value) string {
	switch x := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return x.StringValue
	case *structpb.Value_NumberValue:
		return strconv.FormatFloat(x.NumberValue, 'f', -1, 64)
	case *structpb.Value_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	}
	return ""
}

// portOf accepts a port written as a number or a string, as YAML authors do both.
func portOf(v *structpb.Value) uint32 {
	switch x := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		if x.NumberValue > 0 && x.NumberValue < 65536 {
			return uint32(x.NumberValue)
		}
	case *structpb.Value_StringValue:
		if n, err := strconv.ParseUint(x.StringValue, 10, 16); err == nil {
			return uint32(n)
		}
	}
	return 0
}
