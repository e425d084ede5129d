package file

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-mesh/weir/model"
)

const reviewsService = `apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: shop
spec:
  selector: {app: reviews}
  ports:
  - name: http
    port: 80
    targetPort: web
  - name: grpc-api
    port: 9090
    targetPort: 9091
  - name: metrics
    port: 9100
    appProtocol: tcp
`

const reviewsSlice = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: reviews-abc
  namespace: shop
  labels: {kubernetes.io/service-name: reviews}
addressType: IPv4
ports:
- name: http
  port: 8080
- name: grpc-api
  port: 9091
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: reviews-v1-a}
  zone: zone-a
- addresses: [10.0.0.2]
  conditions: {ready: false}
- addresses: [10.0.0.3]
  deprecatedTopology: {topology.kubernetes.io/region: us, topology.kubernetes.io/zone: us-b}
`

const reviewsPod = `apiVersion: v1
kind: Pod
metadata:
  name: reviews-v1-a
  namespace: shop
  labels: {app: reviews, version: v1, topology.kubernetes.io/region: eu}
spec:
  containers:
  - name: app
    image: reviews
    ports: [{name: web, containerPort: 8080}]
status: {podIP: 10.0.0.1}
`

// Every supported kind, in one directory: what each becomes in the snapshot.
func TestLoadKinds(t *testing.T) {
	snap := loadTree(t, map[string]string{
		"k8s/reviews.yaml": reviewsService + "---\n" + reviewsSlice + "---\n" + reviewsPod,
		"istio/traffic.yaml": vsYAML("reviews", "reviews.shop.svc.cluster.local", "100") + `---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
`,
		"istio/external.yaml": `apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: payments, namespace: shop}
spec:
  hosts: [payments.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: https, protocol: HTTPS, targetPort: 8443}]
  endpoints:
  - address: pay-1.example.com
    labels: {version: v1}
    locality: eu-west/eu-west-1a/rack-1
    weight: 2
  - address: pay-2.example.com
    ports: {https: 9443}
`,
	})
	wantServices := []*model.Service{
		{
			Source:   model.Ref{Kind: "ServiceEntry", Namespace: "shop", Name: "payments", File: "istio/external.yaml"},
			Hostname: "payments.example.com", Name: "payments", Namespace: "shop",
			Ports:      []model.ServicePort{{Name: "https", Number: 443, TargetPort: 8443, Protocol: model.ProtocolHTTPS}},
			Resolution: model.ResolutionDNS, MeshExternal: true,
		},
		{
			Source:   model.Ref{Kind: "Service", Namespace: "shop", Name: "reviews", File: "k8s/reviews.yaml"},
			Hostname: "reviews.shop.svc.cluster.local", Name: "reviews", Namespace: "shop",
			Ports: []model.ServicePort{
				{Name: "http", Number: 80, TargetPort: 0, Protocol: model.ProtocolHTTP}, // named targetPort: per endpoint
				{Name: "grpc-api", Number: 9090, TargetPort: 9091, Protocol: model.ProtocolGRPC},
				{Name: "metrics", Number: 9100, TargetPort: 9100, Protocol: model.ProtocolTCP},
			},
			Selector:   map[string]string{"app": "reviews"},
			Resolution: model.ResolutionStatic,
		},
	}
	if diff := cmp.Diff(wantServices, snap.Services); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	wantEndpoints := []string{
		"payments.example.com:443 -> pay-1.example.com:8443 weight=2 at=eu-west/eu-west-1a/rack-1 {version=v1} from ServiceEntry payments",
		"payments.example.com:443 -> pay-2.example.com:9443 from ServiceEntry payments",
		"reviews.shop.svc.cluster.local:80 -> 10.0.0.1:8080 at=eu/zone-a/ {app=reviews,topology.kubernetes.io/region=eu,version=v1} from EndpointSlice reviews-abc",
		"reviews.shop.svc.cluster.local:80 -> 10.0.0.2:8080 not-ready from EndpointSlice reviews-abc",
		"reviews.shop.svc.cluster.local:80 -> 10.0.0.3:8080 at=us/us-b/ from EndpointSlice reviews-abc",
		"reviews.shop.svc.cluster.local:9090 -> 10.0.0.1:9091 at=eu/zone-a/ {app=reviews,topology.kubernetes.io/region=eu,version=v1} from EndpointSlice reviews-abc",
		"reviews.shop.svc.cluster.local:9090 -> 10.0.0.2:9091 not-ready from EndpointSlice reviews-abc",
		"reviews.shop.svc.cluster.local:9090 -> 10.0.0.3:9091 at=us/us-b/ from EndpointSlice reviews-abc",
	}
	if diff := cmp.Diff(wantEndpoints, epLines(snap)); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"VirtualService default/reviews (istio/traffic.yaml)"}, vsRefs(snap)); diff != "" {
		t.Errorf("virtual services (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"DestinationRule shop/reviews (istio/traffic.yaml)"}, drRefs(snap)); diff != "" {
		t.Errorf("destination rules (-want +got):\n%s", diff)
	}
	if len(snap.Diagnostics) != 0 {
		t.Errorf("unexpected diagnostics: %v", snap.Diagnostics)
	}
}

// Endpoints come from EndpointSlices, else from Pods the Service selects, plus the
// WorkloadEntries a Service's selector or a ServiceEntry's workloadSelector picks.
func TestEndpoints(t *testing.T) {
	ratings := `apiVersion: v1
kind: Service
metadata: {name: ratings}
spec:
  selector: {app: ratings}
  ports:
  - {name: http, port: 80, targetPort: web}
  - {name: admin, port: 81, targetPort: 9000}
`
	pod := func(name, ip, labels, ports string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", labels: " + labels + "}\n" +
			"spec: {containers: [{name: app, image: x, ports: " + ports + "}]}\nstatus: {podIP: '" + ip + "'}\n"
	}
	workload := func(name, ns, addr, labels, ports string) string {
		return "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: " + name + ", namespace: " + ns + "}\n" +
			"spec: {address: " + addr + ", labels: " + labels + ", ports: " + ports + "}\n"
	}
	tests := []struct {
		name  string
		files map[string]string
		want  []string
		diags []where
	}{
		{
			name: "pods without slices, named targetPort from the container port",
			files: map[string]string{"ratings.yaml": ratings + "---\n" +
				pod("ratings-1", "127.0.0.2", "{app: ratings, version: v1}", "[{name: web, containerPort: 8080}]") + "---\n" +
				pod("ratings-2", "127.0.0.3", "{app: ratings, version: v2, topology.kubernetes.io/zone: z2}", "[{name: web, containerPort: 8081}]") + "---\n" +
				pod("no-ip", "", "{app: ratings}", "[]") + "---\n" +
				pod("other-app", "127.0.0.9", "{app: other}", "[{name: web, containerPort: 8080}]"),
				"other-ns.yaml": strings.Replace(pod("ratings-x", "127.0.0.8", "{app: ratings}", "[]"), "metadata: {", "metadata: {namespace: elsewhere, ", 1),
			},
			want: []string{
				"ratings.default.svc.cluster.local:80 -> 127.0.0.2:8080 {app=ratings,version=v1} from Pod ratings-1",
				"ratings.default.svc.cluster.local:80 -> 127.0.0.3:8081 at=/z2/ {app=ratings,topology.kubernetes.io/zone=z2,version=v2} from Pod ratings-2",
				"ratings.default.svc.cluster.local:81 -> 127.0.0.2:9000 {app=ratings,version=v1} from Pod ratings-1",
				"ratings.default.svc.cluster.local:81 -> 127.0.0.3:9000 at=/z2/ {app=ratings,topology.kubernetes.io/zone=z2,version=v2} from Pod ratings-2",
			},
		},
		{
			name: "pod without the named container port serves the other ports only",
			files: map[string]string{"ratings.yaml": ratings + "---\n" +
				pod("ratings-1", "127.0.0.2", "{app: ratings}", "[{name: metrics, containerPort: 9100}]")},
			want:  []string{"ratings.default.svc.cluster.local:81 -> 127.0.0.2:9000 {app=ratings} from Pod ratings-1"},
			diags: []where{{Severity: model.SeverityWarning, Ref: "Pod default/ratings-1 (ratings.yaml)", Field: "spec.containers"}},
		},
		{
			name: "not-ready pod",
			files: map[string]string{"ratings.yaml": ratings + "---\n" + strings.Replace(
				pod("ratings-1", "127.0.0.2", "{app: ratings}", "[{name: web, containerPort: 8080}]"),
				"status: {", "status: {conditions: [{type: Ready, status: 'False'}], ", 1)},
			want: []string{
				"ratings.default.svc.cluster.local:80 -> 127.0.0.2:8080 not-ready {app=ratings} from Pod ratings-1",
				"ratings.default.svc.cluster.local:81 -> 127.0.0.2:9000 not-ready {app=ratings} from Pod ratings-1",
			},
		},
		{
			name: "workload entries selected by a Kubernetes Service",
			files: map[string]string{"ratings.yaml": ratings + "---\n" +
				workload("vm-1", "default", "10.1.0.1", "{app: ratings, version: vm}", "{http: 7070, web: 7071}") + "---\n" +
				workload("vm-2", "default", "10.1.0.2", "{app: ratings}", "{web: 7072}") + "---\n" +
				workload("vm-3", "other", "10.1.0.3", "{app: ratings}", "{}")},
			want: []string{
				"ratings.default.svc.cluster.local:80 -> 10.1.0.1:7070 {app=ratings,version=vm} from WorkloadEntry vm-1",
				"ratings.default.svc.cluster.local:80 -> 10.1.0.2:7072 {app=ratings} from WorkloadEntry vm-2",
				"ratings.default.svc.cluster.local:81 -> 10.1.0.1:9000 {app=ratings,version=vm} from WorkloadEntry vm-1",
				"ratings.default.svc.cluster.local:81 -> 10.1.0.2:9000 {app=ratings} from WorkloadEntry vm-2",
			},
		},
		{
			name: "service entry with workload entries",
			files: map[string]string{"legacy.yaml": `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: shop}
spec:
  hosts: [legacy.shop.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 80, name: http, targetPort: 8080}
  - {number: 5432, name: tcp-db, protocol: TCP}
  workloadSelector: {labels: {app: legacy}}
---
` + workload("legacy-1", "shop", "127.0.0.10", "{app: legacy, version: v1}", "{http: 18080}") + "---\n" +
				workload("legacy-2", "shop", "127.0.0.11", "{app: legacy, version: v2}", "{}") + "---\n" +
				workload("unrelated", "shop", "127.0.0.12", "{app: other}", "{}")},
			want: []string{
				"legacy.shop.internal:80 -> 127.0.0.10:18080 {app=legacy,version=v1} from WorkloadEntry legacy-1",
				"legacy.shop.internal:80 -> 127.0.0.11:8080 {app=legacy,version=v2} from WorkloadEntry legacy-2",
				"legacy.shop.internal:5432 -> 127.0.0.10:5432 {app=legacy,version=v1} from WorkloadEntry legacy-1",
				"legacy.shop.internal:5432 -> 127.0.0.11:5432 {app=legacy,version=v2} from WorkloadEntry legacy-2",
			},
		},
		{
			name:  "slice naming a missing service",
			files: map[string]string{"slice.yaml": strings.ReplaceAll(reviewsSlice, "service-name: reviews", "service-name: reveiws")},
			want:  []string{},
			diags: []where{{Severity: model.SeverityWarning, Ref: "EndpointSlice shop/reviews-abc (slice.yaml)", Field: "metadata.labels"}},
		},
		{
			name: "slices win over pods",
			files: map[string]string{"reviews.yaml": reviewsService + "---\n" + reviewsPod + "---\n" +
				strings.Replace(reviewsSlice, "- addresses: [10.0.0.2]\n  conditions: {ready: false}\n- addresses: [10.0.0.3]\n  deprecatedTopology: {topology.kubernetes.io/region: us, topology.kubernetes.io/zone: us-b}\n", "", 1)},
			want: []string{
				"reviews.shop.svc.cluster.local:80 -> 10.0.0.1:8080 at=eu/zone-a/ {app=reviews,topology.kubernetes.io/region=eu,version=v1} from EndpointSlice reviews-abc",
				"reviews.shop.svc.cluster.local:9090 -> 10.0.0.1:9091 at=eu/zone-a/ {app=reviews,topology.kubernetes.io/region=eu,version=v1} from EndpointSlice reviews-abc",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := loadTree(t, tt.files)
			if diff := cmp.Diff(tt.want, epLines(snap)); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(orEmpty(tt.diags), wheres(snap.Diagnostics)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\n%v", diff, snap.Diagnostics)
			}
		})
	}
}

// A List, as `kubectl get -o yaml` prints it, contributes its items; so does a typed list.
func TestLoadList(t *testing.T) {
	snap := loadTree(t, map[string]string{
		"list.yaml": "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n" +
			indentItem(serviceYAML("a", "default")) + indentItem(serviceYAML("b", "prod")),
		"typed.json": `{"apiVersion": "v1", "kind": "ServiceList", "items": [
			{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"}, "spec": {"ports": [{"port": 80}]}}]}`,
	})
	want := []string{"a.default.svc.cluster.local", "b.prod.svc.cluster.local", "c.default.svc.cluster.local"}
	if diff := cmp.Diff(want, hostnames(snap)); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	if len(snap.Diagnostics) != 0 {
		t.Errorf("unexpected diagnostics: %v", snap.Diagnostics)
	}
}

// What `kubectl get svc,endpointslices,pods,vs -o yaml` prints, with every server-set
// field, loads without a diagnostic.
func TestLoadKubectlOutput(t *testing.T) {
	snap, err := Load("testdata/kubectl")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Diagnostics) != 0 {
		t.Errorf("unexpected diagnostics: %v", snap.Diagnostics)
	}
	want := []string{"reviews.default.svc.cluster.local:9080 -> 10.244.0.12:9080 at=/us-east-1a/ {app=reviews,pod-template-hash=5b9d7b6c8,version=v1} from EndpointSlice reviews-x7k2p"}
	if diff := cmp.Diff(want, epLines(snap)); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"VirtualService default/reviews (get-o-yaml.yaml)"}, vsRefs(snap)); diff != "" {
		t.Errorf("virtual services (-want +got):\n%s", diff)
	}
}

// indentItem turns a YAML object into an item of a YAML list.
func indentItem(obj string) string {
	lines := strings.Split(strings.TrimSuffix(obj, "\n"), "\n")
	for i, l := range lines {
		if i == 0 {
			lines[i] = "- " + l
		} else {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// Kinds weir does not read yet are named in a warning and ignored; they never stop the
// rest from loading.
func TestUnsupportedKinds(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"istio envoy filter", "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: ef, namespace: istio-system}\n", "EnvoyFilter istio-system/ef (x.yaml)"},
		{"istio workload group", "apiVersion: networking.istio.io/v1beta1\nkind: WorkloadGroup\nmetadata: {name: wg}\n", "WorkloadGroup default/wg (x.yaml)"},
		{"security", "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny}\n", "AuthorizationPolicy default/deny (x.yaml)"},
		{"flagger canary", "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: c}\n", "Canary default/c (x.yaml)"},
		{"deployment", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n", "Deployment default/d (x.yaml)"},
		{"old endpoint slice", "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: s}\n", "EndpointSlice default/s (x.yaml)"},
		{"kustomization, which has no name", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n", "Kustomization #1 (x.yaml)"},
		{"unknown istio version", "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: v}\n", "VirtualService default/v (x.yaml)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := loadTree(t, map[string]string{"x.yaml": tt.doc + "---\n" + serviceYAML("kept", "default")})
			if diff := cmp.Diff([]where{{Severity: model.SeverityWarning, Ref: tt.want}}, wheres(snap.Diagnostics)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if !strings.Contains(snap.Diagnostics[0].Message, "not supported yet; ignored") {
				t.Errorf("message %q does not say the kind is ignored", snap.Diagnostics[0].Message)
			}
			if diff := cmp.Diff([]string{"kept.default.svc.cluster.local"}, hostnames(snap)); diff != "" {
				t.Errorf("services (-want +got):\n%s", diff)
			}
		})
	}
}

// Only YAML and JSON files count; hidden files and directories and editors' temporary
// files are skipped.
func TestLoadSkipsNonConfigFiles(t *testing.T) {
	snap := loadTree(t, map[string]string{
		"a.yaml":         serviceYAML("a", "default"),
		"b.YML":          serviceYAML("b", "default"),
		"c.json":         `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"}, "spec": {"ports": [{"port": 80}]}}`,
		".hidden.yaml":   serviceYAML("hidden", "default"),
		".git/x.yaml":    serviceYAML("git", "default"),
		"a.yaml~":        serviceYAML("backup", "default"),
		".#a.yaml":       serviceYAML("lock", "default"),
		".a.yaml.swp":    serviceYAML("swap", "default"),
		"README.md":      "# notes\n",
		"sub/deep/d.yml": serviceYAML("d", "default"),
	})
	want := []string{"a.default.svc.cluster.local", "b.default.svc.cluster.local", "c.default.svc.cluster.local", "d.default.svc.cluster.local"}
	if diff := cmp.Diff(want, hostnames(snap)); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
}

// Load fails only when the directory itself cannot be read.
func TestLoadUnreadableDir(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"f.yaml": serviceYAML("a", "default")})
	for _, path := range []string{dir + "/missing", dir + "/f.yaml"} {
		if _, err := Load(path); err == nil {
			t.Errorf("Load(%s): no error", path)
		}
	}
}

func TestProtocols(t *testing.T) {
	tests := []struct {
		name string
		want model.Protocol
	}{
		{"", model.ProtocolHTTP}, // weir treats unnamed ports as HTTP
		{"web", model.ProtocolHTTP},
		{"http", model.ProtocolHTTP},
		{"http-foo", model.ProtocolHTTP},
		{"http2", model.ProtocolHTTP2},
		{"grpc", model.ProtocolGRPC},
		{"grpc-web", model.ProtocolGRPC},
		{"https-admin", model.ProtocolHTTPS},
		{"tcp-db", model.ProtocolTCP},
		{"TLS", model.ProtocolTLS},
		{"mongo", model.ProtocolTCP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := protocolFromName(tt.name); got != tt.want {
				t.Errorf("protocolFromName(%q) = %s, want %s", tt.name, got, tt.want)
			}
		})
	}
}
