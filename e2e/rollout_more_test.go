package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/e2e/backend"
)

// rolloutDoc is a reviews Rollout with the given canary, steps, interval and analysis
// lines (metrics, webhooks, noData ...), indented under analysis.
func rolloutDoc(canary, steps, interval string, threshold int, analysis string) string {
	return fmt.Sprintf(`apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  stable: v1
  canary: %s
  strategy:
    canary: {stepWeights: [%s]}
  analysis:
    interval: %s
    threshold: %d
%s`, canary, steps, interval, threshold, analysis)
}

// reviewsSubsets defines subsets v1, v2 and v3 of reviews.
const reviewsSubsets = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`

const successRate = `    minRequests: 20
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 95}
`

// startReviewsRollout writes reviews (with the given backends), the seed's
// DestinationRule and the rollout; starts weir and a sidecar that reports stats each second.
func startReviewsRollout(t *testing.T, doc string, versions ...string) (*Env, *Envoy, *Weir, []*backend.Backend) {
	t.Helper()
	env := NewEnv(t)
	bs := env.StartBackends(versions...)
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("destinationrule.yaml", reviewsSubsets)
	env.WriteFile("rollout.yaml", doc)
	w := env.StartWeir()
	return env, env.StartEnvoy(EnvoyOptions{StatsFlush: time.Second}), w, bs
}

// TestRolloutRollsBackOnTenPercentErrors: v2 fails one request in ten; the success-rate
// check (min 95 %) fails, and at the threshold weir rolls back. The note's figure is the
// time from the rollback decision to every proxy running 0 %; after it the client sees no
// canary answer and no error.
func TestRolloutRollsBackOnTenPercentErrors(t *testing.T) {
	env, envoy, w, bs := startReviewsRollout(t, rolloutDoc("v2", "30, 60", "2s", 2, successRate), "v1", "v2")
	bs[1].Fail(500, 10)
	bg := envoy.Traffic("reviews").Background(t, 2*time.Minute)
	s, weights := followRollout(t, w, v1alpha1.PhaseFailed, 60*time.Second)
	if s.State.FailedChecks != 2 || strings.Contains(fmt.Sprint(weights), "60") {
		t.Errorf("rolled back with %d failed checks after weights %v; want 2 failed checks at 30%%", s.State.FailedChecks, weights)
	}
	ok := poll(10*time.Second, 20*time.Millisecond, func() bool { return w.rolloutStatus(t).State.Applied })
	acked := time.Now()
	decided := w.rolloutStatus(t).State.LastTransition
	if !ok {
		t.Fatalf("the rollback was not ACKed by every proxy within 10s")
	}
	t.Logf("MEASURE rollback decision to every proxy on 0%%: %s (controller tick 250 ms, poll 20 ms)", acked.Sub(decided).Round(time.Millisecond))
	bg.Stop()
	after := envoy.Traffic("reviews").Send(1000)
	AssertAll(t, "after rollback", after, "v1")
	if after.Failures() > 0 {
		t.Errorf("errors after the rollback: %s", after)
	}
	_ = env
}

// TestRolloutRollsBackOnLatency: v2 answers in 300 ms; the p99 check (max 100 ms) fails.
func TestRolloutRollsBackOnLatency(t *testing.T) {
	doc := rolloutDoc("v2", "30, 60", "2s", 2, `    minRequests: 5
    metrics:
    - name: request-duration
      percentile: 99
      thresholdRange: {max: 100}
`)
	_, envoy, w, bs := startReviewsRollout(t, doc, "v1", "v2")
	bs[1].SetDelay(300 * time.Millisecond)
	for range 4 { // a few slow clients: enough requests to the canary despite the delay
		envoy.Traffic("reviews").Background(t, 2*time.Minute)
	}
	s, _ := followRollout(t, w, v1alpha1.PhaseFailed, 60*time.Second)
	if !strings.Contains(s.State.Message, "request-duration") || !strings.Contains(s.State.Message, "above 100") {
		t.Errorf("rollback message does not name the latency check: %q", s.State.Message)
	}
	var p99 float64
	for _, m := range s.State.Metrics {
		if m.Name == "request-duration" {
			p99 = m.Value
		}
	}
	if p99 < 250 || p99 > 600 {
		t.Errorf("measured p99 %.0f ms, want about 300 (250..600)", p99)
	}
}

// TestRolloutWithoutTrafficSaysSo: nobody sends requests; the rollout holds at its first
// step and says it waits for traffic — no failed check, no silent stall.
func TestRolloutWithoutTrafficSaysSo(t *testing.T) {
	_, _, w, _ := startReviewsRollout(t, rolloutDoc("v2", "30, 60", "1s", 2, successRate), "v1", "v2")
	time.Sleep(4 * time.Second) // several intervals
	s := w.rolloutStatus(t).State
	if s.Phase != v1alpha1.PhaseProgressing || s.Step != 0 || s.FailedChecks != 0 || s.Iterations == 0 {
		t.Fatalf("without traffic: phase %s step %d, %d failed of %d checks", s.Phase, s.Step, s.FailedChecks, s.Iterations)
	}
	if !strings.Contains(s.Message, "check held") || !strings.Contains(s.Message, "fewer than minRequests 20") {
		t.Errorf("the status does not say it waits for traffic: %q", s.Message)
	}
}

// hookServer answers each webhook type with a status the test sets (200 by default) and
// counts the calls.
type hookServer struct {
	mu     sync.Mutex
	status map[string]int
	calls  map[string]int
	srv    *httptest.Server
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{status: map[string]int{}, calls: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		typ := strings.TrimPrefix(r.URL.Path, "/")
		h.mu.Lock()
		h.calls[typ]++
		code := h.status[typ]
		h.mu.Unlock()
		if code == 0 {
			code = http.StatusOK
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) set(typ string, code int) {
	h.mu.Lock()
	h.status[typ] = code
	h.mu.Unlock()
}

func (h *hookServer) count(typ string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[typ]
}

func (h *hookServer) hook(typ v1alpha1.WebhookType) string {
	return fmt.Sprintf("    - {name: %s, type: %s, url: %q}\n", typ, typ, h.srv.URL+"/"+string(typ))
}

// TestRolloutWebhooks: confirm-promotion holds the rollout until it answers 2xx; a failing
// pre-rollout hook counts as a failed check (and never lets traffic move); a rollback hook
// answering 2xx rolls back.
func TestRolloutWebhooks(t *testing.T) {
	t.Run("confirm-promotion", func(t *testing.T) {
		hooks := newHookServer(t)
		hooks.set("confirm-promotion", http.StatusForbidden)
		doc := rolloutDoc("v2", "50", "1s", 2, successRate+"    webhooks:\n"+hooks.hook(v1alpha1.HookConfirmPromotion))
		_, envoy, w, _ := startReviewsRollout(t, doc, "v1", "v2")
		envoy.Traffic("reviews").Background(t, 2*time.Minute)
		followRollout(t, w, v1alpha1.PhaseWaitingPromotion, 60*time.Second)
		time.Sleep(3 * time.Second) // three intervals: still held
		if s := w.rolloutStatus(t).State; s.Phase != v1alpha1.PhaseWaitingPromotion || s.CanaryWeight != 50 || hooks.count("confirm-promotion") < 2 {
			t.Fatalf("while confirm-promotion says no: phase %s weight %d after %d calls", s.Phase, s.CanaryWeight, hooks.count("confirm-promotion"))
		}
		hooks.set("confirm-promotion", http.StatusOK)
		followRollout(t, w, v1alpha1.PhaseSucceeded, 30*time.Second)
	})
	t.Run("pre-rollout", func(t *testing.T) {
		hooks := newHookServer(t)
		hooks.set("pre-rollout", http.StatusInternalServerError)
		doc := rolloutDoc("v2", "50", "1s", 2, successRate+"    webhooks:\n"+hooks.hook(v1alpha1.HookPreRollout))
		_, envoy, w, _ := startReviewsRollout(t, doc, "v1", "v2")
		bg := envoy.Traffic("reviews").Background(t, 2*time.Minute)
		s, weights := followRollout(t, w, v1alpha1.PhaseFailed, 30*time.Second)
		if s.State.FailedChecks != 2 || !strings.Contains(s.State.Message, "pre-rollout") || fmt.Sprint(weights) != "[0]" {
			t.Errorf("failed pre-rollout: %d failed checks, weights %v, message %q", s.State.FailedChecks, weights, s.State.Message)
		}
		if ta := bg.Stop(); ta.Versions["v2"] != 0 {
			t.Errorf("traffic reached the canary although pre-rollout failed: %s", ta)
		}
	})
	t.Run("rollback", func(t *testing.T) {
		hooks := newHookServer(t)
		doc := rolloutDoc("v2", "30, 60", "1s", 5, successRate+"    webhooks:\n"+hooks.hook(v1alpha1.HookRollback))
		_, envoy, w, _ := startReviewsRollout(t, doc, "v1", "v2")
		envoy.Traffic("reviews").Background(t, 2*time.Minute)
		s, _ := followRollout(t, w, v1alpha1.PhaseFailed, 30*time.Second)
		if !strings.Contains(s.State.Message, "rollback webhook") || s.State.FailedChecks != 0 {
			t.Errorf("rollback hook: %d failed checks, message %q", s.State.FailedChecks, s.State.Message)
		}
	})
}

// TestRolloutKilledAtStepThree: weir is killed (SIGKILL) at step 3 of 5. Envoy keeps the
// 30 % split while weir is gone; the restarted weir continues from step 3, not from the
// start, and promotes.
func TestRolloutKilledAtStepThree(t *testing.T) {
	env, envoy, w, _ := startReviewsRollout(t, rolloutDoc("v2", "10, 20, 30, 40, 50", "3s", 2, successRate), "v1", "v2")
	bg := envoy.Traffic("reviews").Background(t, 3*time.Minute)
	if !poll(60*time.Second, 20*time.Millisecond, func() bool {
		s := w.rolloutStatus(t).State
		return s.Step == 2 && s.Applied
	}) {
		t.Fatalf("step 3 not reached: %+v", w.rolloutStatus(t).State)
	}
	w.Kill(t)
	bg.Stop()
	AssertSplit(t, "weir dead", envoy.Traffic("reviews").Send(splitRequests), map[string]float64{"v1": 70, "v2": 30}, splitTolerancePP)

	w = env.StartWeir()
	if s := w.rolloutStatus(t).State; s.Step != 2 || s.CanaryWeight != 30 {
		t.Fatalf("after restart: step %d, %d%%; want step 3 (index 2), 30%%", s.Step+1, s.CanaryWeight)
	}
	envoy.Traffic("reviews").Background(t, 2*time.Minute)
	_, weights := followRollout(t, w, v1alpha1.PhaseSucceeded, 60*time.Second)
	if weights[0] != 30 || !isSubsequence([]int32{30, 40, 50, 100}, weights) {
		t.Errorf("weights after the restart %v, want 30, 40, 50, 100", weights)
	}
}

// TestRolloutCLI: each command of `weir rollout` takes effect within a second and shows in
// `weir rollout get`.
func TestRolloutCLI(t *testing.T) {
	env, envoy, w, _ := startReviewsRollout(t, rolloutDoc("v2", "20, 40, 60", "2s", 2, successRate), "v1", "v2", "v3")
	envoy.Traffic("reviews").Background(t, 3*time.Minute)
	poll(30*time.Second, 50*time.Millisecond, func() bool { return w.rolloutStatus(t).State.Applied })
	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(WeirBinary(t), append([]string{"rollout", "-admin-address", w.AdminAddr}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("weir rollout %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// run runs one command and waits until its effect shows in the status (and, for a
	// change of weights, is ACKed by the proxy): at most a second from the command.
	run := func(cond func(p v1alpha1.Phase, w int32, applied bool) bool, args ...string) {
		t.Helper()
		start := time.Now()
		cli(args...)
		ok := poll(time.Second-time.Since(start), 20*time.Millisecond, func() bool {
			s := w.rolloutStatus(t).State
			return cond(s.Phase, s.CanaryWeight, s.Applied)
		})
		if !ok {
			s := w.rolloutStatus(t).State
			t.Fatalf("weir rollout %v: not in effect within 1s: phase %s weight %d applied %v", args, s.Phase, s.CanaryWeight, s.Applied)
		}
		t.Logf("MEASURE weir rollout %s: in effect %s after the command started", args[0], time.Since(start).Round(time.Millisecond))
	}
	run(func(p v1alpha1.Phase, _ int32, _ bool) bool { return p == v1alpha1.PhasePaused }, "pause", "reviews")
	run(func(_ v1alpha1.Phase, w int32, applied bool) bool { return w == 35 && applied }, "set-weight", "default/reviews", "35")
	if out := cli("get", "reviews"); !strings.Contains(out, "Paused") || !strings.Contains(out, "v2 35%") {
		t.Errorf("get after set-weight:\n%s", out)
	}
	AssertSplit(t, "set-weight 35", envoy.Traffic("reviews").Send(splitRequests), map[string]float64{"v1": 65, "v2": 35}, splitTolerancePP)
	run(func(p v1alpha1.Phase, w int32, applied bool) bool {
		return p == v1alpha1.PhaseProgressing && w != 35 && applied
	}, "resume", "reviews")
	run(func(p v1alpha1.Phase, w int32, applied bool) bool {
		return p == v1alpha1.PhaseFailed && w == 0 && applied
	}, "abort", "reviews")
	if out := cli("list"); !strings.Contains(out, "Failed") {
		t.Errorf("list after abort:\n%s", out)
	}
	// A new canary starts a new rollout; promote ends it at once.
	env.WriteFile("rollout.yaml", rolloutDoc("v3", "20, 40, 60", "1h", 2, successRate))
	poll(10*time.Second, 50*time.Millisecond, func() bool {
		s := w.rolloutStatus(t).State
		return s.Phase == v1alpha1.PhaseProgressing && s.Canary == "v3" && s.Applied
	})
	run(func(p v1alpha1.Phase, _ int32, applied bool) bool { return p == v1alpha1.PhaseSucceeded && applied }, "promote", "reviews")
	if out := cli("get", "reviews"); !strings.Contains(out, "Succeeded") {
		t.Errorf("get after promote:\n%s", out)
	}
	AssertAll(t, "after promote", envoy.Traffic("reviews").Send(200), "v3")
}
