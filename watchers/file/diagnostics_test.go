package file

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-mesh/weir/model"
)

// Every problem names the file (relative to the directory), the object (or the document,
// when the object cannot be named) and the field, with a message that says what to fix.
// The bad object is dropped alone: a good Service after it in the same file still loads.
func TestDiagnosticsNameFileObjectField(t *testing.T) {
	istio := func(kind, spec string) string {
		return "apiVersion: networking.istio.io/v1\nkind: " + kind + "\nmetadata: {name: bad, namespace: shop}\n" + spec
	}
	tests := []struct {
		name    string
		doc     string
		want    where
		message string
	}{
		{
			name: "misspelled field deep in a VirtualService",
			doc: istio("VirtualService", `spec:
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
  - route:
    - destination: {host: a}
      wieght: 10
`),
			want:    where{model.SeverityError, "VirtualService shop/bad (team/objects.yaml)", "spec.http[1].route[0].wieght"},
			message: `unknown field "wieght" (did you mean "weight"?)`,
		},
		{
			name:    "weight of the wrong type",
			doc:     istio("VirtualService", "spec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a}\n      weight: \"x\"\n"),
			want:    where{model.SeverityError, "VirtualService shop/bad (team/objects.yaml)", "spec.http[0].route[0].weight"},
			message: `must be an integer, not "x"`,
		},
		{
			name:    "duration without a unit",
			doc:     istio("DestinationRule", "spec:\n  host: a\n  trafficPolicy: {outlierDetection: {interval: 30}}\n"),
			want:    where{model.SeverityError, "DestinationRule shop/bad (team/objects.yaml)", "spec.trafficPolicy.outlierDetection.interval"},
			message: `must be a duration such as "5s", "250ms" or "1m", not 30`,
		},
		{
			name:    "unknown enum value",
			doc:     istio("DestinationRule", "spec:\n  host: a\n  trafficPolicy: {loadBalancer: {simple: LEAST}}\n"),
			want:    where{model.SeverityError, "DestinationRule shop/bad (team/objects.yaml)", "spec.trafficPolicy.loadBalancer.simple"},
			message: `must be one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST, not "LEAST"`,
		},
		{
			name:    "subset label that is not a string",
			doc:     istio("DestinationRule", "spec:\n  host: a\n  subsets: [{name: v1, labels: {version: 1}}]\n"),
			want:    where{model.SeverityError, "DestinationRule shop/bad (team/objects.yaml)", "spec.subsets[0].labels[version]"},
			message: "must be a string, not 1",
		},
		{
			name:    "misspelled spec",
			doc:     istio("DestinationRule", "spce:\n  host: a\n"),
			want:    where{model.SeverityError, "DestinationRule shop/bad (team/objects.yaml)", "spce"},
			message: `unknown field "spce" (did you mean "spec"?)`,
		},
		{
			name:    "spec that is not a mapping",
			doc:     istio("VirtualService", "spec: [a]\n"),
			want:    where{model.SeverityError, "VirtualService shop/bad (team/objects.yaml)", "spec"},
			message: "must be a mapping",
		},
		{
			name:    "misspelled Service field",
			doc:     "apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: shop}\nspec:\n  selctor: {app: a}\n  ports: [{port: 80}]\n",
			want:    where{model.SeverityError, "Service shop/bad (team/objects.yaml)", "spec.selctor"},
			message: `unknown field "selctor" (did you mean "selector"?)`,
		},
		{
			name:    "Service port of the wrong type",
			doc:     "apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: shop}\nspec:\n  ports: [{port: 80, name: a}, {port: eighty, name: b}]\n",
			want:    where{model.SeverityError, "Service shop/bad (team/objects.yaml)", "spec.ports[1].port"},
			message: "must be an integer, not string",
		},
		{
			name:    "Service port out of range",
			doc:     "apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: shop}\nspec:\n  ports: [{port: 80, targetPort: 70000}]\n",
			want:    where{model.SeverityError, "Service shop/bad (team/objects.yaml)", "spec.ports[0].targetPort"},
			message: "must be between 1 and 65535, not 70000",
		},
		{
			name:    "ServiceEntry without ports",
			doc:     istio("ServiceEntry", "spec:\n  hosts: [a.example.com]\n  resolution: DNS\n"),
			want:    where{model.SeverityError, "ServiceEntry shop/bad (team/objects.yaml)", "spec.ports"},
			message: "at least one port is required",
		},
		{
			name:    "WorkloadEntry without address",
			doc:     istio("WorkloadEntry", "spec:\n  labels: {app: a}\n"),
			want:    where{model.SeverityError, "WorkloadEntry shop/bad (team/objects.yaml)", "spec.address"},
			message: "address is required",
		},
		{
			name:    "object without a name",
			doc:     "apiVersion: v1\nkind: Service\nmetadata: {namespace: shop}\n",
			want:    where{model.SeverityError, "Service #1 (team/objects.yaml)", "metadata.name"},
			message: "metadata.name is missing",
		},
		{
			name:    "document without a kind",
			doc:     "apiVersion: v1\nmetadata: {name: x}\n",
			want:    where{model.SeverityError, "Document #1 (team/objects.yaml)", "kind"},
			message: "kind is missing",
		},
		{
			name:    "YAML that does not parse",
			doc:     "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n   namespace: b\n",
			want:    where{model.SeverityError, "Document #1 (team/objects.yaml)", ""},
			message: "does not parse as YAML: line 5: mapping values are not allowed in this context; the document is ignored",
		},
		{
			name:    "Gateway without servers",
			doc:     istio("Gateway", "spec:\n  selector: {istio: ingressgateway}\n"),
			want:    where{model.SeverityError, "Gateway shop/bad (team/objects.yaml)", "spec.servers"},
			message: "at least one server is required",
		},
		{
			name:    "HTTPS server without a certificate",
			doc:     istio("Gateway", "spec:\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]\n"),
			want:    where{model.SeverityError, "Gateway shop/bad (team/objects.yaml)", "spec.servers[0].tls"},
			message: "an HTTPS server needs tls",
		},
		{
			name:    "HTTPS server whose certificate file Envoy could not read",
			doc:     istio("Gateway", "spec:\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]\n    tls: {mode: SIMPLE, serverCertificate: /nonexistent/a.pem, privateKey: /nonexistent/a-key.pem}\n"),
			want:    where{model.SeverityError, "Gateway shop/bad (team/objects.yaml)", "spec.servers[0].tls.serverCertificate"},
			message: "cannot read the file Envoy would read",
		},
		{
			name:    "Sidecar egress host without a namespace",
			doc:     istio("Sidecar", "spec:\n  egress:\n  - hosts: [reviews]\n"),
			want:    where{model.SeverityError, "Sidecar shop/bad (team/objects.yaml)", "spec.egress[0].hosts[0]"},
			message: `host "reviews" must be namespace/host`,
		},
		{
			name:    "TLS Secret whose certificate does not load",
			doc:     "apiVersion: v1\nkind: Secret\nmetadata: {name: bad, namespace: shop}\ntype: kubernetes.io/tls\nstringData: {tls.crt: not a certificate, tls.key: not a key}\n",
			want:    where{model.SeverityError, "Secret shop/bad (team/objects.yaml)", "stringData.tls.crt"},
			message: "certificate and key do not load",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := loadTree(t, map[string]string{"team/objects.yaml": tt.doc + "---\n" + serviceYAML("kept", "shop")})
			if diff := cmp.Diff([]where{tt.want}, wheres(snap.Diagnostics)); diff != "" {
				t.Fatalf("diagnostics (-want +got):\n%s\n%v", diff, snap.Diagnostics)
			}
			if got := snap.Diagnostics[0].Message; !strings.Contains(got, tt.message) {
				t.Errorf("message %q does not contain %q", got, tt.message)
			}
			if diff := cmp.Diff([]string{"kept.shop.svc.cluster.local"}, hostnames(snap)); diff != "" {
				t.Errorf("the good object in the same file was affected (-want +got):\n%s", diff)
			}
			if len(snap.VirtualServices)+len(snap.DestinationRules)+len(snap.Gateways)+len(snap.Sidecars)+len(snap.Secrets) != 0 {
				t.Errorf("the bad object was used")
			}
		})
	}
}

// The YAML error's line is the file's line, not the document's.
func TestYAMLErrorLine(t *testing.T) {
	snap := loadTree(t, map[string]string{"x.yaml": serviceYAML("a", "default") + "---\n# comment\nkind: Pod\nmetadata: {name: [}\n"})
	want := []model.Diagnostic{{
		Severity: model.SeverityError,
		Source:   model.Ref{Kind: "Document", Name: "#2", File: "x.yaml"},
		Message:  "does not parse as YAML: line 15: did not find expected node content; the document is ignored",
	}}
	if diff := cmp.Diff(want, snap.Diagnostics); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}

// The same kind/namespace/name in two places: the lexically first file (then the first
// document) wins, the other copy is an error.
func TestDuplicates(t *testing.T) {
	snap := loadTree(t, map[string]string{
		"b.yaml":     vsYAML("reviews", "b-host", "100"),
		"a/vs.yaml":  vsYAML("reviews", "a-host", "100") + "---\n" + vsYAML("reviews", "a-again", "100"),
		"c.yaml":     vsYAML("other", "c-host", "100"),
		"svc-1.yaml": serviceYAML("s", "default"),
		"svc-2.yaml": serviceYAML("s", "default"),
	})
	want := []where{
		{model.SeverityError, "VirtualService default/reviews (a/vs.yaml)", "metadata.name"},
		{model.SeverityError, "VirtualService default/reviews (b.yaml)", "metadata.name"},
		{model.SeverityError, "Service default/s (svc-2.yaml)", "metadata.name"},
	}
	if diff := cmp.Diff(want, wheres(snap.Diagnostics)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	if got := findVS(t, snap, "default", "reviews").Spec.GetHosts(); !cmp.Equal(got, []string{"a-host"}) {
		t.Errorf("the serving copy has hosts %v, want the first document of a/vs.yaml", got)
	}
	if !strings.Contains(snap.Diagnostics[1].Message, "also defined in a/vs.yaml") {
		t.Errorf("message %q does not name the file that wins", snap.Diagnostics[1].Message)
	}
	if diff := cmp.Diff([]string{"s.default.svc.cluster.local"}, hostnames(snap)); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
}

// A ServiceEntry host already taken by a Service (or an earlier ServiceEntry) is refused.
func TestHostDefinedTwice(t *testing.T) {
	snap := loadTree(t, map[string]string{
		"x.yaml": serviceYAML("reviews", "default") + `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shadow}
spec:
  hosts: [reviews.default.svc.cluster.local, other.example.com]
  resolution: DNS
  ports: [{number: 80, name: http}]
`,
	})
	if diff := cmp.Diff([]string{"other.example.com", "reviews.default.svc.cluster.local"}, hostnames(snap)); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	if got := snap.Services[1].Source.Kind; got != "Service" {
		t.Errorf("reviews is served by a %s, want the Service", got)
	}
	want := []where{{model.SeverityError, "ServiceEntry default/shadow (x.yaml)", ""}}
	if diff := cmp.Diff(want, wheres(snap.Diagnostics)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}

// Warnings about what weir does not carry: the object still serves.
func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []where
	}{
		{
			name: "service entry resolution NONE and unsupported fields",
			doc: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [a.example.com]
  addresses: [10.0.0.1]
  exportTo: ["."]
  ports: [{number: 80, name: http}, {number: 53, name: dns, protocol: UDP}, {number: 9000, name: x, protocol: THRIFT}]
  endpoints: [{address: 1.2.3.4, network: n1}]
`,
			want: []where{
				{model.SeverityWarning, "ServiceEntry default/se (x.yaml)", "spec.addresses"},
				{model.SeverityWarning, "ServiceEntry default/se (x.yaml)", "spec.endpoints[0].network"},
				{model.SeverityWarning, "ServiceEntry default/se (x.yaml)", "spec.ports[1].protocol"},
				{model.SeverityWarning, "ServiceEntry default/se (x.yaml)", "spec.ports[2].protocol"},
				{model.SeverityWarning, "ServiceEntry default/se (x.yaml)", "spec.resolution"},
			},
		},
		{
			name: "UDP service port and unknown appProtocol",
			doc: `apiVersion: v1
kind: Service
metadata: {name: dns}
spec:
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: tcp-dns, port: 5353, appProtocol: dnsish}
`,
			want: []where{
				{model.SeverityWarning, "Service default/dns (x.yaml)", "spec.ports[0].protocol"},
				{model.SeverityWarning, "Service default/dns (x.yaml)", "spec.ports[1].appProtocol"},
			},
		},
		{
			name: "ExternalName service",
			doc:  "apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {type: ExternalName, externalName: a.example.com}\n",
			want: []where{{model.SeverityWarning, "Service default/ext (x.yaml)", "spec.type"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := loadTree(t, map[string]string{"x.yaml": tt.doc})
			if diff := cmp.Diff(tt.want, wheres(snap.Diagnostics)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\n%v", diff, snap.Diagnostics)
			}
		})
	}
}
