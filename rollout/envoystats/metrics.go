package envoystats

import "github.com/prometheus/client_golang/prometheus"

// metrics are the sink's Prometheus series, registered on the registry given to NewSink.
type metrics struct {
	streams  prometheus.Gauge
	messages prometheus.Counter
	series   prometheus.Gauge
	panics   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_envoystats_streams", Help: "Metrics service streams from proxies open now."}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_envoystats_messages_total", Help: "Metrics messages (stats flushes) received from proxies."}),
		series: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_envoystats_series", Help: "Outbound clusters held, counted once per proxy stream that reports them."}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_envoystats_recovered_panics_total", Help: "Panics recovered while reading a metrics stream."}),
	}
	if reg != nil {
		reg.MustRegister(m.streams, m.messages, m.series, m.panics)
	}
	return m
}
