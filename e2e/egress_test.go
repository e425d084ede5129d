package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// egressSidecar is seed 002's Sidecar shape for namespace default, with the given mode.
func egressSidecar(mode string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1beta1
kind: Sidecar
metadata:
  name: default
  namespace: default
spec:
  outboundTrafficPolicy:
    mode: %s
  egress:
  - hosts:
    - "./*"
    - "istio-system/*"
    - "*/api.external.test"
    - "*/dns.external.test"
`, mode)
}

// externalEntries are two ServiceEntries for hosts outside the mesh: one with a listed
// (STATIC) address, one that Envoy resolves by DNS ("localhost").
func externalEntries(staticAddr string, staticPort int, dnsPort int) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: external-api, namespace: default}
spec:
  hosts: [api.external.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: %d}
  endpoints:
  - address: %s
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: external-dns, namespace: default}
spec:
  hosts: [dns.external.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: %d}
  endpoints:
  - address: localhost
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: external-api, namespace: default}
spec:
  hosts: [api.external.test]
  http:
  - match:
    - uri: {prefix: /v1}
    timeout: 10s
    route:
    - destination: {host: api.external.test}
`, staticPort, staticAddr, dnsPort)
}

// Point 8: ServiceEntry'd external hosts (STATIC and DNS) are reachable through the
// sidecar; a Sidecar's egress hosts take out-of-scope services out of the proxy's config
// (counted in config_dump); with REGISTRY_ONLY a host weir does not know is refused (404),
// with ALLOW_ANY it passes through to the host it names, while known hosts keep their
// routes and a path no route of a known host matches is still refused.
func TestServiceEntryAndSidecarEgress(t *testing.T) {
	env := NewEnv(t)
	external := env.StartBackendsFrom(231, "external-api")[0]
	dnsExternal := env.StartBackendsFrom(1, "external-dns")[0] // 127.0.0.1: "localhost"
	unknown := env.StartBackendsFrom(232, "not-in-registry")[0]
	env.WriteFile("ratings.yaml", ratingsPods(env.StartBackendsFrom(233, "ratings-v1")...))
	env.WriteFile("other.yaml", ServicePods("billing", "finance", 80, false, env.StartBackendsFrom(234, "billing-v1")))
	ip, _, _ := strings.Cut(external.Addr(), ":")
	env.WriteFile("external.yaml", externalEntries(ip, external.Port(), dnsExternal.Port()))
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)

	billing := ClusterName(80, "", "billing.finance.svc.cluster.local")
	before := e.ConfigDump(t).ClusterNames()
	if !slices.Contains(before, billing) {
		t.Fatalf("without a Sidecar, %s should be in config_dump; clusters: %v", billing, before)
	}
	for host, want := range map[string]string{"api.external.test/v1/items": "external-api", "dns.external.test": "external-dns", "ratings": "ratings-v1"} {
		h, path, _ := strings.Cut(host, "/")
		if r := e.Traffic(h).WithPath("/" + path).One(); r.Status != http.StatusOK || r.Version != want {
			t.Errorf("%s through the sidecar: status %d from %q, want 200 from %q (%v)", host, r.Status, r.Version, want, r.Err)
		}
	}

	// REGISTRY_ONLY with seed 002's egress hosts.
	unknownHost := unknown.Addr()
	env.WriteFile("sidecar.yaml", egressSidecar("REGISTRY_ONLY"))
	if !poll(convergeTimeout, 50*time.Millisecond, func() bool {
		return !slices.Contains(e.ConfigDump(t).ClusterNames(), billing)
	}) {
		t.Fatalf("the Sidecar never took %s out of the proxy's config", billing)
	}
	after := e.ConfigDump(t).ClusterNames()
	var removed []string
	for _, c := range before {
		if !slices.Contains(after, c) {
			removed = append(removed, c)
		}
	}
	if len(removed) != 1 || removed[0] != billing {
		t.Errorf("the Sidecar removed %v from config_dump; want only %s", removed, billing)
	}
	t.Logf("config_dump clusters: %d without the Sidecar, %d with it (removed %v)", len(before), len(after), removed)
	time.Sleep(100 * time.Millisecond) // the listener's worker takes the new routes
	if r := e.Traffic(unknownHost).One(); r.Status != http.StatusNotFound || r.Version != "" {
		t.Errorf("REGISTRY_ONLY, unknown host %s: status %d from %q; want 404 from Envoy", unknownHost, r.Status, r.Version)
	}
	if r := e.Traffic("api.external.test").WithPath("/v1/x").One(); r.Status != http.StatusOK || r.Version != "external-api" {
		t.Errorf("REGISTRY_ONLY, ServiceEntry host: status %d from %q; want 200 from external-api", r.Status, r.Version)
	}

	// ALLOW_ANY: the unknown host passes through; known hosts are unchanged.
	env.WriteFile("sidecar.yaml", egressSidecar("ALLOW_ANY"))
	if !poll(convergeTimeout, 50*time.Millisecond, func() bool {
		r := e.Traffic(unknownHost).One()
		return r.Status == http.StatusOK && r.Version == "not-in-registry"
	}) {
		r := e.Traffic(unknownHost).One()
		t.Fatalf("ALLOW_ANY, unknown host %s: status %d from %q (%v); want 200 from not-in-registry", unknownHost, r.Status, r.Version, r.Err)
	}
	tally := e.Traffic(unknownHost).Send(200)
	if tally.Versions["not-in-registry"] != 200 {
		t.Errorf("ALLOW_ANY: 200 requests to %s: %v codes %v; want all answered by it", unknownHost, tally.Versions, tally.Codes)
	}
	if r := e.Traffic("ratings").One(); r.Status != http.StatusOK || r.Version != "ratings-v1" {
		t.Errorf("ALLOW_ANY, known host ratings: status %d from %q", r.Status, r.Version)
	}
	// A known host's unmatched path is refused, not sent on by DNS to the name itself.
	if r := e.Traffic("api.external.test").WithPath("/v2/x").One(); r.Status != http.StatusNotFound || r.Version != "" {
		t.Errorf("ALLOW_ANY, api.external.test/v2 (no route): status %d from %q; want 404 from Envoy", r.Status, r.Version)
	}
}
