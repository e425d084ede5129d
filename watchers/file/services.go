package file

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weir-mesh/weir/model"
)

// service is a model.Service under construction, with what its endpoints still need.
type service struct {
	model *model.Service
	src   *object
	// targets holds each port's named targetPort ("" when numeric); a name is resolved per
	// endpoint, from the Pod's container port or the WorkloadEntry's ports.
	targets []string
}

func (s *service) portByName(name string) (int, bool) {
	for i, p := range s.model.Ports {
		if p.Name == name {
			return i, true
		}
	}
	return 0, false
}

// kubeService converts a Kubernetes Service.
func kubeService(o *object) (*service, []model.Diagnostic) {
	svc := o.service
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, []model.Diagnostic{model.Warnf(o.ref, "spec.type", "type ExternalName is not supported yet; ignored (a ServiceEntry with resolution DNS does the same)")}
	}
	s := &service{src: o, model: &model.Service{
		Source:     o.ref,
		Hostname:   fmt.Sprintf("%s.%s.%s", o.ref.Name, o.ref.Namespace, model.DefaultDomainSuffix),
		Name:       o.ref.Name,
		Namespace:  o.ref.Namespace,
		Selector:   maps.Clone(svc.Spec.Selector),
		Resolution: model.ResolutionStatic,
	}}
	var diags []model.Diagnostic
	for i, p := range svc.Spec.Ports {
		field := fmt.Sprintf("spec.ports[%d]", i)
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			diags = append(diags, model.Warnf(o.ref, field+".protocol", "protocol %s is not supported; port %d ignored", p.Protocol, p.Port))
			continue
		}
		protocol, warn := kubeProtocol(p)
		if warn != "" {
			diags = append(diags, model.Warnf(o.ref, field+".appProtocol", "%s", warn))
		}
		target, name := uint32(p.Port), ""
		switch {
		case p.TargetPort.Type == intstr.String:
			target, name = 0, p.TargetPort.StrVal
		case p.TargetPort.IntVal != 0:
			target = uint32(p.TargetPort.IntVal)
		}
		s.model.Ports = append(s.model.Ports, model.ServicePort{Name: p.Name, Number: uint32(p.Port), TargetPort: target, Protocol: protocol})
		s.targets = append(s.targets, name)
	}
	return s, diags
}

// kubeProtocol takes a Service port's protocol from appProtocol, else from its name.
func kubeProtocol(p corev1.ServicePort) (model.Protocol, string) {
	if p.AppProtocol == nil {
		return protocolFromName(p.Name), ""
	}
	if proto, ok := parseProtocol(*p.AppProtocol); ok {
		return proto, ""
	}
	return protocolFromName(p.Name), fmt.Sprintf("appProtocol %q is not recognised; the protocol is taken from the port name %q", *p.AppProtocol, p.Name)
}

// protocolFromName applies Istio's port naming convention: "<protocol>[-<suffix>]", so
// "http-web" is HTTP and "grpc" is GRPC. Unlike Istio, which sniffs the protocol of an
// unnamed or unconventionally named port, weir treats such ports as HTTP: most are, and
// HTTP routing is what VirtualServices need.
func protocolFromName(name string) model.Protocol {
	prefix, _, _ := strings.Cut(name, "-")
	if proto, ok := parseProtocol(prefix); ok {
		return proto
	}
	return model.ProtocolHTTP
}

// parseProtocol reads a protocol name as Istio spells it (case-insensitive), plus the
// Kubernetes-standard appProtocol values.
func parseProtocol(s string) (model.Protocol, bool) {
	switch strings.ToLower(s) {
	case "http", "kubernetes.io/ws":
		return model.ProtocolHTTP, true
	case "http2", "kubernetes.io/h2c":
		return model.ProtocolHTTP2, true
	case "grpc", "grpc-web":
		return model.ProtocolGRPC, true
	case "https", "kubernetes.io/wss":
		return model.ProtocolHTTPS, true
	case "tcp", "mongo", "mysql", "redis":
		// Istio's protocol-specific filters for these are not in weir: plain TCP proxying.
		return model.ProtocolTCP, true
	case "tls":
		return model.ProtocolTLS, true
	}
	return "", false
}

// entryServices turns a ServiceEntry into one service per host.
func entryServices(o *object) ([]*service, []model.Diagnostic) {
	se := o.entry
	resolution, diags := entryResolution(o)
	var ports []model.ServicePort
	for i, p := range se.Ports {
		protocol, d := entryProtocol(o.ref, fmt.Sprintf("spec.ports[%d].protocol", i), p)
		diags = append(diags, d...)
		if protocol == "" {
			continue
		}
		target := p.TargetPort
		if target == 0 {
			target = p.Number
		}
		ports = append(ports, model.ServicePort{Name: p.Name, Number: p.Number, TargetPort: target, Protocol: protocol})
	}
	var out []*service
	for _, host := range se.Hosts {
		out = append(out, &service{src: o, targets: make([]string, len(ports)), model: &model.Service{
			Source:       o.ref,
			Hostname:     host,
			Name:         o.ref.Name,
			Namespace:    o.ref.Namespace,
			Ports:        append([]model.ServicePort(nil), ports...),
			Selector:     maps.Clone(se.GetWorkloadSelector().GetLabels()),
			Resolution:   resolution,
			MeshExternal: se.Location == networking.ServiceEntry_MESH_EXTERNAL,
			ExportTo:     slices.Clone(se.ExportTo),
		}})
	}
	return out, diags
}

func entryResolution(o *object) (model.Resolution, []model.Diagnostic) {
	switch r := o.entry.Resolution; r {
	case networking.ServiceEntry_STATIC:
		return model.ResolutionStatic, nil
	case networking.ServiceEntry_DNS:
		return model.ResolutionDNS, nil
	case networking.ServiceEntry_NONE:
		return model.ResolutionStatic, []model.Diagnostic{model.Warnf(o.ref, "spec.resolution",
			"resolution NONE (the default) is not supported; treated as STATIC: traffic goes only to the listed endpoints")}
	default:
		return model.ResolutionDNS, []model.Diagnostic{model.Warnf(o.ref, "spec.resolution",
			"resolution %s is not supported yet; treated as DNS", r)}
	}
}

// entryProtocol reads a ServiceEntry port's protocol; "" means the port is skipped. A
// protocol weir does not know is proxied as TCP, which carries any protocol.
func entryProtocol(ref model.Ref, field string, p *networking.ServicePort) (model.Protocol, []model.Diagnostic) {
	switch {
	case p.Protocol == "":
		return protocolFromName(p.Name), nil
	case strings.EqualFold(p.Protocol, "UDP"):
		return "", []model.Diagnostic{model.Warnf(ref, field, "protocol UDP is not supported; port %d ignored", p.Number)}
	}
	if proto, ok := parseProtocol(p.Protocol); ok {
		return proto, nil
	}
	return model.ProtocolTCP, []model.Diagnostic{model.Warnf(ref, field, "protocol %q is not known to weir; proxied as TCP", p.Protocol)}
}
