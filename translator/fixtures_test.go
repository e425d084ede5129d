package translator

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/model"
)

// Fixture builders: each makes one input object in one readable line.

func kubeService(name, ns string, ports ...uint32) *model.Service {
	s := &model.Service{
		Source:   model.Ref{Kind: "Service", Namespace: ns, Name: name},
		Hostname: fmt.Sprintf("%s.%s.%s", name, ns, model.DefaultDomainSuffix),
		Name:     name, Namespace: ns, Resolution: model.ResolutionStatic,
	}
	for _, p := range ports {
		s.Ports = append(s.Ports, model.ServicePort{Name: fmt.Sprintf("http-%d", p), Number: p, TargetPort: p, Protocol: model.ProtocolHTTP})
	}
	return s
}

func endpoint(svc *model.Service, port uint32, addr, zone string, labels map[string]string) *model.Endpoint {
	return &model.Endpoint{Source: model.Ref{Kind: "EndpointSlice", Namespace: svc.Namespace, Name: svc.Name},
		Hostname: svc.Hostname, ServicePort: port, Address: addr, Port: port, Labels: labels,
		Locality: model.Locality{Region: "r1", Zone: zone}, Ready: true}
}

func newVirtualService(t *testing.T, ns, name, spec string) *model.VirtualService {
	t.Helper()
	s := &networking.VirtualService{}
	parseSpec(t, spec, s)
	return &model.VirtualService{Source: model.Ref{Kind: "VirtualService", Namespace: ns, Name: name}, Spec: s}
}

func newDestinationRule(t *testing.T, ns, name, spec string) *model.DestinationRule {
	t.Helper()
	s := &networking.DestinationRule{}
	parseSpec(t, spec, s)
	return &model.DestinationRule{Source: model.Ref{Kind: "DestinationRule", Namespace: ns, Name: name}, Spec: s}
}

func parseSpec(t *testing.T, spec string, m proto.Message) {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(js, m); err != nil {
		t.Fatalf("spec %q: %v", spec, err)
	}
}

func sidecar(ns string) model.ProxyClass {
	return model.ProxyClass{Role: model.RoleSidecar, Namespace: ns}
}
