package prometheus

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/rollout"
)

func reviewsQuery(metric v1alpha1.Metric) rollout.Query {
	return rollout.Query{
		Namespace: "shop", Name: "reviews-rollout",
		Host: "reviews.shop.svc.cluster.local", Service: "reviews",
		Stable: "v1", Canary: "v2",
		Clusters: []string{"outbound|8080|v2|reviews.shop.svc.cluster.local"},
		Metric:   metric,
		Window:   time.Minute,
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		window  time.Duration
		want    string
		wantErr string // substring; "" means no error
	}{
		{
			name:  "every value",
			query: `{{ name }} {{ namespace }} {{ host }} {{ service }} {{ canary }} {{ stable }} {{ interval }}`,
			want:  `reviews-rollout shop reviews.shop.svc.cluster.local reviews v2 v1 1m`,
		},
		{
			name: "flagger style query",
			query: `sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",` +
				`destination_workload=~"{{ service }}-{{ canary }}",response_code!~"5.*"}[{{ interval }}]))`,
			window: 30 * time.Second,
			want: `sum(rate(istio_requests_total{destination_workload_namespace="shop",` +
				`destination_workload=~"reviews-v2",response_code!~"5.*"}[30s]))`,
		},
		{
			name:  "no template at all",
			query: `vector(1)`,
			want:  `vector(1)`,
		},
		{
			name:    "unknown function names the metric",
			query:   `sum(up{job="{{ target }}"})`,
			wantErr: `metric latency-p50: query template: template: latency-p50:1: function "target" not defined`,
		},
		{
			name:    "field syntax fails instead of printing <no value>",
			query:   `up{ns="{{ .namespace }}"}`,
			wantErr: `map has no entry for key "namespace"`,
		},
		{
			name:    "broken template",
			query:   `up{ns="{{ namespace }"}`,
			wantErr: `metric latency-p50: query template:`,
		},
		{
			name:    "interval needs a window",
			query:   `rate(up[{{ interval }}])`,
			window:  -1,
			wantErr: `the window must be at least 1ms`,
		},
		{
			name:   "no window is fine when the query does not use it",
			query:  `up{ns="{{ namespace }}"}`,
			window: -1,
			want:   `up{ns="shop"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := reviewsQuery(v1alpha1.Metric{Name: "latency-p50", Query: tt.query})
			if tt.window != 0 {
				q.Window = tt.window
			}
			got, err := Render(q)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Render() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render(): %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Render() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPromDuration(t *testing.T) {
	tests := []struct {
		in      time.Duration
		want    string
		wantErr bool
	}{
		{in: time.Minute, want: "1m"},
		{in: 30 * time.Second, want: "30s"},
		{in: 90 * time.Second, want: "1m30s"},
		{in: 2*time.Hour + 5*time.Second, want: "2h5s"},
		{in: 48 * time.Hour, want: "48h"},
		{in: 1500 * time.Millisecond, want: "1s500ms"},
		{in: 250*time.Millisecond + 999*time.Microsecond, want: "250ms"},
		{in: time.Microsecond, wantErr: true},
		{in: 0, wantErr: true},
		{in: -time.Second, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			got, err := promDuration(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("promDuration(%v) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("promDuration(%v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
