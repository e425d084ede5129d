package crd

import "strings"

// IstioGroup is the API group of the Istio objects weir reads.
const IstioGroup = "networking.istio.io"

// IstioVersions are the versions weir reads, all with one schema; v1 is stored.
var IstioVersions = []string{"v1", "v1beta1", "v1alpha3"}

// istioKind is one Istio networking kind, named and printed as Istio's own CRD does.
type istioKind struct {
	kind, plural, doc string
	shortNames        []string
	columns           []PrinterColumn
}

var istioKinds = []istioKind{
	{kind: "VirtualService", plural: "virtualservices", shortNames: []string{"vs"},
		doc: "Routing rules: how requests for a host are matched, split, retried and rewritten.",
		columns: []PrinterColumn{
			{Name: "Gateways", Type: "string", JSONPath: ".spec.gateways"},
			{Name: "Hosts", Type: "string", JSONPath: ".spec.hosts"},
		}},
	{kind: "DestinationRule", plural: "destinationrules", shortNames: []string{"dr"},
		doc: "Subsets of a host and the traffic policy toward it: load balancing, connection pools, outlier detection, TLS.",
		columns: []PrinterColumn{
			{Name: "Host", Type: "string", JSONPath: ".spec.host"},
		}},
	{kind: "ServiceEntry", plural: "serviceentries", shortNames: []string{"se"},
		doc: "A service added to the registry by hand, with its hosts, ports and endpoints.",
		columns: []PrinterColumn{
			{Name: "Hosts", Type: "string", JSONPath: ".spec.hosts"},
			{Name: "Location", Type: "string", JSONPath: ".spec.location"},
			{Name: "Resolution", Type: "string", JSONPath: ".spec.resolution"},
		}},
	{kind: "WorkloadEntry", plural: "workloadentries", shortNames: []string{"we"},
		doc: "One endpoint with labels, selected by a ServiceEntry's workloadSelector.",
		columns: []PrinterColumn{
			{Name: "Address", Type: "string", JSONPath: ".spec.address"},
		}},
	{kind: "Gateway", plural: "gateways", shortNames: []string{"gw"},
		doc: "Listeners of the gateway proxies it selects: ports, protocols, hosts and TLS."},
	{kind: "Sidecar", plural: "sidecars",
		doc: "What the sidecars it selects may reach, and what happens to hosts not in the registry."},
}

// Istio is the CRDs of the networking.istio.io kinds weir reads, for a cluster without
// Istio. Like Istio's own minimal CRDs their spec is not described
// (x-kubernetes-preserve-unknown-fields): weir checks each object when it reads it, and
// reports a bad one without serving it.
func Istio() []*CRD {
	var out []*CRD
	for _, k := range istioKinds {
		c := &CRD{
			APIVersion: "apiextensions.k8s.io/v1",
			Kind:       "CustomResourceDefinition",
			Metadata:   Metadata{Name: k.plural + "." + IstioGroup, Labels: map[string]string{"app.kubernetes.io/part-of": "weir"}},
			Spec: Spec{
				Group: IstioGroup,
				Names: Names{
					Kind: k.kind, ListKind: k.kind + "List", Plural: k.plural, Singular: strings.ToLower(k.kind),
					ShortNames: k.shortNames, Categories: []string{"istio-io", "networking-istio-io"},
				},
				Scope: "Namespaced",
			},
		}
		for _, v := range IstioVersions {
			c.Spec.Versions = append(c.Spec.Versions, Version{
				Name: v, Served: true, Storage: v == "v1",
				Schema:                   VersionSchema{OpenAPIV3Schema: istioSchema(k.doc)},
				Subresources:             StatusSubresource(),
				AdditionalPrinterColumns: append(append([]PrinterColumn(nil), k.columns...), PrinterColumn{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"}),
			})
		}
		out = append(out, c)
	}
	return out
}

func istioSchema(doc string) *Schema {
	return &Schema{
		Type: "object",
		Properties: map[string]*Schema{
			"spec": {
				Description:           doc + " See Istio's reference for its fields.",
				Type:                  "object",
				PreserveUnknownFields: true,
			},
			"status": {Type: "object", PreserveUnknownFields: true},
		},
	}
}
