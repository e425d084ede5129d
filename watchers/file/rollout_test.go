package file

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-mesh/weir/model"
)

const rolloutYAML = `apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  stable: v1
  canary: v2
  strategy:
    canary: {stepWeight: 10, maxWeight: 50}
  analysis:
    interval: 1m
    threshold: 5
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
`

func TestRolloutIsRead(t *testing.T) {
	snap := loadTree(t, map[string]string{"r.yaml": rolloutYAML})
	if errs := errorsOnly(snap.Diagnostics); len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if len(snap.Rollouts) != 1 {
		t.Fatalf("got %d rollouts, want 1", len(snap.Rollouts))
	}
	r := snap.Rollouts[0]
	if r.Spec.Host != "reviews" || r.Spec.Canary != "v2" || r.Spec.Strategy.Canary.StepWeight != 10 ||
		r.Spec.Analysis.Interval.Minutes() != 1 || *r.Spec.Analysis.Metrics[0].ThresholdRange.Min != 99 {
		t.Errorf("spec not decoded as written: %+v", r.Spec)
	}
}

func TestBadRolloutNamesTheField(t *testing.T) {
	tests := []struct {
		name, from, to string
		field          string
	}{
		{"misspelled key", "stepWeight: 10", "stepWieght: 10", "spec.strategy.canary.stepWieght"},
		{"weight over 100", "stepWeight: 10, maxWeight: 50", "stepWeight: 10, maxWeight: 150", "spec.strategy.canary.maxWeight"},
		{"bad interval", "interval: 1m", "interval: soon", "spec.analysis.interval"},
		{"no threshold range", "thresholdRange: {min: 99}", "thresholdRange: {}", "spec.analysis.metrics[0].thresholdRange"},
		{"unknown metric without query", "request-success-rate", "p42-latency", "spec.analysis.metrics[0].query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(rolloutYAML, tt.from, tt.to, 1)
			snap := loadTree(t, map[string]string{"r.yaml": doc})
			if len(snap.Rollouts) != 0 {
				t.Errorf("a rejected Rollout was used")
			}
			errs := errorsOnly(snap.Diagnostics)
			want := []where{{Severity: model.SeverityError, Ref: "Rollout default/reviews (r.yaml)", Field: tt.field}}
			if diff := cmp.Diff(want, wheres(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\n%v", diff, errs)
			}
		})
	}
}
