package refpeer

import (
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the counters a benchmark driver reads from /metrics, on a private registry
// so that several peers can live in one process.
type metrics struct {
	reg           *prometheus.Registry
	streams       prometheus.Gauge
	nodes         prometheus.Gauge
	version       prometheus.Gauge
	updates       prometheus.Counter
	translations  prometheus.Counter
	snapshotsSet  prometheus.Counter
	inconsistent  prometheus.Counter
	responses     *prometheus.CounterVec
	updateSeconds prometheus.Histogram
}

// responseTypes are the response type labels, all present from the start.
var responseTypes = []string{"cds", "eds", "lds", "rds", "other"}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "refpeer_connected_streams", Help: "ADS streams that have sent a request and are still open.",
		}),
		nodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "refpeer_connected_nodes", Help: "Distinct node ids with at least one open stream.",
		}),
		version: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "refpeer_snapshot_version", Help: "Global snapshot version: the number of updates so far.",
		}),
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refpeer_updates_total", Help: "Input models taken.",
		}),
		translations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refpeer_translations_total", Help: "Proxy class translations.",
		}),
		snapshotsSet: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refpeer_snapshots_set_total", Help: "Per-node snapshots set in the cache.",
		}),
		inconsistent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refpeer_snapshots_inconsistent_total", Help: "Per-node snapshots refused because Consistent() failed.",
		}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refpeer_responses_total", Help: "xDS responses sent, SotW and delta, by type.",
		}, []string{"type"}),
		updateSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "refpeer_update_seconds", Help: "Time to translate and set every node's snapshot for one update.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	for _, t := range responseTypes {
		m.responses.WithLabelValues(t)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.streams, m.nodes, m.version, m.updates, m.translations, m.snapshotsSet, m.inconsistent,
		m.responses, m.updateSeconds,
	)
	return m
}

// response counts one response of typeURL.
func (m *metrics) response(typeURL string) {
	m.responses.WithLabelValues(shortType(typeURL)).Inc()
}

// shortType names a type URL the way the metrics label it.
func shortType(typeURL string) string {
	switch typeURL {
	case resourcev3.ClusterType:
		return "cds"
	case resourcev3.EndpointType:
		return "eds"
	case resourcev3.ListenerType:
		return "lds"
	case resourcev3.RouteType:
		return "rds"
	case resourcev3.ScopedRouteType:
		return "srds"
	}
	return "other"
}
