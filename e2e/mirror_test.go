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
