package envoystats

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	// Envoy's first buckets, all present as the layout requires, empty or not.
	layout := func(counts map[float64]uint64) map[float64]uint64 {
		out := map[float64]uint64{0.5: 0, 1: 0, 5: 0, 10: 0, 25: 0, 50: 0, inf: 0}
		for b, n := range counts {
			out[b] = n
		}
		return out
	}
	type result struct {
		V  float64
		OK bool
	}
	for _, tt := range []struct {
		name string
		q    float64
		in   map[float64]uint64
		want result
	}{
		{"no samples", 0.99, layout(nil), result{}},
		{"inside one bucket starts at the bucket before", 0.5, layout(map[float64]uint64{10: 4}), result{7.5, true}},
		{"first bucket starts at zero", 0.5, layout(map[float64]uint64{0.5: 2}), result{0.25, true}},
		{"across buckets", 0.99, layout(map[float64]uint64{10: 90, 50: 10}), result{47.5, true}},
		{"rank on a bucket's top", 0.9, layout(map[float64]uint64{10: 90, 50: 10}), result{10, true}},
		{"empty buckets between", 0.95, layout(map[float64]uint64{1: 90, 50: 10}), result{37.5, true}},
		{"max", 1, layout(map[float64]uint64{1: 90, 50: 10}), result{50, true}},
		{"overflow gives the top bound", 0.99, layout(map[float64]uint64{inf: 5, 5: 5}), result{50, true}},
		{"only an overflow bucket", 0.5, map[float64]uint64{inf: 3}, result{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := quantile(tt.q, tt.in)
			if diff := cmp.Diff(tt.want, result{v, ok}, approx); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestResult(t *testing.T) {
	for _, tt := range []struct {
		name   string
		metric string
		w      window
		want   float64
	}{
		{"success rate", "request-success-rate", window{requests: 8, errors: 2}, 75},
		{"error rate", "error-rate", window{requests: 8, errors: 2}, 25},
		{"errors a flush ahead of requests", "error-rate", window{requests: 2, errors: 3}, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.result(tt.metric, 0); got.Value != tt.want || got.NoData {
				t.Errorf("result = %+v, want value %v", got, tt.want)
			}
		})
	}
}
