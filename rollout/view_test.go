package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

func TestRenderShowsWhereTheRolloutIs(t *testing.T) {
	s := Status{Namespace: "default", Name: "reviews", Host: fqdn, Strategy: "canary", Steps: 3, Weights: []int32{10, 20, 30},
		Interval: "1m0s", Threshold: 5, State: State{Phase: v1alpha1.PhaseProgressing, Stable: "v1", Canary: "v2", Step: 1,
			CanaryWeight: 20, FailedChecks: 1, Iterations: 3, Applied: true, StepStart: t0, Message: "check passed at 10%",
			Metrics: []MetricCheck{{Name: "request-success-rate", Value: 99.5, Min: ptr(99.0), Requests: 1204, Verdict: Pass}}}}
	var b strings.Builder
	Render(&b, s, t0.Add(42*time.Second))
	out := b.String()
	for _, want := range []string{"Progressing", "check passed at 10%", "2/3", "10 → [20] → 30 → 100", "v1 80%", "v2 20%",
		"1 failed of 5 allowed, 3 run", "42s in this step", "request-success-rate", "99.5", "≥ 99", "pass", "1204 requests"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	RenderList(&b, []Status{s})
	if !strings.Contains(b.String(), "reviews") || !strings.Contains(b.String(), "2/3") || !strings.Contains(b.String(), "20%") {
		t.Errorf("list:\n%s", b.String())
	}
}
