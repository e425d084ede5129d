package translator

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/model"
)

// This file is a minimal, test-only reader of the golden inputs: the real file source
// lives in watchers/file. It knows Service, EndpointSlice, Pod, ServiceEntry,
// VirtualService and DestinationRule, and little else.

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec json.RawMessage `json:"spec"`
}

type loader struct {
	file   string
	snap   *model.Snapshot
	pods   map[string]*corev1.Pod // by namespace/name
	slices []*discoveryv1.EndpointSlice
	kube   map[string]*model.Service // Kubernetes services by namespace/name
}

func loadSnapshot(t *testing.T, path string) *model.Snapshot {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l := &loader{file: "input.yaml", snap: &model.Snapshot{}, pods: map[string]*corev1.Pod{}, kube: map[string]*model.Service{}}
	for i, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		if err := l.add([]byte(doc)); err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
	}
	for _, s := range l.slices {
		if err := l.addSlice(s); err != nil {
			t.Fatalf("%s: EndpointSlice %s: %v", path, s.Name, err)
		}
	}
	return l.snap
}

func (l *loader) add(doc []byte) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	var o object
	if err := json.Unmarshal(js, &o); err != nil {
		return err
	}
	if o.Metadata.Namespace == "" {
		o.Metadata.Namespace = "default"
	}
	ref := model.Ref{Kind: o.Kind, Namespace: o.Metadata.Namespace, Name: o.Metadata.Name, File: l.file}
	switch o.Kind {
	case "Service":
		var s corev1.Service
		if err := json.Unmarshal(js, &s); err != nil {
			return err
		}
		l.addService(ref, &s)
	case "Pod":
		var p corev1.Pod
		if err := json.Unmarshal(js, &p); err != nil {
			return err
		}
		l.pods[ref.Namespace+"/"+ref.Name] = &p
	case "EndpointSlice":
		var s discoveryv1.EndpointSlice
		if err := json.Unmarshal(js, &s); err != nil {
			return err
		}
		s.Namespace = ref.Namespace
		l.slices = append(l.slices, &s)
	case "VirtualService":
		spec := &networking.VirtualService{}
		if err := unmarshalSpec(o.Spec, spec); err != nil {
			return err
		}
		l.snap.VirtualServices = append(l.snap.VirtualServices, &model.VirtualService{Source: ref, Spec: spec})
	case "DestinationRule":
		spec := &networking.DestinationRule{}
		if err := unmarshalSpec(o.Spec, spec); err != nil {
			return err
		}
		l.snap.DestinationRules = append(l.snap.DestinationRules, &model.DestinationRule{Source: ref, Spec: spec})
	case "ServiceEntry":
		spec := &networking.ServiceEntry{}
		if err := unmarshalSpec(o.Spec, spec); err != nil {
			return err
		}
		l.addServiceEntry(ref, spec)
	case "Gateway":
		spec := &networking.Gateway{}
		if err := unmarshalSpec(o.Spec, spec); err != nil {
			return err
		}
		l.snap.Gateways = append(l.snap.Gateways, &model.Gateway{Source: ref, Spec: spec})
	case "Sidecar":
		spec := &networking.Sidecar{}
		if err := unmarshalSpec(o.Spec, spec); err != nil {
			return err
		}
		l.snap.Sidecars = append(l.snap.Sidecars, &model.Sidecar{Source: ref, Spec: spec})
	case "Secret":
		var sec corev1.Secret
		if err := json.Unmarshal(js, &sec); err != nil {
			return err
		}
		l.snap.Secrets = append(l.snap.Secrets, &model.Secret{Source: ref,
			Cert: nonEmpty(sec.StringData["tls.crt"]), Key: nonEmpty(sec.StringData["tls.key"]), CA: nonEmpty(sec.StringData["ca.crt"])})
	default:
		return fmt.Errorf("unknown kind %q", o.Kind)
	}
	return nil
}

func unmarshalSpec(spec json.RawMessage, m proto.Message) error {
	if len(spec) == 0 {
		return nil
	}
	return protojson.Unmarshal(spec, m)
}

func (l *loader) addService(ref model.Ref, s *corev1.Service) {
	svc := &model.Service{
		Source:     ref,
		Hostname:   ref.Name + "." + ref.Namespace + "." + model.DefaultDomainSuffix,
		Name:       ref.Name,
		Namespace:  ref.Namespace,
		Selector:   s.Spec.Selector,
		Resolution: model.ResolutionStatic,
	}
	for _, p := range s.Spec.Ports {
		target := uint32(p.TargetPort.IntValue())
		if target == 0 {
			target = uint32(p.Port)
		}
		svc.Ports = append(svc.Ports, model.ServicePort{Name: p.Name, Number: uint32(p.Port), TargetPort: target,
			Protocol: protocol(p.Name, p.AppProtocol)})
	}
	l.kube[ref.Namespace+"/"+ref.Name] = svc
	l.snap.Services = append(l.snap.Services, svc)
}

// protocol follows Istio's rules: appProtocol first, else the port name's prefix.
func protocol(name string, appProtocol *string) model.Protocol {
	p := strings.SplitN(name, "-", 2)[0]
	if appProtocol != nil {
		p = *appProtocol
	}
	switch strings.ToLower(p) {
	case "http":
		return model.ProtocolHTTP
	case "http2", "kubernetes.io/h2c":
		return model.ProtocolHTTP2
	case "grpc":
		return model.ProtocolGRPC
	case "https":
		return model.ProtocolHTTPS
	case "tcp":
		return model.ProtocolTCP
	case "tls":
		return model.ProtocolTLS
	}
	return ""
}

func (l *loader) addSlice(s *discoveryv1.EndpointSlice) error {
	svc := l.kube[s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName]]
	if svc == nil {
		return fmt.Errorf("no service %q", s.Labels[discoveryv1.LabelServiceName])
	}
	ref := model.Ref{Kind: "EndpointSlice", Namespace: s.Namespace, Name: s.Name, File: l.file}
	for _, sp := range s.Ports {
		i := slices.IndexFunc(svc.Ports, func(p model.ServicePort) bool { return p.Name == deref(sp.Name) })
		if i < 0 {
			return fmt.Errorf("service has no port named %q", deref(sp.Name))
		}
		for _, ep := range s.Endpoints {
			for _, addr := range ep.Addresses {
				e := &model.Endpoint{Source: ref, Hostname: svc.Hostname, ServicePort: svc.Ports[i].Number,
					Address: addr, Port: uint32(*sp.Port), Ready: ep.Conditions.Ready == nil || *ep.Conditions.Ready}
				if ep.Zone != nil {
					e.Locality.Zone = *ep.Zone
				}
				if r := ep.TargetRef; r != nil && r.Kind == "Pod" {
					if pod := l.pods[s.Namespace+"/"+r.Name]; pod != nil {
						e.Labels = pod.Labels
						e.Locality.Region = pod.Labels["topology.kubernetes.io/region"]
					}
				}
				l.snap.Endpoints = append(l.snap.Endpoints, e)
			}
		}
	}
	return nil
}

func (l *loader) addServiceEntry(ref model.Ref, se *networking.ServiceEntry) {
	res := model.ResolutionStatic
	if se.Resolution == networking.ServiceEntry_DNS {
		res = model.ResolutionDNS
	}
	for _, host := range se.Hosts {
		svc := &model.Service{Source: ref, Hostname: host, Name: host, Namespace: ref.Namespace, Resolution: res,
			MeshExternal: se.Location == networking.ServiceEntry_MESH_EXTERNAL, ExportTo: se.ExportTo}
		for _, p := range se.Ports {
			target := p.TargetPort
			if target == 0 {
				target = p.Number
			}
			svc.Ports = append(svc.Ports, model.ServicePort{Name: p.Name, Number: p.Number, TargetPort: target,
				Protocol: protocol(p.Protocol, nil)})
			for _, we := range se.Endpoints {
				port := target
				if n, ok := we.Ports[p.Name]; ok {
					port = n
				}
				l.snap.Endpoints = append(l.snap.Endpoints, &model.Endpoint{Source: ref, Hostname: host,
					ServicePort: p.Number, Address: we.Address, Port: port, Labels: we.Labels,
					Locality: parseLocality(we.Locality), Weight: we.Weight, Ready: true})
			}
		}
		l.snap.Services = append(l.snap.Services, svc)
	}
}

func parseLocality(s string) model.Locality {
	parts := append(strings.SplitN(s, "/", 3), "", "")
	return model.Locality{Region: parts[0], Zone: parts[1], SubZone: parts[2]}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// testClass is the proxy class of a golden case, read from its optional class.yaml.
type testClass struct {
	Role            model.Role        `json:"role"`
	Namespace       string            `json:"namespace"`
	Labels          map[string]string `json:"labels"`
	Locality        model.Locality    `json:"locality"`
	OutboundAddress string            `json:"outboundAddress"`
	OutboundPort    uint32            `json:"outboundPort"`
	ListenerAddress string            `json:"listenerAddress"`
	ListenerPorts   map[uint32]uint32 `json:"listenerPorts"`
}

func loadClass(t *testing.T, path string) model.ProxyClass {
	t.Helper()
	c := testClass{Role: model.RoleSidecar, Namespace: "default"}
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return model.ProxyClass{Role: c.Role, Namespace: c.Namespace, Labels: c.Labels, Locality: c.Locality,
		OutboundAddress: c.OutboundAddress, OutboundPort: c.OutboundPort,
		ListenerAddress: c.ListenerAddress, ListenerPorts: c.ListenerPorts}
}

func nonEmpty(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}
