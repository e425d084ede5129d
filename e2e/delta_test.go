package e2e

import "testing"

// TestDeltaAndSotwEnvoysGetTheSameSplit runs a delta-xDS Envoy beside a state-of-the-world
// one in the same proxy class: both ACK, both serve the seed's canary steps.
func TestDeltaAndSotwEnvoysGetTheSameSplit(t *testing.T) {
	env, sotw := startReviews(t, SeedReviewsCanary)
	delta := env.StartEnvoy(EnvoyOptions{Delta: true})
	w := env.Weir()

	for _, e := range []*Envoy{sotw, delta} {
		e.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v1": 100}))
		AssertAll(t, e.NodeID+" 100/0", e.Traffic("reviews").Send(500), "v1")
	}
	p := w.WaitAcked(t, delta.NodeID)
	if !p.Delta {
		t.Fatalf("%s is not reported as a delta stream: %+v", delta.NodeID, p)
	}

	env.WriteFile("virtualservice.yaml", MustMergePatch(t, SeedReviewsCanary, SeedPatch90to10))
	want := map[string]float64{"v1": 90, "v2": 10}
	for _, e := range []*Envoy{sotw, delta} {
		e.WaitRouteWeights(t, "reviews", reviewsSplit(want))
		AssertSplit(t, e.NodeID+" 90/10", e.Traffic("reviews").Send(splitRequests), want, splitTolerancePP)
	}
	w.WaitAcked(t, delta.NodeID, "rds")
}
