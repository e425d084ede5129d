package prometheus

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

func TestBuiltin(t *testing.T) {
	const (
		responses = `envoy_cluster_shop_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|8080|v2|reviews"}`
		failures  = `envoy_cluster_shop_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|8080|v2|reviews", envoy_response_code_class="5"}`
		buckets   = `envoy_cluster_shop_svc_cluster_local_upstream_rq_time_bucket{envoy_cluster_name="outbound|8080|v2|reviews"}`
		requests  = `sum(increase(` + responses + `[1m]))`
	)
	tests := []struct {
		name     string
		metric   v1alpha1.Metric
		clusters []string
		want     queries
		wantErr  string
	}{
		{
			name:   "success rate",
			metric: v1alpha1.Metric{Name: v1alpha1.MetricSuccessRate},
			want: queries{
				value:    `100 * (1 - (sum(increase(` + failures + `[1m])) or vector(0)) / ` + requests + `)`,
				requests: requests,
			},
		},
		{
			name:   "error rate",
			metric: v1alpha1.Metric{Name: v1alpha1.MetricErrorRate},
			want: queries{
				value:    `100 * (sum(increase(` + failures + `[1m])) or vector(0)) / ` + requests,
				requests: requests,
			},
		},
		{
			name:   "duration defaults to p99",
			metric: v1alpha1.Metric{Name: v1alpha1.MetricDuration},
			want: queries{
				value:    `histogram_quantile(0.99, sum by (le) (rate(` + buckets + `[1m])))`,
				requests: requests,
			},
		},
		{
			name:   "duration at p99.9",
			metric: v1alpha1.Metric{Name: v1alpha1.MetricDuration, Percentile: ptr(99.9)},
			want: queries{
				value:    `histogram_quantile(0.999, sum by (le) (rate(` + buckets + `[1m])))`,
				requests: requests,
			},
		},
		{
			name:   "one cluster per port, sorted and deduplicated",
			metric: v1alpha1.Metric{Name: v1alpha1.MetricErrorRate},
			clusters: []string{
				"outbound|9090|v2|reviews.shop.svc.cluster.local",
				"outbound|8080|v2|reviews.shop.svc.cluster.local",
				"outbound|9090|v2|reviews.shop.svc.cluster.local",
			},
			want: queries{
				value: `100 * (sum(increase(` + failures + `[1m]) or increase(envoy_cluster_shop_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|9090|v2|reviews", envoy_response_code_class="5"}[1m])) or vector(0)) / ` +
					`sum(increase(` + responses + `[1m]) or increase(envoy_cluster_shop_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|9090|v2|reviews"}[1m]))`,
				requests: `sum(increase(` + responses + `[1m]) or increase(envoy_cluster_shop_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|9090|v2|reviews"}[1m]))`,
			},
		},
		{
			name:     "no clusters",
			metric:   v1alpha1.Metric{Name: v1alpha1.MetricSuccessRate},
			clusters: []string{},
			wantErr:  "no cluster carries the canary's traffic",
		},
		{
			name:    "percentile out of range",
			metric:  v1alpha1.Metric{Name: v1alpha1.MetricDuration, Percentile: ptr(0.0)},
			wantErr: "percentile 0: want more than 0 and at most 100",
		},
		{
			name:     "a host Envoy's gRPC tag extractor would cut",
			metric:   v1alpha1.Metric{Name: v1alpha1.MetricSuccessRate},
			clusters: []string{"outbound|8080|v2|api.grpc.example.com"},
			wantErr:  `takes "grpc" out of its statistics' names`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := reviewsQuery(tt.metric)
			if tt.clusters != nil {
				q.Clusters = tt.clusters
			}
			got, err := builtin(q)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("builtin() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("builtin(): %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(queries{})); diff != "" {
				t.Errorf("builtin() (-want +got):\n%s", diff)
			}
		})
	}
}

// The names below are what Envoy 1.40's /stats/prometheus printed for clusters of these
// names (the integration test checks the first against a running Envoy).
func TestClusterSelector(t *testing.T) {
	tests := []struct {
		cluster string
		want    string
	}{
		{
			cluster: "outbound|8080|canary|reviews.default.svc.cluster.local",
			want:    `envoy_cluster_default_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|8080|canary|reviews"}`,
		},
		{
			cluster: "outbound|8080|canary|my-svc.team-a.svc.cluster.local",
			want:    `envoy_cluster_team_a_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|8080|canary|my-svc"}`,
		},
		{
			cluster: "outbound|9080|v2|nodots",
			want:    `envoy_cluster_upstream_rq_xx{envoy_cluster_name="outbound|9080|v2|nodots"}`,
		},
		{
			cluster: `odd"name.x`,
			want:    `envoy_cluster_x_upstream_rq_xx{envoy_cluster_name="odd\"name"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.cluster, func(t *testing.T) {
			got, err := clusterSelector(tt.cluster, statResponses)
			if err != nil {
				t.Fatalf("clusterSelector(): %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("clusterSelector() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		percentile *float64
		want       string
		wantErr    bool
	}{
		{percentile: nil, want: "0.99"},
		{percentile: ptr(50.0), want: "0.5"},
		{percentile: ptr(99.9), want: "0.999"},
		{percentile: ptr(99.99), want: "0.9999"},
		{percentile: ptr(100.0), want: "1"},
		{percentile: ptr(-1.0), wantErr: true},
		{percentile: ptr(100.5), wantErr: true},
	}
	for _, tt := range tests {
		name := "default"
		if tt.percentile != nil {
			name = strconv.FormatFloat(*tt.percentile, 'g', -1, 64)
		}
		t.Run(name, func(t *testing.T) {
			got, err := quantile(tt.percentile)
			if (err != nil) != tt.wantErr {
				t.Fatalf("quantile() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("quantile() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuiltinWindow(t *testing.T) {
	q := reviewsQuery(v1alpha1.Metric{Name: v1alpha1.MetricErrorRate})
	q.Window = 90 * time.Second
	got, err := builtin(q)
	if err != nil {
		t.Fatalf("builtin(): %v", err)
	}
	if !strings.Contains(got.value, "[1m30s]") || !strings.Contains(got.requests, "[1m30s]") {
		t.Errorf("builtin() = %+v, want every range to be [1m30s]", got)
	}
}
