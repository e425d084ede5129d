package prometheus

import (
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    outcome
		wantErr string
	}{
		{
			name: "vector of one sample",
			body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.5,"74.5"]}]}}`,
			want: outcome{value: 74.5},
		},
		{
			name: "scalar",
			body: `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}`,
			want: outcome{value: 3},
		},
		{
			name: "empty vector is no data",
			body: `{"status":"success","data":{"resultType":"vector","result":[]}}`,
			want: outcome{noData: true},
		},
		{
			name: "NaN is no data",
			body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"NaN"]}]}}`,
			want: outcome{noData: true},
		},
		{
			name: "NaN scalar is no data",
			body: `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"NaN"]}}`,
			want: outcome{noData: true},
		},
		{
			name: "+Inf is a value",
			body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"+Inf"]}]}}`,
			want: outcome{value: math.Inf(1)},
		},
		{
			name:    "several series",
			body:    `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}`,
			wantErr: "query must return one series (aggregate it, e.g. with sum): it returned 2",
		},
		{
			name:    "prometheus error",
			status:  http.StatusBadRequest,
			body:    `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:6: parse error: unexpected \")\""}`,
			wantErr: `prometheus says bad_data: invalid parameter "query": 1:6: parse error: unexpected ")"`,
		},
		{
			name:    "not prometheus",
			status:  http.StatusBadGateway,
			body:    `<html>bad gateway</html>`,
			wantErr: `HTTP 502, not a Prometheus API answer: "<html>bad gateway</html>"`,
		},
		{
			name:    "range query result",
			body:    `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
			wantErr: `result type "matrix": want an instant vector or a scalar`,
		},
		{
			name:    "value not a string",
			body:    `{"status":"success","data":{"resultType":"scalar","result":[1700000000,3]}}`,
			wantErr: `value is not a string`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = http.StatusOK
			}
			got, err := decode(status, []byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decode() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode(): %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(outcome{})); diff != "" {
				t.Errorf("decode() (-want +got):\n%s", diff)
			}
		})
	}
}

// A query returning several series is its own error, so callers can tell it apart.
func TestDecodeManySeriesIs(t *testing.T) {
	_, err := decode(http.StatusOK, []byte(`{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}`))
	if !errors.Is(err, ErrManySeries) {
		t.Errorf("decode() error = %v, want ErrManySeries", err)
	}
}

func TestQueryURL(t *testing.T) {
	tests := []struct {
		address string
		want    string
		wantErr bool
	}{
		{address: "http://prometheus.monitoring:9090", want: "http://prometheus.monitoring:9090/api/v1/query"},
		{address: "http://prometheus.monitoring:9090/", want: "http://prometheus.monitoring:9090/api/v1/query"},
		{address: "https://example.com/prometheus", want: "https://example.com/prometheus/api/v1/query"},
		{address: "prometheus:9090", wantErr: true},
		{address: "ftp://prometheus", wantErr: true},
		{address: "http://", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			got, err := queryURL(tt.address)
			if (err != nil) != tt.wantErr {
				t.Fatalf("queryURL(%q) error = %v, want error %v", tt.address, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got.String()); diff != "" {
				t.Errorf("queryURL(%q) (-want +got):\n%s", tt.address, diff)
			}
		})
	}
}
