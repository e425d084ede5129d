package file

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/model"
)

// The YAML of the seed documents, copied byte for byte into testdata/seeds, must load
// unchanged: no errors, every supported object used, every other kind named in a warning.
func TestLoadSeeds(t *testing.T) {
	unsupported := func(ref string) []where {
		return []where{{Severity: model.SeverityWarning, Ref: ref}}
	}
	tests := []struct {
		file     string
		vs, dr   []string
		sidecars []string
		services []string
		diags    []where
	}{
		{file: "000-01-destinationrule-reviews-destination.yaml", dr: []string{"DestinationRule default/reviews-destination (000-01-destinationrule-reviews-destination.yaml)"}},
		{file: "000-02-virtualservice-reviews-canary.yaml", vs: []string{"VirtualService default/reviews-canary (000-02-virtualservice-reviews-canary.yaml)"}},
		{file: "000-03-virtualservice-reviews-testing.yaml", vs: []string{"VirtualService default/reviews-testing (000-03-virtualservice-reviews-testing.yaml)"}},
		{file: "000-04-destinationrule-reviews-destination.yaml", dr: []string{"DestinationRule default/reviews-destination (000-04-destinationrule-reviews-destination.yaml)"}},
		{file: "000-05-virtualservice-reviews-with-failure.yaml", vs: []string{"VirtualService default/reviews-with-failure (000-05-virtualservice-reviews-with-failure.yaml)"}},
		{file: "000-06-destinationrule-reviews-performance.yaml", dr: []string{"DestinationRule default/reviews-performance (000-06-destinationrule-reviews-performance.yaml)"}},
		{file: "000-07-virtualservice-reviews-performance-routing.yaml", vs: []string{"VirtualService default/reviews-performance-routing (000-07-virtualservice-reviews-performance-routing.yaml)"}},
		{file: "000-08-virtualservice-product-ab-test.yaml", vs: []string{"VirtualService default/product-ab-test (000-08-virtualservice-product-ab-test.yaml)"}},
		{file: "000-09-virtualservice-geographic-routing.yaml", vs: []string{"VirtualService default/geographic-routing (000-09-virtualservice-geographic-routing.yaml)"}},
		{file: "000-10-virtualservice-coordinated-deployment.yaml", vs: []string{"VirtualService default/coordinated-deployment (000-10-virtualservice-coordinated-deployment.yaml)"}},
		{file: "000-11-virtualservice-automated-promotion.yaml", vs: []string{"VirtualService default/automated-promotion (000-11-virtualservice-automated-promotion.yaml)"}},
		{file: "002-01-virtualservice-product-service.yaml", vs: []string{"VirtualService production/product-service (002-01-virtualservice-product-service.yaml)"}},
		{file: "002-02-destinationrule-product-service.yaml", dr: []string{"DestinationRule production/product-service (002-02-destinationrule-product-service.yaml)"}},
		{file: "002-03-sidecar-default.yaml", sidecars: []string{"Sidecar production/default (002-03-sidecar-default.yaml)"}},
		{
			file:     "002-04-serviceentry-external-api.yaml",
			vs:       []string{"VirtualService production/external-api (002-04-serviceentry-external-api.yaml)"},
			services: []string{"api.external-service.com"},
		},
		{file: "002-05-canary-product-service.yaml", diags: unsupported("Canary production/product-service (002-05-canary-product-service.yaml)")},
		{file: "002-06-canary-product-service-bluegreen.yaml", diags: unsupported("Canary default/product-service-bluegreen (002-06-canary-product-service-bluegreen.yaml)")},
		{file: "002-07-canary-product-service-ab.yaml", diags: unsupported("Canary default/product-service-ab (002-07-canary-product-service-ab.yaml)")},
		{file: "002-10-virtualservice-product-service-chaos.yaml", vs: []string{"VirtualService default/product-service-chaos (002-10-virtualservice-product-service-chaos.yaml)"}},
		{file: "002-12-peerauthentication-default.yaml", diags: unsupported("PeerAuthentication production/default (002-12-peerauthentication-default.yaml)")},
		{file: "002-13-peerauthentication-default.yaml", diags: unsupported("PeerAuthentication migration/default (002-13-peerauthentication-default.yaml)")},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/seeds", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			snap := loadTree(t, map[string]string{tt.file: string(data)})
			if diff := cmp.Diff(orEmpty(tt.vs), vsRefs(snap)); diff != "" {
				t.Errorf("virtual services (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(orEmpty(tt.dr), drRefs(snap)); diff != "" {
				t.Errorf("destination rules (-want +got):\n%s", diff)
			}
			var sidecars []string
			for _, sc := range snap.Sidecars {
				sidecars = append(sidecars, sc.Source.String())
			}
			if diff := cmp.Diff(orEmpty(tt.sidecars), orEmpty(sidecars)); diff != "" {
				t.Errorf("sidecars (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(orEmpty(tt.services), hostnames(snap)); diff != "" {
				t.Errorf("services (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(orEmpty(tt.diags), wheres(snap.Diagnostics)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\n%v", diff, snap.Diagnostics)
			}
		})
	}
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Loading all seeds together: the two versions of reviews-destination (the seed applies
// one over the other) collide, and the lexically first file's copy wins.
func TestLoadSeedsDirectory(t *testing.T) {
	snap, err := Load("testdata/seeds")
	if err != nil {
		t.Fatal(err)
	}
	want := []where{{
		Severity: model.SeverityError,
		Ref:      "DestinationRule default/reviews-destination (000-04-destinationrule-reviews-destination.yaml)",
		Field:    "metadata.name",
	}}
	if diff := cmp.Diff(want, wheres(errorsOnly(snap.Diagnostics))); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if got, want := len(snap.VirtualServices), 11; got != want {
		t.Errorf("got %d virtual services, want %d", got, want)
	}
	if got, want := len(snap.DestinationRules), 3; got != want {
		t.Errorf("got %d destination rules, want %d", got, want)
	}
}

// Spot checks that the seeds' field values arrive in the Istio types, deprecated fields
// included (the translator must not ignore consecutiveErrors).
func TestSeedFieldsSurvive(t *testing.T) {
	snap, err := Load("testdata/seeds")
	if err != nil {
		t.Fatal(err)
	}
	vs := findVS(t, snap, "production", "product-service")
	canary := vs.Spec.GetHttp()[1]
	dr := findDR(t, snap, "production", "product-service")
	perf := findDR(t, snap, "default", "reviews-performance")
	svc := snap.Services[0]
	got := []any{
		vs.Spec.GetHttp()[0].GetMatch()[0].GetHeaders()["x-canary"].GetExact(),
		canary.GetRoute()[0].GetWeight(), canary.GetRoute()[1].GetWeight(),
		canary.GetTimeout().AsDuration(), canary.GetRetries().GetRetryOn(), canary.GetRetries().GetPerTryTimeout().AsDuration(),
		dr.Spec.GetTrafficPolicy().GetLoadBalancer().GetSimple(),
		dr.Spec.GetTrafficPolicy().GetOutlierDetection().GetConsecutive_5XxErrors().GetValue(),
		dr.Spec.GetTrafficPolicy().GetConnectionPool().GetHttp().GetH2UpgradePolicy(),
		dr.Spec.GetSubsets()[1].GetTrafficPolicy().GetConnectionPool().GetTcp().GetMaxConnections(),
		perf.Spec.GetTrafficPolicy().GetOutlierDetection().GetConsecutiveErrors(),
		svc.Ports, svc.Resolution, svc.MeshExternal,
	}
	want := []any{
		"true",
		int32(90), int32(10),
		5 * time.Second, "gateway-error,connect-failure,refused-stream", 2 * time.Second,
		networking.LoadBalancerSettings_LEAST_REQUEST,
		uint32(5),
		networking.ConnectionPoolSettings_HTTPSettings_UPGRADE,
		int32(500),
		int32(3),
		[]model.ServicePort{{Name: "https", Number: 443, TargetPort: 443, Protocol: model.ProtocolHTTPS}}, model.ResolutionDNS, true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("seed fields (-want +got):\n%s", diff)
	}
}

// The seeds also hold fragments (a trafficPolicy, an http route) meant to be pasted into
// an object; they must parse as the part of the Istio API they are.
func TestSeedFragments(t *testing.T) {
	tests := []struct {
		file string
		list bool
		new  func() proto.Message
	}{
		// "trafficPolicy:" at the top: a piece of a DestinationRule's spec.
		{file: "002-08-trafficpolicy.yaml", new: func() proto.Message { return &networking.DestinationRule{} }},
		{file: "002-09-trafficpolicy.yaml", new: func() proto.Message { return &networking.DestinationRule{} }},
		{file: "002-11-http.yaml", list: true, new: func() proto.Message { return &networking.HTTPRoute{} }},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/seed-fragments", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := yaml.YAMLToJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			parts := [][]byte{raw}
			if tt.list {
				var items []any
				if err := yaml.Unmarshal(data, &items); err != nil {
					t.Fatal(err)
				}
				parts = nil
				for _, it := range items {
					b, _ := yaml.Marshal(it)
					j, _ := yaml.YAMLToJSON(b)
					parts = append(parts, j)
				}
			}
			for _, p := range parts {
				if prob := decodeProto(p, tt.new(), "spec"); prob != nil {
					t.Errorf("%s: %s", prob.field, prob.msg)
				}
			}
		})
	}
}

func findVS(t *testing.T, s *model.Snapshot, ns, name string) *model.VirtualService {
	t.Helper()
	for _, vs := range s.VirtualServices {
		if vs.Source.Namespace == ns && vs.Source.Name == name {
			return vs
		}
	}
	t.Fatalf("no VirtualService %s/%s", ns, name)
	return nil
}

func findDR(t *testing.T, s *model.Snapshot, ns, name string) *model.DestinationRule {
	t.Helper()
	for _, dr := range s.DestinationRules {
		if dr.Source.Namespace == ns && dr.Source.Name == name {
			return dr
		}
	}
	t.Fatalf("no DestinationRule %s/%s", ns, name)
	return nil
}
