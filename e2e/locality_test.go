package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weir-mesh/weir/e2e/backend"
)

// placedEntry writes a ServiceEntry for host with one inline endpoint per backend, each at
// the locality (region/zone) given for its version.
func placedEntry(host string, bs []*backend.Backend, where map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: %s, namespace: default}
spec:
  hosts: [%s]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: %d}]
  resolution: STATIC
  endpoints:
`, strings.Split(host, ".")[0], host, bs[0].Port())
	for _, be := range bs {
		ip, _, _ := strings.Cut(be.Addr(), ":")
		fmt.Fprintf(&b, "  - {address: %s, locality: %s}\n", ip, where[be.Version()])
	}
	return b.String()
}

const distributeRule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings.mesh.internal
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: region-a/zone-1/*
          to: {"region-a/zone-1/*": 80, "region-a/zone-2/*": 20}
        - from: region-a/zone-2/*
          to: {"region-a/zone-2/*": 100}
`

// TestLocalityDistributeWeighsByTheProxysZone: five endpoints in three localities and two
// proxies. The proxy in region-a/zone-1 sends 80 % to zone-1 and 20 % to zone-2 (4,000
// requests, ±3 points) and nothing to region-b, which the rule does not list; the proxy in
// zone-2 sends everything to zone-2. One rule, two answers: the endpoints are translated
// per proxy locality.
func TestLocalityDistributeWeighsByTheProxysZone(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(195, "z1-a", "z1-b", "z2-a", "z2-b", "rb-a")
	where := map[string]string{"z1-a": "region-a/zone-1", "z1-b": "region-a/zone-1",
		"z2-a": "region-a/zone-2", "z2-b": "region-a/zone-2", "rb-a": "region-b/zone-1"}
	env.WriteFile("ratings.yaml", placedEntry("ratings.mesh.internal", bs, where)+"---\n"+distributeRule)
	env.StartWeir()
	zone1 := env.StartEnvoy(EnvoyOptions{Locality: Locality{Region: "region-a", Zone: "zone-1"}})
	zone2 := env.StartEnvoy(EnvoyOptions{Locality: Locality{Region: "region-a", Zone: "zone-2"}})
	for _, e := range []*Envoy{zone1, zone2} {
		env.Weir().WaitAcked(t, e.NodeID)
	}

	ta := zone1.Traffic("ratings.mesh.internal").Send(4000)
	byZone := zoneTally(ta, where)
	t.Logf("MEASURE proxy in zone-1: %v; by locality %v", ta, byZone)
	if ta.Failures() != 0 {
		t.Fatalf("proxy in zone-1: %d failed requests: %v", ta.Failures(), ta)
	}
	for zone, want := range map[string]float64{"region-a/zone-1": 80, "region-a/zone-2": 20, "region-b/zone-1": 0} {
		got := 100 * float64(byZone[zone]) / float64(ta.Total)
		if got < want-3 || got > want+3 {
			t.Errorf("proxy in zone-1: %s got %.2f%%, want %.0f%% ± 3 points", zone, got, want)
		}
	}
	if byZone["region-b/zone-1"] != 0 {
		t.Errorf("proxy in zone-1: region-b is not in the rule and must get nothing, got %d requests", byZone["region-b/zone-1"])
	}

	ta2 := zone2.Traffic("ratings.mesh.internal").Send(1000)
	t.Logf("MEASURE proxy in zone-2: %v", ta2)
	if z := zoneTally(ta2, where); ta2.Failures() != 0 || z["region-a/zone-2"] != ta2.Total {
		t.Errorf("proxy in zone-2: want every request answered in zone-2, got %v (by locality %v)", ta2, z)
	}
}

func zoneTally(ta *Tally, where map[string]string) map[string]int {
	out := map[string]int{}
	for v, n := range ta.Versions {
		out[where[v]] += n
	}
	return out
}

const failoverRule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings.mesh.internal
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        failover: [{from: region-a, to: region-c}]
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100}
`

// TestLocalityFailoverGoesToTheNamedRegion: a proxy in region-a/zone-1, endpoints in its
// zone, in region-b and in region-c, and failover from region-a to region-c. While
// healthy, every request stays in the proxy's zone. When that endpoint answers 503,
// outlier detection ejects it after 2 errors and traffic moves to region-c, never to
// region-b (which Istio's default would treat alike), with no error after the ejection.
func TestLocalityFailoverGoesToTheNamedRegion(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(200, "a1", "b1", "c1")
	where := map[string]string{"a1": "region-a/zone-1", "b1": "region-b/zone-1", "c1": "region-c/zone-1"}
	env.WriteFile("ratings.yaml", placedEntry("ratings.mesh.internal", bs, where)+"---\n"+failoverRule)
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{Locality: Locality{Region: "region-a", Zone: "zone-1"}})
	env.Weir().WaitAcked(t, e.NodeID)
	tr := e.Traffic("ratings.mesh.internal")
	tr.Concurrency = 1

	AssertAll(t, "healthy: the proxy's own zone", tr.Send(200), "a1")

	bs[0].Fail(http.StatusServiceUnavailable, 1)
	start := time.Now()
	failed := 0
	ok := poll(5*time.Second, 0, func() bool {
		r := tr.One()
		if r.Status != http.StatusOK {
			failed++
		}
		return r.Status == http.StatusOK && r.Version == "c1"
	})
	t.Logf("MEASURE failover to region-c after %d failed requests, %v", failed, time.Since(start).Round(time.Millisecond))
	if !ok {
		t.Fatalf("traffic did not reach region-c within 5 s (%d failed requests)", failed)
	}
	// 2 consecutive errors eject; a request or two may still be on its way to the
	// endpoint while the ejection reaches Envoy's worker.
	if failed > 4 {
		t.Errorf("%d requests failed before the failover, want 2 to 4", failed)
	}
	AssertAll(t, "after failover: region-c, never region-b", tr.Send(300), "c1")
}
