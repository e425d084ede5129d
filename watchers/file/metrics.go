package file

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of a reread of the directory, as the reloads metric labels them.
const (
	reloadPublished = "published"
	reloadUnchanged = "unchanged"
	reloadFailed    = "failed"
)

type metrics struct {
	reloads *prometheus.CounterVec
	panics  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_file_reloads_total", Help: "Rereads of the config directory, by outcome (published, unchanged, failed)."},
			[]string{"result"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_file_recovered_panics_total", Help: "Panics recovered while reading the config directory."}),
	}
	if reg != nil {
		reg.MustRegister(m.reloads, m.panics)
	}
	return m
}
