package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/weir-mesh/weir/e2e/backend"
)

// twoPortService is reviews on ports 80 and 9080, both served by the same pods.
func twoPortService(bs []*backend.Backend) string {
	svc := ServicePods("reviews", "default", reviewsPort, false, bs)
	alt := fmt.Sprintf("  - name: http-alt\n    port: 9080\n    targetPort: %d\n", bs[0].Port())
	return strings.Replace(svc, "---\n", alt+"---\n", 1)
}

// matchVirtualService sends to v2 what each new match kind selects, everything else to v1.
const matchVirtualService = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: writes
    match: [{method: {exact: POST}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: long-name
    match: [{authority: {exact: reviews.default.svc.cluster.local}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: admin-any-case
    match: [{uri: {prefix: /admin/}, ignoreUriCase: true}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: alt-port
    match: [{port: 9080}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: frontend-only
    match: [{sourceLabels: {app: frontend}, headers: {x-beta: {exact: "1"}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
`

// TestNewMatchKindsRoute: method, authority, ignoreUriCase, port and sourceLabels each
// send exactly the requests they select to v2 and nothing else. sourceLabels is checked
// from two sidecars, one labelled app=frontend and one not.
func TestNewMatchKindsRoute(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(166, "v1", "v2")
	env.WriteFile("services.yaml", twoPortService(bs))
	env.WriteFile("destinationrule.yaml", SeedReviewsDestinationRule)
	env.WriteFile("virtualservice.yaml", matchVirtualService)
	env.StartWeir()
	frontend := env.StartEnvoy(EnvoyOptions{Labels: map[string]string{"app": "frontend"}})
	other := env.StartEnvoy(EnvoyOptions{Labels: map[string]string{"app": "batch"}})
	env.Weir().WaitAcked(t, frontend.NodeID)
	env.Weir().WaitAcked(t, other.NodeID)

	beta := http.Header{"X-Beta": {"1"}}
	for _, c := range []struct {
		name  string
		envoy *Envoy
		req   Request
		want  string
	}{
		{"GET", frontend, Request{Host: "reviews"}, "v1"},
		{"POST", frontend, Request{Method: http.MethodPost, Host: "reviews"}, "v2"},
		{"authority: the long name", frontend, Request{Host: "reviews.default.svc.cluster.local"}, "v2"},
		{"authority: the long name with a port", frontend, Request{Host: "reviews.default.svc.cluster.local:80"}, "v1"},
		{"/admin/users", frontend, Request{Host: "reviews", Path: "/admin/users"}, "v2"},
		{"/ADMIN/Users (ignoreUriCase)", frontend, Request{Host: "reviews", Path: "/ADMIN/Users"}, "v2"},
		{"/administrator", frontend, Request{Host: "reviews", Path: "/administrator"}, "v1"},
		{"port 9080", frontend, Request{Host: "reviews:9080"}, "v2"},
		{"port 80", frontend, Request{Host: "reviews:80"}, "v1"},
		{"x-beta from the frontend", frontend, Request{Host: "reviews", Header: beta}, "v2"},
		{"x-beta from another workload", other, Request{Host: "reviews", Header: beta}, "v1"},
		{"POST from another workload", other, Request{Method: http.MethodPost, Host: "reviews"}, "v2"},
	} {
		rs := c.envoy.DoMany(c.req, 50, 8)
		got := map[string]int{}
		for _, r := range rs {
			v := "(no backend)"
			if r.Echo != nil && r.Status == http.StatusOK {
				v = r.Echo.Version
			}
			got[v]++
		}
		if got[c.want] != len(rs) {
			t.Errorf("%s: answered by %v, want all %d by %s", c.name, got, len(rs), c.want)
		}
	}
}
