package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/e2e/backend"
	"github.com/weir-mesh/weir/rollout"
)

// Acceptance: blue/green switches at once after its iterations pass; A/B sends only
// matching requests to the canary until promotion.

// strategyRolloutYAML is a reviews Rollout from v1 to v2 with the given strategy (one
// YAML flow mapping), checked every interval on the built-in metrics.
func strategyRolloutYAML(strategy, interval string) string {
	return fmt.Sprintf(`apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  stable: v1
  canary: v2
  strategy: %s
  analysis:
    interval: %s
    threshold: 2
    minRequests: 20
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
    - name: request-duration
      thresholdRange: {max: 500}
`, strategy, interval)
}

// startStrategyRollout serves reviews v1 and v2, the seed's DestinationRule and the
// rollout, with a sidecar that sends its stats every second.
func startStrategyRollout(t *testing.T, strategy string) (*Envoy, *Weir, []*backend.Backend) {
	t.Helper()
	env := NewEnv(t)
	bs := env.StartBackends("v1", "v2")
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("destinationrule.yaml", SeedReviewsDestinationRule)
	env.WriteFile("rollout.yaml", strategyRolloutYAML(strategy, "3s"))
	w := env.StartWeir()
	return env.StartEnvoy(EnvoyOptions{StatsFlush: time.Second}), w, bs
}

// waitAnalysing waits until the rollout's first (and only) step is in effect on every
// proxy, and returns its status.
func waitAnalysing(t *testing.T, w *Weir) rollout.Status {
	t.Helper()
	var s rollout.Status
	if !poll(30*time.Second, 50*time.Millisecond, func() bool {
		s = w.rolloutStatus(t)
		return s.State.Phase == v1alpha1.PhaseProgressing && s.State.Applied
	}) {
		t.Fatalf("the rollout's step never took effect: %s, applied %v: %s", s.State.Phase, s.State.Applied, s.State.Message)
	}
	return s
}

// stillAnalysing fails the test unless the rollout is still in its step at 0 %: traffic
// sampled before this call was then all sent during the step.
func stillAnalysing(t *testing.T, w *Weir) {
	t.Helper()
	if s := w.rolloutStatus(t).State; s.Phase != v1alpha1.PhaseProgressing || s.CanaryWeight != 0 {
		t.Fatalf("the step ended while it was being sampled (phase %s, %d%%): lengthen the interval", s.Phase, s.CanaryWeight)
	}
}

// onlyAtOnce fails unless the canary weights seen are 0, then 100, and nothing between.
func onlyAtOnce(t *testing.T, weights []int32) {
	t.Helper()
	for _, w := range weights {
		if w != 0 && w != 100 {
			t.Errorf("canary weights seen %v: %d%% is neither 0 nor 100", weights, w)
		}
	}
	if !isSubsequence([]int32{0, 100}, weights) {
		t.Errorf("canary weights seen %v, want 0 then 100", weights)
	}
}

// lastCheckJudgedTraffic fails unless the last check passed every metric on at least
// minRequests canary requests.
func lastCheckJudgedTraffic(t *testing.T, s rollout.Status) {
	t.Helper()
	if len(s.State.Metrics) == 0 {
		t.Errorf("no check was recorded: %s", s.State.Message)
	}
	for _, m := range s.State.Metrics {
		if m.Verdict != rollout.Pass || m.Requests < 20 {
			t.Errorf("last check: %+v, want a pass on at least 20 canary requests", m)
		}
	}
}

// TestBlueGreenMirrorsThenSwitchesAtOnce: while blue/green checks v2, users get only v1,
// but every request is mirrored to v2 (Envoy counts the copies in the canary cluster's
// stats, so the checks have data instead of holding for want of traffic); after two
// passed checks all traffic moves to v2 in one step.
func TestBlueGreenMirrorsThenSwitchesAtOnce(t *testing.T) {
	envoy, w, bs := startStrategyRollout(t, "{blueGreen: {iterations: 2}}")
	bg := envoy.Traffic("reviews").Background(t, 2*time.Minute)

	if s := waitAnalysing(t, w); !s.State.Mirror || s.State.CanaryWeight != 0 {
		t.Fatalf("blue/green step: %d%% to the canary, mirror %v; want 0 %% and the mirror", s.State.CanaryWeight, s.State.Mirror)
	}
	canaryStat := fmt.Sprintf("cluster.outbound|%d|v2|%s.upstream_rq_completed", reviewsPort, reviewsFQDN)
	servedBefore, countedBefore := bs[1].Requests(), envoy.Stat(t, canaryStat)
	sample := envoy.Traffic("reviews").Send(400)
	stillAnalysing(t, w)
	AssertAll(t, "during the blue/green checks", sample, "v1")
	// The copies are sent alongside the requests; the last may still be on their way.
	var served, counted int64
	poll(5*time.Second, 50*time.Millisecond, func() bool {
		served, counted = bs[1].Requests()-servedBefore, envoy.Stat(t, canaryStat)-countedBefore
		return served >= int64(sample.Total) && counted >= int64(sample.Total)
	})
	if served < int64(sample.Total) || counted < int64(sample.Total) {
		t.Errorf("while %d requests were answered by v1 only, v2 served %d mirrored copies and Envoy counted %d in %s; want at least %d each",
			sample.Total, served, counted, canaryStat, sample.Total)
	}

	s, weights := followRollout(t, w, v1alpha1.PhaseSucceeded, 60*time.Second)
	tally := bg.Stop()
	onlyAtOnce(t, weights)
	if s.State.Stable != "v2" || s.State.Mirror {
		t.Errorf("after promotion: stable %q, mirror %v; want v2 and no mirror", s.State.Stable, s.State.Mirror)
	}
	lastCheckJudgedTraffic(t, s)
	if f := tally.Failures(); f > 0 {
		t.Errorf("%d of %d requests failed during the rollout: %s", f, tally.Total, tally)
	}
	AssertAll(t, "after promotion", envoy.Traffic("reviews").Send(200), "v2")
}

// TestABTestingSendsOnlyMatchingRequestsToTheCanary: while A/B checks v2, requests with
// x-user-type: beta all go to v2 and the others all to v1 (traffic of both kinds flows,
// so the canary has data); after two passed checks everything goes to v2.
func TestABTestingSendsOnlyMatchingRequestsToTheCanary(t *testing.T) {
	envoy, w, _ := startStrategyRollout(t, "{abTesting: {iterations: 2, match: [{headers: {x-user-type: {exact: beta}}}]}}")
	beta, others := envoy.Traffic("reviews", "x-user-type", "beta"), envoy.Traffic("reviews", "x-user-type", "stable")
	bgBeta, bgOthers := beta.Background(t, 2*time.Minute), others.Background(t, 2*time.Minute)

	if s := waitAnalysing(t, w); !s.State.Match || s.State.Mirror {
		t.Fatalf("A/B step: match %v, mirror %v; want the match route and no mirror", s.State.Match, s.State.Mirror)
	}
	betaSample, otherSample, plainSample := beta.Send(300), others.Send(300), envoy.Traffic("reviews").Send(300)
	stillAnalysing(t, w)
	AssertAll(t, "beta users during the A/B checks", betaSample, "v2")
	AssertAll(t, "other users during the A/B checks", otherSample, "v1")
	AssertAll(t, "requests without x-user-type during the A/B checks", plainSample, "v1")

	s, weights := followRollout(t, w, v1alpha1.PhaseSucceeded, 60*time.Second)
	tallies := []*Tally{bgBeta.Stop(), bgOthers.Stop()}
	onlyAtOnce(t, weights)
	if s.State.Stable != "v2" || s.State.Match {
		t.Errorf("after promotion: stable %q, match %v; want v2 and no match route", s.State.Stable, s.State.Match)
	}
	lastCheckJudgedTraffic(t, s)
	for _, ta := range tallies {
		if f := ta.Failures(); f > 0 {
			t.Errorf("%d of %d requests failed during the rollout: %s", f, ta.Total, ta)
		}
	}
	AssertAll(t, "beta users after promotion", beta.Send(200), "v2")
	AssertAll(t, "other users after promotion", envoy.Traffic("reviews").Send(200), "v2")
}
