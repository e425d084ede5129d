package prometheus

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/rollout"
)

// answer is what the fake Prometheus says to one query.
type answer struct {
	status int
	body   string
}

func vector(value string) answer {
	return answer{body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"` + value + `"]}]}}`}
}

var emptyVector = answer{body: `{"status":"success","data":{"resultType":"vector","result":[]}}`}

// fakePrometheus answers /api/v1/query (under prefix) from answers, keyed by the query,
// and records each query it was asked with its time parameter.
type fakePrometheus struct {
	mu    sync.Mutex
	asked []string // "<time> <query>"
}

func (f *fakePrometheus) start(t *testing.T, prefix string, answers map[string]answer) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != prefix+"/api/v1/query" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		query := r.URL.Query().Get("query")
		f.mu.Lock()
		f.asked = append(f.asked, r.URL.Query().Get("time")+" "+query)
		f.mu.Unlock()
		a, ok := answers[query]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"the fake has no answer"}`))
			return
		}
		if a.status != 0 {
			w.WriteHeader(a.status)
		}
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + prefix
}

func TestMeasure(t *testing.T) {
	const (
		responses = `envoy_cluster_shop_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|8080|v2|reviews"}`
		failures  = `envoy_cluster_shop_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|8080|v2|reviews", envoy_response_code_class="5"}`
		requests  = `sum(increase(` + responses + `[1m]))`
		success   = `100 * (1 - (sum(increase(` + failures + `[1m])) or vector(0)) / ` + requests + `)`
		custom    = `sum(rate(http_requests_total{namespace="shop",app="reviews",version="v2"}[1m]))`
	)
	customMetric := v1alpha1.Metric{
		Name:  "rps",
		Query: `sum(rate(http_requests_total{namespace="{{ namespace }}",app="{{ service }}",version="{{ canary }}"}[{{ interval }}]))`,
	}
	successMetric := v1alpha1.Metric{Name: v1alpha1.MetricSuccessRate}
	tests := []struct {
		name      string
		metric    v1alpha1.Metric
		prefix    string // path under which the fake serves
		noAddress bool
		answers   map[string]answer
		want      rollout.Result
		wantAsked []string
		wantErr   string
	}{
		{
			name:      "custom query, one series",
			metric:    customMetric,
			answers:   map[string]answer{custom: vector("12.5")},
			want:      rollout.Result{Value: 12.5, Requests: -1},
			wantAsked: []string{"1700000000.250 " + custom},
		},
		{
			name:    "custom query, scalar",
			metric:  customMetric,
			answers: map[string]answer{custom: {body: `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}`}},
			want:    rollout.Result{Value: 3, Requests: -1},
		},
		{
			name:    "custom query, no series",
			metric:  customMetric,
			answers: map[string]answer{custom: emptyVector},
			want:    rollout.Result{NoData: true, Requests: -1},
		},
		{
			name:    "custom query, NaN",
			metric:  customMetric,
			answers: map[string]answer{custom: vector("NaN")},
			want:    rollout.Result{NoData: true, Requests: -1},
		},
		{
			name:   "custom query, several series",
			metric: customMetric,
			answers: map[string]answer{custom: {body: `{"status":"success","data":{"resultType":"vector","result":[` +
				`{"metric":{"pod":"a"},"value":[1,"1"]},{"metric":{"pod":"b"},"value":[1,"2"]}]}}`}},
			wantErr: "metric rps: query " + strconv.Quote(custom) + " on 127.0.0.1:",
		},
		{
			name:    "prometheus error carries its message",
			metric:  customMetric,
			answers: map[string]answer{custom: {status: http.StatusUnprocessableEntity, body: `{"status":"error","errorType":"execution","error":"query timed out in expression evaluation"}`}},
			wantErr: "prometheus says execution: query timed out in expression evaluation",
		},
		{
			name:    "behind a path prefix",
			metric:  customMetric,
			prefix:  "/prometheus",
			answers: map[string]answer{custom: vector("1")},
			want:    rollout.Result{Value: 1, Requests: -1},
		},
		{
			name:    "template error names the metric and asks nothing",
			metric:  v1alpha1.Metric{Name: "rps", Query: `up{{ target }}`},
			wantErr: `metric rps: query template: template: rps:1: function "target" not defined`,
		},
		{
			name:      "no address",
			metric:    customMetric,
			noAddress: true,
			wantErr:   "metric rps: no prometheus.address",
		},
		{
			name:    "neither query nor built-in",
			metric:  v1alpha1.Metric{Name: "latency"},
			wantErr: "metric latency: no query, and not a built-in metric",
		},
		{
			name:   "built-in metric with its request count",
			metric: successMetric,
			answers: map[string]answer{
				success:  vector("75"),
				requests: vector("400"),
			},
			want:      rollout.Result{Value: 75, Requests: 400},
			wantAsked: []string{"1700000000.250 " + success, "1700000000.250 " + requests},
		},
		{
			name:   "built-in metric, no traffic in the window",
			metric: successMetric,
			answers: map[string]answer{
				success:  vector("NaN"),
				requests: vector("0"),
			},
			want: rollout.Result{NoData: true, Requests: 0},
		},
		{
			name:   "built-in metric, no series yet",
			metric: successMetric,
			answers: map[string]answer{
				success:  emptyVector,
				requests: emptyVector,
			},
			want: rollout.Result{NoData: true, Requests: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakePrometheus{}
			metric := tt.metric
			if !tt.noAddress {
				metric.Prometheus = &v1alpha1.PrometheusProvider{Address: fake.start(t, tt.prefix, tt.answers)}
			}
			p := New(WithClock(func() time.Time { return time.Unix(1700000000, 250e6) }))
			got, err := p.Measure(context.Background(), reviewsQuery(metric))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Measure() error = %v, want one containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Measure(): %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Measure() (-want +got):\n%s", diff)
			}
			if tt.wantAsked != nil || strings.Contains(tt.name, "asks nothing") {
				if diff := cmp.Diff(tt.wantAsked, fake.asked); diff != "" {
					t.Errorf("queries asked (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestMeasureSentinelErrors(t *testing.T) {
	fake := &fakePrometheus{}
	addr := fake.start(t, "", map[string]answer{
		"up": {body: `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}`},
	})
	tests := []struct {
		name   string
		metric v1alpha1.Metric
		want   error
	}{
		{name: "several series", metric: v1alpha1.Metric{Name: "m", Query: "up", Prometheus: &v1alpha1.PrometheusProvider{Address: addr}}, want: ErrManySeries},
		{name: "no address", metric: v1alpha1.Metric{Name: "m", Query: "up"}, want: ErrNoAddress},
		{name: "no query", metric: v1alpha1.Metric{Name: "m", Prometheus: &v1alpha1.PrometheusProvider{Address: addr}}, want: ErrNoQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New().Measure(context.Background(), reviewsQuery(tt.metric))
			if !errors.Is(err, tt.want) {
				t.Errorf("Measure() error = %v, want %v", err, tt.want)
			}
		})
	}
}

// Regression: a Prometheus that does not answer must not hold a rollout's check forever.
func TestMeasureTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets the handler return before Close waits

	m := v1alpha1.Metric{Name: "rps", Query: "up", Prometheus: &v1alpha1.PrometheusProvider{Address: srv.URL}}
	start := time.Now()
	_, err := New(WithTimeout(100*time.Millisecond)).Measure(context.Background(), reviewsQuery(m))
	if err == nil || !strings.Contains(err.Error(), "Client.Timeout exceeded") {
		t.Fatalf("Measure() error = %v, want a client timeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Measure() took %v with a 100ms timeout", took)
	}
}
