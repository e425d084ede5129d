package pipeline

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	translate   prometheus.Histogram
	diagnostics *prometheus.GaugeVec
	panics      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		translate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weir_translate_duration_seconds", Help: "Time to translate the snapshot for one proxy class.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		diagnostics: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_config_diagnostics", Help: "Current diagnostics about the inputs, by severity."}, []string{"severity"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_translate_recovered_panics_total", Help: "Panics recovered during translation."}),
	}
	if reg != nil {
		reg.MustRegister(m.translate, m.diagnostics, m.panics)
	}
	return m
}
