package rollout

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

// phases are the values of weir_rollout_phase's phase label.
var phases = []v1alpha1.Phase{
	v1alpha1.PhaseInitialized, v1alpha1.PhaseWaiting, v1alpha1.PhaseProgressing, v1alpha1.PhasePaused,
	v1alpha1.PhaseWaitingPromotion, v1alpha1.PhasePromoting, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed,
}

type metrics struct {
	phase       *prometheus.GaugeVec
	weight      *prometheus.GaugeVec
	failed      *prometheus.GaugeVec
	metricValue *prometheus.GaugeVec
	duration    prometheus.Histogram
	outcomes    *prometheus.CounterVec
	panics      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_rollout_phase",
			Help: "1 for the phase each rollout is in, 0 for the others."}, []string{"rollout", "phase"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_rollout_canary_weight",
			Help: "Percent of the service's traffic each rollout sends to its canary."}, []string{"rollout"}),
		failed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_rollout_failed_checks",
			Help: "Failed checks of each rollout under way."}, []string{"rollout"}),
		metricValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_rollout_metric_value",
			Help: "Last measured value of each rollout's metrics."}, []string{"rollout", "metric"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weir_rollout_duration_seconds",
			Help: "Time from a rollout's start to its promotion or rollback.", Buckets: prometheus.ExponentialBuckets(10, 2, 12)}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_rollout_outcomes_total",
			Help: "Rollouts ended, by outcome (Succeeded or Failed)."}, []string{"outcome"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_rollout_panics_total",
			Help: "Reconciles that panicked (weights were left as they were)."}),
	}
	if reg != nil {
		reg.MustRegister(m.phase, m.weight, m.failed, m.metricValue, m.duration, m.outcomes, m.panics)
	}
	return m
}

func (m *metrics) set(rollout string, s State) {
	for _, p := range phases {
		v := 0.0
		if s.Phase == p {
			v = 1
		}
		m.phase.WithLabelValues(rollout, string(p)).Set(v)
	}
	m.weight.WithLabelValues(rollout).Set(float64(s.CanaryWeight))
	m.failed.WithLabelValues(rollout).Set(float64(s.FailedChecks))
}
