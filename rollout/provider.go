package rollout

import (
	"context"
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

// Query asks for one metric of one rollout's canary over a window ending now.
type Query struct {
	// Namespace and Name are the Rollout's.
	Namespace, Name string
	// Host is the service's full hostname; Service its short name.
	Host, Service string
	// Stable and Canary are the subsets; the canary is the one judged.
	Stable, Canary string
	// Clusters are the Envoy clusters that carry the canary's traffic, one per service
	// port: "outbound|<port>|<canary>|<host>".
	Clusters []string
	Metric   v1alpha1.Metric
	Window   time.Duration
}

// Result is a metric's value over the window.
type Result struct {
	Value float64
	// Requests is how many requests the canary served in the window, for the
	// minimum-request guard; -1 when the provider cannot tell.
	Requests float64
	// NoData is set when the window holds no sample at all (the value means nothing).
	NoData bool
}

// Provider measures metrics. weir has two: its own, fed by the proxies' statistics over
// Envoy's metrics service, and Prometheus.
type Provider interface {
	Measure(ctx context.Context, q Query) (Result, error)
}
