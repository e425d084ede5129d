package model

import (
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

// DefaultDomainSuffix is the cluster domain used to expand short service names.
const DefaultDomainSuffix = "svc.cluster.local"

// Snapshot is one consistent view of every input. Watchers build a new Snapshot for each
// change; nothing mutates a Snapshot once it is published. Slices are sorted (services by
// hostname, endpoints by hostname/port/address, traffic objects by namespace/name) so that
// translation is deterministic.
type Snapshot struct {
	Services         []*Service
	Endpoints        []*Endpoint
	VirtualServices  []*VirtualService
	DestinationRules []*DestinationRule
	Gateways         []*Gateway
	Sidecars         []*Sidecar
	Secrets          []*Secret
	Rollouts         []*Rollout
	// Diagnostics found while reading the sources (parse errors, unknown kinds, invalid
	// objects that were dropped).
	Diagnostics []Diagnostic
}

// Protocol of a service port, as Istio names them.
type Protocol string

const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTP2 Protocol = "HTTP2"
	ProtocolGRPC  Protocol = "GRPC"
	ProtocolHTTPS Protocol = "HTTPS"
	ProtocolTCP   Protocol = "TCP"
	ProtocolTLS   Protocol = "TLS"
)

// IsHTTP reports whether the port carries HTTP (served by the HTTP listener).
func (p Protocol) IsHTTP() bool {
	return p == ProtocolHTTP || p == ProtocolHTTP2 || p == ProtocolGRPC || p == ""
}

// Resolution says how a service's endpoints are found.
type Resolution string

const (
	// ResolutionStatic: endpoints are listed (EndpointSlices, WorkloadEntries, ServiceEntry endpoints).
	ResolutionStatic Resolution = "STATIC"
	// ResolutionDNS: the hostname (or each endpoint address) is resolved by Envoy.
	ResolutionDNS Resolution = "DNS"
)

// Service is a named destination: a Kubernetes Service or a ServiceEntry host.
type Service struct {
	Source Ref
	// Hostname is the fully qualified name, e.g. "reviews.default.svc.cluster.local", or a
	// ServiceEntry host as written.
	Hostname  string
	Name      string
	Namespace string
	Ports     []ServicePort
	// Selector picks the workloads behind the service (Service.spec.selector or
	// ServiceEntry.workloadSelector).
	Selector     map[string]string
	Resolution   Resolution
	MeshExternal bool
	// ExportTo limits the namespaces whose proxies see the service (ServiceEntry
	// exportTo); empty means all.
	ExportTo []string
}

// ServicePort is one port a service listens on.
type ServicePort struct {
	Name       string
	Number     uint32
	TargetPort uint32
	Protocol   Protocol
}

// Locality is where an endpoint or a proxy runs.
type Locality struct {
	Region  string `json:"region,omitempty"`
	Zone    string `json:"zone,omitempty"`
	SubZone string `json:"sub_zone,omitempty"`
}

// Endpoint is one address serving one port of one service. An address serving several
// ports of a service appears once per port.
type Endpoint struct {
	Source Ref
	// Hostname and ServicePort name the service port this endpoint serves.
	Hostname    string
	ServicePort uint32
	Address     string
	Port        uint32
	Labels      map[string]string
	Locality    Locality
	// Weight is the load-balancing weight; 0 means unset (1).
	Weight uint32
	// Ready is false for endpoints Kubernetes reports as not ready; they are kept out of EDS.
	Ready bool
}

// VirtualService is an Istio VirtualService with its source.
type VirtualService struct {
	Source Ref
	Spec   *networking.VirtualService
}

// DestinationRule is an Istio DestinationRule with its source.
type DestinationRule struct {
	Source Ref
	Spec   *networking.DestinationRule
}

// Gateway is an Istio Gateway with its source: the listeners of the gateway proxies its
// selector matches.
type Gateway struct {
	Source Ref
	Spec   *networking.Gateway
}

// Sidecar is an Istio Sidecar with its source: what the proxies of its namespace (or of
// its workloadSelector) may reach.
type Sidecar struct {
	Source Ref
	Spec   *networking.Sidecar
}

// Secret is a TLS certificate and its private key (a kubernetes.io/tls Secret), and/or
// the CA that client certificates must chain to (ca.crt), PEM encoded, as a Gateway's
// credentialName names it. Sources check that what is there parses.
type Secret struct {
	Source Ref
	Cert   []byte
	Key    []byte
	CA     []byte
}

// Rollout is a weir Rollout with its source. Status, when the source has one (a
// Kubernetes object), is the state last written back.
type Rollout struct {
	Source     Ref
	Generation int64
	Spec       *v1alpha1.RolloutSpec
	Status     *v1alpha1.RolloutStatus
}
