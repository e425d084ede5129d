package xds

import "github.com/prometheus/client_golang/prometheus"

// metrics are the xDS server's Prometheus series, registered on the registry handed to New.
type metrics struct {
	connected   prometheus.Gauge
	pushes      *prometheus.CounterVec
	acks        *prometheus.CounterVec
	nacks       *prometheus.CounterVec
	publishes   prometheus.Counter
	marshaled   prometheus.Counter
	sentBytes   *prometheus.CounterVec
	convergence prometheus.Histogram
	panics      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_xds_connected_proxies", Help: "ADS streams currently open."}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_xds_pushes_total", Help: "Discovery responses sent, by type."}, []string{"type"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_xds_acks_total", Help: "ACKs received, by type."}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_xds_nacks_total", Help: "NACKs received, by type."}, []string{"type"}),
		publishes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_xds_snapshots_published_total", Help: "Snapshots set in the cache (all classes, all stages)."}),
		marshaled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_xds_marshaled_bytes_total",
			Help: "Bytes of resources marshaled; each resource is marshaled once per translation, however many proxies receive it."}),
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_xds_sent_bytes_total", Help: "Bytes of discovery responses sent, by type."}, []string{"type"}),
		convergence: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weir_xds_convergence_seconds",
			Help:    "Time from a class's new config to every proxy of the class having ACKed it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_xds_recovered_panics_total", Help: "Panics recovered in xDS goroutines."}),
	}
	for _, t := range orderedTypes { // export zeros, so "nothing sent" is visible
		for _, v := range []*prometheus.CounterVec{m.pushes, m.acks, m.nacks, m.sentBytes} {
			v.WithLabelValues(shortType(t))
		}
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.pushes, m.acks, m.nacks, m.publishes, m.marshaled, m.sentBytes, m.convergence, m.panics)
	}
	return m
}
