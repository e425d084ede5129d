package e2e

import (
	"net/http"
	"testing"
	"time"
)

// TestWeightChangeReloadsOnlyThatService: routes are split by service (one route
// configuration per service, picked by a route scope keyed on the request's host), so a
// weight change to reviews makes Envoy reload reviews' routes alone, over SotW and delta;
// ratings' route configuration is not even resent, and keeps serving. A service added
// later is routed as soon as its scope and routes arrive; a service removed stops being
// routed.
func TestWeightChangeReloadsOnlyThatService(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackends("v1", "v2")
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("ratings.yaml", ratingsPods(env.StartBackendsFrom(21, "pod-a")...))
	env.WriteFile("destinationrule.yaml", SeedReviewsDestinationRule)
	env.WriteFile("virtualservice.yaml", SeedReviewsCanary)
	env.StartWeir()
	envoys := []*Envoy{env.StartEnvoy(EnvoyOptions{}), env.StartEnvoy(EnvoyOptions{Delta: true})}
	const (
		ratingsRDS = "http.outbound_http.rds.outbound|ratings.default.svc.cluster.local."
		reviewsRDS = "http.outbound_http.rds.outbound|reviews.default.svc.cluster.local."
	)
	type counts struct{ ratingsAttempts, reviewsReloads int64 }
	before := map[*Envoy]counts{}
	for _, e := range envoys {
		e.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v1": 100}))
		waitOnly(t, e, "pod-a")
		env.Weir().WaitAcked(t, e.NodeID)
		before[e] = counts{e.Stat(t, ratingsRDS+"update_attempt"), e.Stat(t, reviewsRDS+"config_reload")}
		if before[e].ratingsAttempts < 1 || before[e].reviewsReloads < 1 {
			t.Fatalf("%s: no per-service route configurations in Envoy's stats: %+v", e.NodeID, before[e])
		}
	}

	env.WriteFile("virtualservice.yaml", MustMergePatch(t, SeedReviewsCanary, SeedPatch50to50))
	for _, e := range envoys {
		e.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v1": 50, "v2": 50}))
		AssertSplit(t, e.NodeID+" 50/50", e.Traffic("reviews").Send(splitRequests), map[string]float64{"v1": 50, "v2": 50}, splitTolerancePP)
		waitOnly(t, e, "pod-a")
		now := counts{e.Stat(t, ratingsRDS+"update_attempt"), e.Stat(t, reviewsRDS+"config_reload")}
		if now.reviewsReloads <= before[e].reviewsReloads {
			t.Errorf("%s: reviews' routes reloaded %d times, no more than before the change (%d)", e.NodeID, now.reviewsReloads, before[e].reviewsReloads)
		}
		if now.ratingsAttempts != before[e].ratingsAttempts {
			t.Errorf("%s: a weight change to reviews resent ratings' routes (%d updates, %d before)", e.NodeID, now.ratingsAttempts, before[e].ratingsAttempts)
		}
	}

	env.WriteFile("details.yaml", ServicePods("details", "default", 80, false, env.StartBackendsFrom(31, "details-v1")))
	for _, e := range envoys {
		details := e.Traffic("details")
		if !poll(10*time.Second, 50*time.Millisecond, func() bool { return details.One().Version == "details-v1" }) {
			t.Fatalf("%s: a service added later is not routed", e.NodeID)
		}
		AssertAll(t, e.NodeID+" details", details.Send(200), "details-v1")
	}

	env.WriteFile("ratings.yaml", "")
	for _, e := range envoys {
		ratings := e.Traffic("ratings")
		if !poll(10*time.Second, 50*time.Millisecond, func() bool { return ratings.One().Status == http.StatusNotFound }) {
			t.Fatalf("%s: a removed service is still routed: %+v", e.NodeID, ratings.One())
		}
		AssertSplit(t, e.NodeID+" reviews after ratings left", e.Traffic("reviews").Send(splitRequests), map[string]float64{"v1": 50, "v2": 50}, splitTolerancePP)
	}
}
