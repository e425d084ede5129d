package translator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/weir-mesh/weir/model"
)

// serialize renders an Output and its diagnostics as bytes, for byte-level comparison.
func serialize(t *testing.T, out *Output, diags []model.Diagnostic) []byte {
	t.Helper()
	var b bytes.Buffer
	var msgs []proto.Message
	for _, m := range out.Clusters {
		msgs = append(msgs, m)
	}
	for _, m := range out.Endpoints {
		msgs = append(msgs, m)
	}
	for _, m := range out.Listeners {
		msgs = append(msgs, m)
	}
	for _, m := range out.Routes {
		msgs = append(msgs, m)
	}
	for _, m := range out.Scopes {
		msgs = append(msgs, m)
	}
	for _, m := range out.Secrets {
		msgs = append(msgs, m)
	}
	for _, m := range msgs {
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(raw)
	}
	js, err := json.Marshal(struct {
		Origins map[string][]model.Ref
		Diags   []model.Diagnostic
	}{out.Origins, diags})
	if err != nil {
		t.Fatal(err)
	}
	b.Write(js)
	return b.Bytes()
}

// TestDeterministic guards the translator's purity: the same world, whatever the order
// of the snapshot's slices, gives the same bytes.
func TestDeterministic(t *testing.T) {
	for _, dir := range goldenCases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			snap := loadSnapshot(t, filepath.Join(dir, "input.yaml"))
			class := loadClass(t, filepath.Join(dir, "class.yaml"))
			want := translateBytes(t, snap, class)
			if again := translateBytes(t, snap, class); !bytes.Equal(want, again) {
				t.Fatal("two translations of the same snapshot differ")
			}
			for seed := range uint64(5) {
				r := rand.New(rand.NewPCG(seed, 42))
				shuffled := &model.Snapshot{
					Services:         shuffle(r, snap.Services),
					Endpoints:        shuffle(r, snap.Endpoints),
					VirtualServices:  shuffle(r, snap.VirtualServices),
					DestinationRules: shuffle(r, snap.DestinationRules),
					Gateways:         shuffle(r, snap.Gateways),
					Sidecars:         shuffle(r, snap.Sidecars),
					Secrets:          shuffle(r, snap.Secrets),
				}
				if got := translateBytes(t, shuffled, class); !bytes.Equal(want, got) {
					t.Fatalf("shuffled input (seed %d) translates differently", seed)
				}
			}
		})
	}
}

func translateBytes(t *testing.T, snap *model.Snapshot, class model.ProxyClass) []byte {
	t.Helper()
	out, diags := Translate(snap, class)
	return serialize(t, out, diags)
}

func shuffle[T any](r *rand.Rand, in []T) []T {
	out := slices.Clone(in)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestTranslateDoesNotMutateInput guards the sharing of snapshots between proxy classes.
func TestTranslateDoesNotMutateInput(t *testing.T) {
	for _, dir := range goldenCases(t) {
		snap := loadSnapshot(t, filepath.Join(dir, "input.yaml"))
		before := loadSnapshot(t, filepath.Join(dir, "input.yaml"))
		Translate(snap, loadClass(t, filepath.Join(dir, "class.yaml")))
		if !reflect.DeepEqual(before.Services, snap.Services) || !reflect.DeepEqual(before.Endpoints, snap.Endpoints) {
			t.Errorf("%s: services or endpoints changed", dir)
		}
		for i := range snap.VirtualServices {
			if !proto.Equal(before.VirtualServices[i].Spec, snap.VirtualServices[i].Spec) {
				t.Errorf("%s: VirtualService %d changed", dir, i)
			}
		}
		for i := range snap.DestinationRules {
			if !proto.Equal(before.DestinationRules[i].Spec, snap.DestinationRules[i].Spec) {
				t.Errorf("%s: DestinationRule %d changed", dir, i)
			}
		}
	}
}

// TestOutlierDetectionDoesNotEnableLocalityFailover guards against Istio's trap: turning on
// outlier detection must not change which localities get traffic.
func TestOutlierDetectionDoesNotEnableLocalityFailover(t *testing.T) {
	svc := kubeService("reviews", "default", 80)
	snap := &model.Snapshot{
		Services: []*model.Service{svc},
		Endpoints: []*model.Endpoint{
			endpoint(svc, 80, "10.0.0.1", "zone-a", nil),
			endpoint(svc, 80, "10.0.0.2", "zone-b", nil),
			endpoint(svc, 80, "10.0.0.3", "zone-c", nil),
		},
		DestinationRules: []*model.DestinationRule{newDestinationRule(t, "default", "reviews", `
host: reviews
trafficPolicy:
  outlierDetection: {consecutive5xxErrors: 3, interval: 10s}`)},
	}
	class := sidecar("default")
	class.Locality = model.Locality{Region: "r1", Zone: "zone-a"}
	out, _ := Translate(snap, class)
	c := out.Clusters[0]
	if c.OutlierDetection == nil {
		t.Fatal("outlier detection missing")
	}
	if c.GetCommonLbConfig().GetLocalityConfigSpecifier() != nil || c.GetLbConfig() != nil || c.GetLoadBalancingPolicy() != nil {
		t.Errorf("locality-aware load balancing switched on: %v", c)
	}
	if len(out.Endpoints[0].Endpoints) != 3 {
		t.Fatalf("want 3 localities, got %d", len(out.Endpoints[0].Endpoints))
	}
	for _, l := range out.Endpoints[0].Endpoints {
		if l.Priority != 0 || l.LoadBalancingWeight != nil {
			t.Errorf("locality %v has priority %d / weight %v; want 0 / unset", l.Locality, l.Priority, l.LoadBalancingWeight)
		}
	}
	if out.Endpoints[0].Policy != nil {
		t.Errorf("unexpected CLA policy %v", out.Endpoints[0].Policy)
	}
}

// TestDomainsAreUnique guards against Envoy's NACK of a route configuration that lists a
// domain twice: same-named services in two namespaces, a ServiceEntry named like a short
// form, and a multi-port service.
func TestDomainsAreUnique(t *testing.T) {
	alias := &model.Service{Source: model.Ref{Kind: "ServiceEntry", Namespace: "default", Name: "alias"},
		Hostname: "reviews.default", Name: "reviews.default", Namespace: "default",
		Ports: []model.ServicePort{{Number: 80, Protocol: model.ProtocolHTTP}}}
	snap := &model.Snapshot{Services: []*model.Service{
		kubeService("reviews", "default", 9080, 80),
		kubeService("reviews", "shop", 80),
		kubeService("api", "default", 8080, 9090),
		alias,
	}}
	out, diags := Translate(snap, sidecar("default"))
	assertUniqueDomains(t, out)
	assertScopesReachDomains(t, out)
	owner := map[string]string{}
	for _, rc := range out.Routes {
		for _, vh := range rc.VirtualHosts {
			for _, d := range vh.Domains {
				if prev, dup := owner[d]; dup {
					t.Errorf("domain %q is in virtual hosts %s and %s", d, prev, vh.Name)
				}
				owner[d] = vh.Name
			}
		}
	}
	for domain, want := range map[string]string{
		"reviews":         "reviews.default.svc.cluster.local:80", // port 80 takes the port-less names
		"reviews:9080":    "reviews.default.svc.cluster.local:9080",
		"reviews.default": "reviews.default:80", // a service's own hostname beats an alias
		"reviews.shop":    "reviews.shop.svc.cluster.local:80",
		"api":             "api.default.svc.cluster.local:8080", // no port 80: the lowest port
	} {
		if owner[domain] != want {
			t.Errorf("domain %q served by %q, want %q", domain, owner[domain], want)
		}
	}
	if !slices.ContainsFunc(diags, func(d model.Diagnostic) bool { return strings.Contains(d.Message, `"reviews.default"`) }) {
		t.Errorf("no warning about the stolen domain: %v", diags)
	}
}

// TestZeroWeightNeverInheritsTraffic guards the relative-weight rule: when the weighted
// destination is dropped, a weight-0 one must not receive everything.
func TestZeroWeightNeverInheritsTraffic(t *testing.T) {
	svc := kubeService("reviews", "default", 80)
	snap := &model.Snapshot{
		Services: []*model.Service{svc},
		DestinationRules: []*model.DestinationRule{newDestinationRule(t, "default", "reviews", `
host: reviews
subsets: [{name: v1, labels: {version: v1}}]`)},
		VirtualServices: []*model.VirtualService{newVirtualService(t, "default", "reviews", `
hosts: [reviews]
http:
- route:
  - {destination: {host: reviews, subset: typo}, weight: 100}
  - {destination: {host: reviews, subset: v1}, weight: 0}`)},
	}
	out, diags := Translate(snap, sidecar("default"))
	if routes := out.Routes[0].VirtualHosts[0].Routes; len(routes) != 0 {
		t.Errorf("want the route dropped, got %v", routes)
	}
	if !model.HasErrors(diags) {
		t.Errorf("want an error diagnostic, got %v", diags)
	}
}

func TestInvalidVirtualServiceIsLeftOut(t *testing.T) {
	svc := kubeService("reviews", "default", 80)
	snap := &model.Snapshot{
		Services: []*model.Service{svc},
		VirtualServices: []*model.VirtualService{newVirtualService(t, "default", "bad", `
hosts: [reviews]
http:
- route: [{destination: {host: reviews}, weight: -1}]`)},
	}
	out, diags := Translate(snap, sidecar("default"))
	want := []model.Diagnostic{model.Errorf(snap.VirtualServices[0].Source, "spec.http[0].route[0].weight",
		"weight must not be negative (got -1)")}
	if diff := cmp.Diff(want, diags); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	routes := out.Routes[0].VirtualHosts[0].Routes
	if len(routes) != 1 || routes[0].GetRoute().GetCluster() != "outbound|80||reviews.default.svc.cluster.local" {
		t.Errorf("want the default route, got %v", routes)
	}
}

func TestGatewayGetsClustersOnly(t *testing.T) {
	svc := kubeService("reviews", "default", 80)
	out, _ := Translate(&model.Snapshot{Services: []*model.Service{svc}}, model.ProxyClass{Role: model.RoleGateway})
	if len(out.Listeners) != 0 || len(out.Routes) != 0 {
		t.Errorf("gateway got listeners %v / routes %v", out.Listeners, out.Routes)
	}
	if len(out.Clusters) != 1 || len(out.Endpoints) != 1 {
		t.Errorf("want one cluster and one load assignment, got %d and %d", len(out.Clusters), len(out.Endpoints))
	}
}

func TestEmptySnapshot(t *testing.T) {
	for _, snap := range []*model.Snapshot{nil, {}} {
		out, diags := Translate(snap, sidecar("default"))
		if len(diags) != 0 || len(out.Clusters) != 0 || len(out.Listeners) != 1 || len(out.Routes) != 0 || len(out.Scopes) != 0 {
			t.Errorf("empty snapshot: %v, %v", out, diags)
		}
		assertValid(t, out)
	}
}

func TestResolveHost(t *testing.T) {
	known := func(h string) bool { return h == "api.example.com" || h == "legacy" }
	for _, tc := range []struct{ host, want string }{
		{"reviews", "reviews.ns1.svc.cluster.local"},
		{"reviews.ns2", "reviews.ns2.svc.cluster.local"},
		{"reviews.ns2.svc", "reviews.ns2.svc.cluster.local"},
		{"reviews.ns2.svc.cluster.local", "reviews.ns2.svc.cluster.local"},
		{"api.example.com", "api.example.com"},
		{"legacy", "legacy"}, // a ServiceEntry host matches as written
		{"*.example.com", "*.example.com"},
	} {
		if got := resolveHost(tc.host, "ns1", known); got != tc.want {
			t.Errorf("resolveHost(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestParseRetryOn(t *testing.T) {
	for _, tc := range []struct {
		in    string
		on    string
		codes []uint32
	}{
		{"", defaultRetryOn, nil},
		{" , ", defaultRetryOn, nil},
		{"gateway-error,connect-failure", "gateway-error,connect-failure", nil},
		{"5xx, 503,429 ,5xx", "5xx,retriable-status-codes", []uint32{503, 429}},
		{"retriable-status-codes,503", "retriable-status-codes", []uint32{503}},
	} {
		on, codes := parseRetryOn(tc.in)
		if on != tc.on || !slices.Equal(codes, tc.codes) {
			t.Errorf("parseRetryOn(%q) = %q, %v; want %q, %v", tc.in, on, codes, tc.on, tc.codes)
		}
	}
}

func ExampleTranslate() {
	svc := kubeService("reviews", "default", 80)
	out, _ := Translate(&model.Snapshot{Services: []*model.Service{svc}}, sidecar("default"))
	fmt.Println(out.Clusters[0].Name, out.Routes[0].VirtualHosts[0].Domains[0])
	// Output: outbound|80||reviews.default.svc.cluster.local reviews
}
