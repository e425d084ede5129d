package e2e

import (
	"math"
	"slices"
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
	ta, copies := mirroredRun(t, 168, []string{"v1", "v2"}, SeedReviewsDestinationRule, mirrorVirtualService)
	pct := 100 * float64(copies[0]) / float64(ta.Total)
	t.Logf("MEASURE mirror 50%%: v2 received %d copies of %d requests (%.2f%%)", copies[0], ta.Total, pct)
	if math.Abs(pct-50) > splitTolerancePP {
		t.Errorf("v2 received %.2f%% of the requests as copies, want 50 ± %.0f points", pct, splitTolerancePP)
	}
}

// mirroredRun serves reviews from one backend per version with the given rule and
// VirtualService, checks that users get only the first version, and returns what they
// saw and how many copies each other version received, once the counts stop moving
// (copies are sent in the background).
func mirroredRun(t *testing.T, firstOctet int, versions []string, rule, vs string) (*Tally, []int64) {
	t.Helper()
	env := NewEnv(t)
	bs := env.StartBackendsFrom(firstOctet, versions...)
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("destinationrule.yaml", rule)
	env.WriteFile("virtualservice.yaml", vs)
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)

	tr := e.Traffic("reviews")
	tr.Concurrency = 32
	ta := tr.Send(splitRequests)
	AssertAll(t, "users of a mirrored route", ta, versions[0])
	counts := func() []int64 {
		var out []int64
		for _, b := range bs[1:] {
			out = append(out, b.Requests())
		}
		return out
	}
	copies := counts()
	poll(5*time.Second, 200*time.Millisecond, func() bool {
		now := counts()
		settled := slices.Equal(now, copies)
		copies = now
		return settled
	})
	return ta, copies
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
	ta, copies := mirroredRun(t, 175, []string{"v1", "v2", "v3"}, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`, mirrorsVirtualService)
	for i, want := range []float64{100, 25} {
		version := []string{"v2", "v3"}[i]
		pct := 100 * float64(copies[i]) / float64(ta.Total)
		t.Logf("MEASURE mirrors: %s received %d copies of %d requests (%.2f%%, want %.0f%%)", version, copies[i], ta.Total, pct, want)
		if math.Abs(pct-want) > splitTolerancePP {
			t.Errorf("%s received %.2f%% of the requests as copies, want %.0f ± %.0f points", version, pct, want, splitTolerancePP)
		}
	}
}
