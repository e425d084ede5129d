package e2e

import (
	"strings"
	"testing"
	"time"
)

// A half-typed edit: the flow mapping on the first destination is never closed.
const brokenYAMLVS = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews-canary
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1
      weight: 50
    - destination: {host: reviews, subset: v2}
      weight: 50
`

// Valid YAML, invalid object: a negative weight on the second destination.
const negativeWeightVS = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews-canary
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v2}
      weight: -5
`

// TestBrokenEditsKeepServing: while traffic flows, a file that does not parse and then an
// object that does not validate each leave Envoy on the last good split, are named by
// weir's log and `weir validate`, and fixing the file applies the new split. Not one
// request may fail throughout.
func TestBrokenEditsKeepServing(t *testing.T) {
	split9010 := map[string]float64{"v1": 90, "v2": 10}
	env, envoy := startReviews(t, MustMergePatch(t, SeedReviewsCanary, SeedPatch90to10))
	envoy.WaitRouteWeights(t, "reviews", reviewsSplit(split9010))
	w := env.Weir()
	reviews := envoy.Traffic("reviews")
	bg := reviews.Background(t, 3*time.Minute)

	keepsSplit := func(what string) {
		t.Helper()
		// The edit has been seen (weir logged it); give a wrong push time to arrive.
		time.Sleep(500 * time.Millisecond)
		vh, ok := envoy.ConfigDump(t).VirtualHost("reviews")
		if !ok || len(vh.Routes) == 0 {
			t.Fatalf("%s: Envoy lost the reviews virtual host", what)
		}
		if got := vh.Routes[len(vh.Routes)-1].Route.Weights(); !sameWeights(got, reviewsSplit(split9010)) {
			t.Errorf("%s: Envoy's weights changed to %v, want the last good 90/10", what, got)
		}
		AssertSplit(t, what, reviews.Send(splitRequests), split9010, splitTolerancePP)
		if _, err := w.get("/readyz"); err != nil {
			t.Errorf("%s: weir not ready any more: %v", what, err)
		}
	}

	// 1. YAML that does not parse.
	mark := w.LogSize()
	env.WriteFile("virtualservice.yaml", brokenYAMLVS)
	t.Logf("weir logged: %s", w.WaitLog(t, mark, "virtualservice.yaml"))
	out, status := env.Validate(t)
	if status != 1 || !strings.Contains(out, "virtualservice.yaml") {
		t.Errorf("weir validate on unparseable YAML: status %d, want 1 and the file named; output:\n%s", status, out)
	}
	keepsSplit("after unparseable YAML")

	// 2. A negative weight.
	mark = w.LogSize()
	env.WriteFile("virtualservice.yaml", negativeWeightVS)
	t.Logf("weir logged: %s", w.WaitLog(t, mark, "virtualservice.yaml", "reviews-canary"))
	out, status = env.Validate(t)
	for _, want := range []string{"VirtualService default/reviews-canary", "virtualservice.yaml", "spec.http[0].route[1].weight"} {
		if !strings.Contains(out, want) {
			t.Errorf("weir validate on weight -5: output lacks %q:\n%s", want, out)
		}
	}
	if status != 1 {
		t.Errorf("weir validate on weight -5: status %d, want 1", status)
	}
	keepsSplit("after weight -5")

	// 3. The fix.
	env.WriteFile("virtualservice.yaml", MustMergePatch(t, SeedReviewsCanary, SeedPatch50to50))
	envoy.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v1": 50, "v2": 50}))
	AssertSplit(t, "after the fix, 50/50", reviews.Send(splitRequests), map[string]float64{"v1": 50, "v2": 50}, splitTolerancePP)
	if out, status := env.Validate(t); status != 0 {
		t.Errorf("weir validate after the fix: status %d, want 0; output:\n%s", status, out)
	}

	ta := bg.Stop()
	if ta.Failures() > 0 || ta.Total < 200 {
		t.Errorf("background traffic during the broken edits: want at least 200 requests and zero failures, got %s", ta)
	}
	t.Logf("background traffic: %s", ta)
}
