// Package prometheus measures a rollout's metrics with PromQL on a Prometheus server: a
// metric's own templated query, or a built-in metric over Envoy's own series.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/rollout"
)

// DefaultTimeout bounds one query, connection included, unless WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

var (
	// ErrNoAddress: the metric names no Prometheus server.
	ErrNoAddress = errors.New("no prometheus.address")
	// ErrNoQuery: the metric has no query and is not a built-in metric.
	ErrNoQuery = errors.New("no query, and not a built-in metric")
	// ErrManySeries: a query returned more than one series, so it has no single value.
	ErrManySeries = errors.New("query must return one series (aggregate it, e.g. with sum)")
)

// Provider evaluates metrics on the Prometheus server each metric names. It is safe for
// concurrent use.
type Provider struct {
	client *http.Client
	now    func() time.Time
}

var _ rollout.Provider = (*Provider)(nil)

// Option configures a Provider.
type Option func(*Provider)

// WithTimeout bounds each query (DefaultTimeout otherwise).
func WithTimeout(d time.Duration) Option {
	return func(p *Provider) { p.client.Timeout = d }
}

// WithClock sets the clock that dates each query's evaluation time (time.Now otherwise).
func WithClock(now func() time.Time) Option {
	return func(p *Provider) { p.now = now }
}

// New returns a Provider with its own HTTP client.
func New(opts ...Option) *Provider {
	p := &Provider{client: &http.Client{Timeout: DefaultTimeout}, now: time.Now}
	for _, opt := range opts {
		opt(p)
	}
	return p
}

// Measure evaluates q.Metric: its query, rendered with q's values, when it has one;
// otherwise the built-in metric of that name over the Envoy series of q.Clusters, which
// also tells how many requests the canary served.
func (p *Provider) Measure(ctx context.Context, q rollout.Query) (rollout.Result, error) {
	r, err := p.measure(ctx, q)
	if err != nil {
		return rollout.Result{}, fmt.Errorf("metric %s: %w", q.Metric.Name, err)
	}
	return r, nil
}

func (p *Provider) measure(ctx context.Context, q rollout.Query) (rollout.Result, error) {
	m := q.Metric
	if m.Prometheus == nil || m.Prometheus.Address == "" {
		return rollout.Result{}, ErrNoAddress
	}
	endpoint, err := queryURL(m.Prometheus.Address)
	if err != nil {
		return rollout.Result{}, err
	}
	if m.Query != "" {
		return p.measureQuery(ctx, endpoint, q)
	}
	if !isBuiltin(m.Name) {
		return rollout.Result{}, ErrNoQuery
	}
	return p.measureBuiltin(ctx, endpoint, q)
}

// measureQuery evaluates the metric's own query, which says nothing of request counts.
func (p *Provider) measureQuery(ctx context.Context, endpoint *url.URL, q rollout.Query) (rollout.Result, error) {
	expr, err := render(q)
	if err != nil {
		return rollout.Result{}, err
	}
	v, err := p.query(ctx, endpoint, expr, p.now())
	if err != nil {
		return rollout.Result{}, err
	}
	return rollout.Result{Value: v.value, NoData: v.noData, Requests: -1}, nil
}

// measureBuiltin evaluates a built-in metric and the canary's request count, both at the
// same instant so that they describe the same window.
func (p *Provider) measureBuiltin(ctx context.Context, endpoint *url.URL, q rollout.Query) (rollout.Result, error) {
	forms, err := builtin(q)
	if err != nil {
		return rollout.Result{}, err
	}
	at := p.now()
	v, err := p.query(ctx, endpoint, forms.value, at)
	if err != nil {
		return rollout.Result{}, err
	}
	n, err := p.query(ctx, endpoint, forms.requests, at)
	if err != nil {
		return rollout.Result{}, err
	}
	// No series at all means Envoy never counted a response: zero requests.
	requests := n.value
	if n.noData {
		requests = 0
	}
	return rollout.Result{Value: v.value, NoData: v.noData, Requests: requests}, nil
}

func isBuiltin(name string) bool {
	switch name {
	case v1alpha1.MetricSuccessRate, v1alpha1.MetricErrorRate, v1alpha1.MetricDuration:
		return true
	}
	return false
}
