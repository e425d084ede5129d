package model

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

func parse(t *testing.T, spec string, m proto.Message) {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(js, m); err != nil {
		t.Fatalf("spec %q: %v", spec, err)
	}
}

// fields lists the field of each diagnostic, checking that all are errors of src.
func fields(t *testing.T, src Ref, ds []Diagnostic) []string {
	t.Helper()
	out := []string{}
	for _, d := range ds {
		if d.Severity != SeverityError || d.Source != src || d.Message == "" {
			t.Errorf("unexpected diagnostic shape: %+v", d)
		}
		out = append(out, d.Field)
	}
	return out
}

func TestValidateVirtualService(t *testing.T) {
	src := Ref{Kind: "VirtualService", Namespace: "default", Name: "reviews", File: "vs.yaml"}
	for _, tc := range []struct {
		name string
		spec string
		want []string
	}{
		{"seed canary 90/10", `
hosts: [reviews]
http:
- route:
  - {destination: {host: reviews, subset: v1}, weight: 90}
  - {destination: {host: reviews, subset: v2}, weight: 10}`, nil},
		{"relative weights and weight 0 are fine", `
hosts: [reviews]
http:
- route:
  - {destination: {host: reviews, subset: v1}, weight: 300}
  - {destination: {host: reviews, subset: v2}, weight: 0}`, nil},
		{"negative weight", `
hosts: [reviews]
http:
- route:
  - {destination: {host: reviews}, weight: -1}`, []string{"spec.http[0].route[0].weight"}},
		{"missing hosts", `
http: [{route: [{destination: {host: reviews}}]}]`, []string{"spec.hosts"}},
		{"empty host", `
hosts: [""]
http: [{route: [{destination: {host: reviews}}]}]`, []string{"spec.hosts[0]"}},
		{"no routes at all", `
hosts: [reviews]`, []string{"spec"}},
		{"empty destination host", `
hosts: [reviews]
http: [{route: [{destination: {subset: v1}}]}]`, []string{"spec.http[0].route[0].destination.host"}},
		{"missing destination", `
hosts: [reviews]
http: [{route: [{weight: 100}]}]`, []string{"spec.http[0].route[0].destination"}},
		{"route without action", `
hosts: [reviews]
http: [{timeout: 5s}]`, []string{"spec.http[0]"}},
		{"route and redirect", `
hosts: [reviews]
http: [{route: [{destination: {host: reviews}}], redirect: {uri: /x}}]`, []string{"spec.http[0]"}},
		{"invalid regexes", `
hosts: [reviews]
http:
- match:
  - uri: {regex: "(unclosed"}
    headers: {x-user-id: {regex: "[0-4"}}
    queryParams: {q: {regex: "*"}}
    withoutHeaders: {x-b: {regex: ""}}
  route: [{destination: {host: reviews}}]`, []string{
			"spec.http[0].match[0].uri.regex",
			"spec.http[0].match[0].headers[x-user-id].regex",
			"spec.http[0].match[0].withoutHeaders[x-b].regex",
			"spec.http[0].match[0].queryParams[q].regex",
		}},
		{"seed regex is valid RE2", `
hosts: [reviews]
http:
- match: [{headers: {x-user-id: {regex: "[0-4].*"}}}]
  route: [{destination: {host: reviews}}]`, nil},
		{"header name and empty prefix", `
hosts: [reviews]
http:
- match: [{headers: {"bad header": {exact: x}, x-ok: {prefix: ""}}}]
  route: [{destination: {host: reviews}}]`, []string{
			"spec.http[0].match[0].headers[bad header]",
			"spec.http[0].match[0].headers[x-ok].prefix",
		}},
		{"negative timeout", `
hosts: [reviews]
http: [{timeout: -1s, route: [{destination: {host: reviews}}]}]`, []string{"spec.http[0].timeout"}},
		{"zero timeout means none", `
hosts: [reviews]
http: [{timeout: 0s, route: [{destination: {host: reviews}}]}]`, nil},
		{"retries", `
hosts: [reviews]
http:
- retries: {attempts: -2, perTryTimeout: 0s, retryOn: "5xx,gateway-error,99,503,nope"}
  route: [{destination: {host: reviews}}]`, []string{
			"spec.http[0].retries.attempts",
			"spec.http[0].retries.perTryTimeout",
			"spec.http[0].retries.retryOn",
			"spec.http[0].retries.retryOn",
		}},
		{"mirror with a percentage, 0 to 100 with fractions", `
hosts: [reviews]
http:
- {mirror: {host: reviews, subset: v2}, mirrorPercentage: {value: 0.5}, route: [{destination: {host: reviews}}]}
- {mirror: {host: reviews, subset: v2}, mirrorPercentage: {value: 100}, route: [{destination: {host: reviews}}]}
- {mirror: {host: reviews, subset: v2}, mirrorPercent: 0, route: [{destination: {host: reviews}}]}`, nil},
		{"mirror percentages out of range and a mirror without host", `
hosts: [reviews]
http:
- {mirror: {host: reviews}, mirrorPercentage: {value: 100.5}, route: [{destination: {host: reviews}}]}
- {mirror: {host: reviews}, mirrorPercentage: {value: -1}, route: [{destination: {host: reviews}}]}
- {mirror: {host: reviews}, mirrorPercent: 101, route: [{destination: {host: reviews}}]}
- {mirror: {subset: v2}, route: [{destination: {host: reviews}}]}`, []string{
			"spec.http[0].mirrorPercentage.value",
			"spec.http[1].mirrorPercentage.value",
			"spec.http[2].mirrorPercent",
			"spec.http[3].mirror.host",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := &VirtualService{Source: src, Spec: &networking.VirtualService{}}
			parse(t, tc.spec, vs.Spec)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, fields(t, src, ValidateVirtualService(vs))); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

// A percentage without a mirror is legal in Istio and does nothing: weir says so.
func TestValidateWarnsOnMirrorPercentageWithoutMirror(t *testing.T) {
	vs := &VirtualService{Source: Ref{Kind: "VirtualService", Name: "reviews"}, Spec: &networking.VirtualService{}}
	parse(t, `
hosts: [reviews]
http: [{mirrorPercentage: {value: 50}, route: [{destination: {host: reviews}}]}]`, vs.Spec)
	ds := ValidateVirtualService(vs)
	if len(ds) != 1 || ds[0].Severity != SeverityWarning || ds[0].Field != "spec.http[0].mirrorPercentage" {
		t.Fatalf("diagnostics = %+v, want one warning on spec.http[0].mirrorPercentage", ds)
	}
}

// Regression guard for a real NACK: Envoy rejects regexes whose RE2 program exceeds its
// default limit; weir warns before sending (Envoy's limit is configurable, so not an error).
func TestValidateWarnsOnOversizedRegex(t *testing.T) {
	src := Ref{Kind: "VirtualService", Namespace: "default", Name: "r"}
	for _, tc := range []struct {
		regex string
		warn  bool
	}{
		{"[0-4].*", false},
		{"[a-z]{60}", false},
		{"([0-9a-f]{8}-){20}[a-z]{30}", true}, // Envoy 1.40: program size 414 > 100
		{"(foo|bar|baz|qux){10}", true},       // Envoy 1.40: 124 > 100
	} {
		t.Run(tc.regex, func(t *testing.T) {
			spec := &networking.VirtualService{}
			parse(t, "hosts: [r]\nhttp: [{match: [{headers: {x: {regex: '"+tc.regex+"'}}}], route: [{destination: {host: r}}]}]", spec)
			ds := ValidateVirtualService(&VirtualService{Source: src, Spec: spec})
			if HasErrors(ds) {
				t.Fatalf("oversized regex must not be an error: %v", ds)
			}
			if got := len(ds) == 1 && ds[0].Severity == SeverityWarning && ds[0].Field == "spec.http[0].match[0].headers[x].regex"; got != tc.warn {
				t.Errorf("warning = %v, want %v: %v", got, tc.warn, ds)
			}
		})
	}
}

func TestValidateDestinationRule(t *testing.T) {
	src := Ref{Kind: "DestinationRule", Namespace: "production", Name: "product-service"}
	for _, tc := range []struct {
		name string
		spec string
		want []string
	}{
		{"seed 002 product-service", `
host: product-service.production.svc.cluster.local
trafficPolicy:
  loadBalancer: {simple: LEAST_REQUEST}
  connectionPool:
    tcp: {maxConnections: 1000, connectTimeout: 3s, tcpKeepalive: {time: 7200s, interval: 75s}}
    http: {http1MaxPendingRequests: 1024, http2MaxRequests: 1024, maxRequestsPerConnection: 100,
           maxRetries: 3, idleTimeout: 3600s, h2UpgradePolicy: UPGRADE}
  outlierDetection: {consecutive5xxErrors: 5, interval: 30s, baseEjectionTime: 30s,
                     maxEjectionPercent: 50, minHealthPercent: 50}
subsets:
- {name: stable, labels: {version: stable}}
- name: canary
  labels: {version: canary}
  trafficPolicy: {connectionPool: {tcp: {maxConnections: 500}, http: {http1MaxPendingRequests: 512}}}`, nil},
		{"empty host", `
subsets: [{name: v1}]`, []string{"spec.host"}},
		{"subset names", `
host: reviews
subsets: [{name: v1}, {labels: {version: v2}}, {name: v1}]`, []string{"spec.subsets[1].name", "spec.subsets[2].name"}},
		{"connection pool numbers and durations", `
host: reviews
trafficPolicy:
  connectionPool:
    tcp: {maxConnections: -1, connectTimeout: 0s, tcpKeepalive: {interval: -5s}}
    http: {http1MaxPendingRequests: -1, maxRetries: -3, idleTimeout: 0s}`, []string{
			"spec.trafficPolicy.connectionPool.tcp.maxConnections",
			"spec.trafficPolicy.connectionPool.tcp.connectTimeout",
			"spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.interval",
			"spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests",
			"spec.trafficPolicy.connectionPool.http.maxRetries",
			"spec.trafficPolicy.connectionPool.http.idleTimeout",
		}},
		{"outlier detection in a subset", `
host: reviews
subsets:
- name: v1
  trafficPolicy:
    outlierDetection: {consecutiveErrors: -1, interval: 0s, maxEjectionPercent: 101, minHealthPercent: -1}`, []string{
			"spec.subsets[0].trafficPolicy.outlierDetection.consecutiveErrors",
			"spec.subsets[0].trafficPolicy.outlierDetection.interval",
			"spec.subsets[0].trafficPolicy.outlierDetection.maxEjectionPercent",
			"spec.subsets[0].trafficPolicy.outlierDetection.minHealthPercent",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dr := &DestinationRule{Source: src, Spec: &networking.DestinationRule{}}
			parse(t, tc.spec, dr.Spec)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, fields(t, src, ValidateDestinationRule(dr))); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateMissingSpec(t *testing.T) {
	src := Ref{Kind: "VirtualService", Name: "x"}
	if got := fields(t, src, ValidateVirtualService(&VirtualService{Source: src})); !cmp.Equal(got, []string{"spec"}) {
		t.Errorf("VirtualService without spec: %v", got)
	}
	src.Kind = "DestinationRule"
	if got := fields(t, src, ValidateDestinationRule(&DestinationRule{Source: src})); !cmp.Equal(got, []string{"spec"}) {
		t.Errorf("DestinationRule without spec: %v", got)
	}
}
