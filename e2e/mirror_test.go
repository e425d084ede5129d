package e2e

import (
	"math"
	"testing"
	"time"
)

// mirrorVirtualService serves everything from v1 and mirrors half of it to v2.
const mirrorVirtualService = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 50}
`

// TestMirrorPercentage: with mirrorPercentage 50, users get only v1 while v2 receives a
// copy of 50 ± 3 % of the requests, counted at the v2 backend itself.
func TestMirrorPercentage(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(168, "v1", "v2")
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("destinationrule.yaml", SeedReviewsDestinationRule)
	env.WriteFile("virtualservice.yaml", mirrorVirtualService)
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)

	tr := e.Traffic("reviews")
	tr.Concurrency = 32
	ta := tr.Send(splitRequests)
	AssertAll(t, "users of a mirrored route", ta, "v1")
	// Copies are sent in the background: wait until the count stops moving.
	mirror := bs[1].Requests()
	poll(5*time.Second, 200*time.Millisecond, func() bool {
		n := bs[1].Requests()
		settled := n == mirror
		mirror = n
		return settled
	})
	pct := 100 * float64(mirror) / float64(ta.Total)
	t.Logf("MEASURE mirror 50%%: v2 received %d copies of %d requests (%.2f%%)", mirror, ta.Total, pct)
	if math.Abs(pct-50) > splitTolerancePP {
		t.Errorf("v2 received %.2f%% of the requests as copies, want 50 ± %.0f points", pct, splitTolerancePP)
	}
}

// mirrorsVirtualService mirrors to two subsets at once: v2 every request, v3 a quarter.
const mirrorsVirtualService = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
    mirrors:
    - destination: {host: reviews, subset: v2}
    - destination: {host: reviews, subset: v3}
      percentage: {value: 25}
`

// TestMirrorsSendEachItsShare: with mirrors (plural), users get only v1; v2 receives a
// copy of every request and v3 of 25 ± 3 %, each counted at its backend.
func TestMirrorsSendEachItsShare(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(175, "v1", "v2", "v3")
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("destinationrule.yaml", `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`)
	env.WriteFile("virtualservice.yaml", mirrorsVirtualService)
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)

	tr := e.Traffic("reviews")
	tr.Concurrency = 32
	ta := tr.Send(splitRequests)
	AssertAll(t, "users of a route with two mirrors", ta, "v1")
	counts := [2]int64{bs[1].Requests(), bs[2].Requests()}
	poll(5*time.Second, 200*time.Millisecond, func() bool { // copies are sent in the background
		now := [2]int64{bs[1].Requests(), bs[2].Requests()}
		settled := now == counts
		counts = now
		return settled
	})
	for i, want := range []float64{100, 25} {
		pct := 100 * float64(counts[i]) / float64(ta.Total)
		t.Logf("MEASURE mirrors: %s received %d copies of %d requests (%.2f%%, want %.0f%%)", bs[i+1].Version(), counts[i], ta.Total, pct, want)
		if math.Abs(pct-want) > splitTolerancePP {
			t.Errorf("%s received %.2f%% of the requests as copies, want %.0f ± %.0f points", bs[i+1].Version(), pct, want, splitTolerancePP)
		}
	}
}
