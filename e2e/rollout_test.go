package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/rollout"
)

// rolloutYAML is a reviews Rollout from v1 to v2 in two steps, checked every interval on
// the built-in metrics (the sidecar's own stats, over Envoy's metrics service).
func rolloutYAML(interval string, hookURL string) string {
	return fmt.Sprintf(`apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  stable: v1
  canary: v2
  strategy:
    canary: {stepWeights: [20, 50]}
  analysis:
    interval: %s
    threshold: 2
    minRequests: 20
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
    - name: request-duration
      thresholdRange: {max: 500}
    webhooks:
    - {name: events, type: event, url: %q}
`, interval, hookURL)
}

// hookRecorder is an event webhook on loopback: it keeps each event's reason.
type hookRecorder struct {
	mu      sync.Mutex
	reasons []string
	srv     *httptest.Server
}

func newHookRecorder(t *testing.T) *hookRecorder {
	h := &hookRecorder{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Metadata map[string]string }
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		h.mu.Lock()
		h.reasons = append(h.reasons, body.Metadata["eventReason"])
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookRecorder) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.reasons)
}

func startRollout(t *testing.T, interval string, hook string) (*Env, *Envoy, *Weir) {
	t.Helper()
	env := NewEnv(t)
	bs := env.StartBackends("v1", "v2")
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("destinationrule.yaml", SeedReviewsDestinationRule)
	env.WriteFile("rollout.yaml", rolloutYAML(interval, hook))
	w := env.StartWeir()
	return env, env.StartEnvoy(EnvoyOptions{StatsFlush: time.Second}), w
}

func (w *Weir) rolloutStatus(t TB) rollout.Status {
	t.Helper()
	return w.rolloutStatusOf(t, "default", "reviews")
}

func (w *Weir) rolloutStatusOf(t TB, namespace, name string) rollout.Status {
	t.Helper()
	body, err := w.get("/rollouts/" + namespace + "/" + name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	var s rollout.Status
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("rollout status: %v", err)
	}
	return s
}

// followRollout polls the rollout until it reaches phase end (or the deadline), and
// returns the canary weights it saw, in order, without repeats.
func followRollout(t *testing.T, w *Weir, end v1alpha1.Phase, deadline time.Duration) (rollout.Status, []int32) {
	t.Helper()
	var weights []int32
	var s rollout.Status
	ok := poll(deadline, 100*time.Millisecond, func() bool {
		s = w.rolloutStatus(t)
		if n := len(weights); n == 0 || weights[n-1] != s.State.CanaryWeight {
			weights = append(weights, s.State.CanaryWeight)
		}
		return s.State.Phase == end
	})
	if !ok {
		t.Fatalf("rollout did not reach %s within %s; now %s: %s (weights seen %v)", end, deadline, s.State.Phase, s.State.Message, weights)
	}
	return s, weights
}

// TestRolloutPromotesAHealthyCanary: with a healthy v2 under steady traffic, weir moves
// 20% then 50% to it, each step judged on the sidecar's own stats, then promotes it; no
// request fails on the way and every event reaches the webhook.
func TestRolloutPromotesAHealthyCanary(t *testing.T) {
	hooks := newHookRecorder(t)
	env, envoy, w := startRollout(t, "3s", hooks.srv.URL)
	bg := envoy.Traffic("reviews").Background(t, 2*time.Minute)

	s, weights := followRollout(t, w, v1alpha1.PhaseSucceeded, 90*time.Second)
	tally := bg.Stop()
	if s.State.Stable != "v2" {
		t.Errorf("stable after promotion = %q, want v2", s.State.Stable)
	}
	if !isSubsequence([]int32{20, 50, 100}, weights) || !slices.IsSorted(weights[:len(weights)-1]) {
		t.Errorf("canary weights seen %v, want 20, 50 and 100 in order", weights)
	}
	for _, m := range s.State.Metrics {
		if m.Verdict != rollout.Pass || m.Requests < 20 {
			t.Errorf("last check: %+v, want a pass on at least 20 requests", m)
		}
	}
	if f := tally.Failures(); f > 0 {
		t.Errorf("%d of %d requests failed during the rollout: %s", f, tally.Total, tally)
	}
	AssertAll(t, "after promotion", envoy.Traffic("reviews").Send(200), "v2")
	if got := w.Metric(t, `weir_rollout_outcomes_total{outcome="Succeeded"}`); got != 1 {
		t.Errorf("weir_rollout_outcomes_total{outcome=Succeeded} = %v, want 1", got)
	}
	poll(5*time.Second, 100*time.Millisecond, func() bool { return slices.Contains(hooks.got(), "Succeeded") })
	for _, want := range []string{"Started", "Step", "Promoting", "Succeeded"} {
		if !slices.Contains(hooks.got(), want) {
			t.Errorf("event webhook did not receive %q: got %v", want, hooks.got())
		}
	}
	_ = env
}

// TestRolloutRollsBackAFailingCanary: v2 answers 500 to everything; the first checks at
// 20% fail, and at the threshold weir sends everything back to v1.
func TestRolloutRollsBackAFailingCanary(t *testing.T) {
	hooks := newHookRecorder(t)
	env := NewEnv(t)
	bs := env.StartBackends("v1", "v2")
	bs[1].Fail(500, 1)
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("destinationrule.yaml", SeedReviewsDestinationRule)
	env.WriteFile("rollout.yaml", rolloutYAML("2s", hooks.srv.URL))
	w := env.StartWeir()
	envoy := env.StartEnvoy(EnvoyOptions{StatsFlush: time.Second})
	bg := envoy.Traffic("reviews").Background(t, 2*time.Minute)

	start := time.Now()
	s, weights := followRollout(t, w, v1alpha1.PhaseFailed, 60*time.Second)
	took := time.Since(start)
	bg.Stop()
	if s.State.FailedChecks != 2 || !strings.Contains(s.State.Message, "request-success-rate") {
		t.Errorf("after rollback: failed checks %d, message %q", s.State.FailedChecks, s.State.Message)
	}
	if slices.Contains(weights, 50) {
		t.Errorf("the canary went past 20%% although every check failed: weights %v", weights)
	}
	// Two failed checks, 2 s apart, after the first step is ACKed: well under 20 s.
	if took > 20*time.Second {
		t.Errorf("rollback took %s", took)
	}
	poll(10*time.Second, 100*time.Millisecond, func() bool { return w.rolloutStatus(t).State.Applied })
	AssertAll(t, "after rollback", envoy.Traffic("reviews").Send(200), "v1")
	if got := w.Metric(t, `weir_rollout_outcomes_total{outcome="Failed"}`); got != 1 {
		t.Errorf("weir_rollout_outcomes_total{outcome=Failed} = %v, want 1", got)
	}
	poll(5*time.Second, 100*time.Millisecond, func() bool { return slices.Contains(hooks.got(), "RolledBack") })
	if !slices.Contains(hooks.got(), "RolledBack") {
		t.Errorf("event webhook did not hear of the rollback: %v", hooks.got())
	}
}

// TestRolloutSurvivesARestart: a rollout paused by hand at its second step (50 %) is
// restarted with weir. The restarted weir serves exactly the routes the proxy already
// runs — neither back to the first step nor on to promotion — so it does not even resend
// them; resume then carries the rollout to promotion.
func TestRolloutSurvivesARestart(t *testing.T) {
	env, envoy, w := startRollout(t, "2s", "http://127.0.0.1:1/")
	bg := envoy.Traffic("reviews").Background(t, 2*time.Minute)
	poll(60*time.Second, 50*time.Millisecond, func() bool { return w.rolloutStatus(t).State.Step == 1 })
	w.post(t, "/rollouts/default/reviews/pause")
	bg.Stop()
	poll(10*time.Second, 50*time.Millisecond, func() bool {
		s := w.rolloutStatus(t).State
		return s.Phase == v1alpha1.PhasePaused && s.Applied
	})
	if s := w.rolloutStatus(t).State; s.Step != 1 || s.CanaryWeight != 50 {
		t.Fatalf("paused at step %d, %d%%; want the second step, 50%%", s.Step, s.CanaryWeight)
	}
	before := w.WaitAcked(t, envoy.NodeID).Types["rds"].AckedVersion

	w.Stop(t)
	w = env.StartWeir()
	s := w.rolloutStatus(t).State
	if s.Phase != v1alpha1.PhasePaused || s.Step != 1 || s.CanaryWeight != 50 {
		t.Fatalf("after restart: phase %s step %d weight %d, want Paused, step 1, 50%%", s.Phase, s.Step, s.CanaryWeight)
	}
	w.WaitProxy(t, envoy.NodeID)
	time.Sleep(time.Second) // time for a (wrong) push to happen
	p, _ := w.DebugProxies(t).Proxy(envoy.NodeID)
	if got := p.Types["rds"]; got.AckedVersion != before || got.SentVersion != "" {
		t.Errorf("after restart the routes changed: acked %s (before %s), sent %q", got.AckedVersion, before, got.SentVersion)
	}
	AssertSplit(t, "after restart", envoy.Traffic("reviews").Send(splitRequests),
		map[string]float64{"v1": 50, "v2": 50}, splitTolerancePP)

	w.post(t, "/rollouts/default/reviews/resume")
	envoy.Traffic("reviews").Background(t, 2*time.Minute)
	followRollout(t, w, v1alpha1.PhaseSucceeded, 60*time.Second)
}

// post sends an admin command and fails the test unless weir accepts it.
func (w *Weir) post(t TB, path string) {
	t.Helper()
	resp, err := http.Post("http://"+w.AdminAddr+path, "", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %s %s", path, resp.Status, body)
	}
}

func isSubsequence(want, got []int32) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
