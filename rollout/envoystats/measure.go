package envoystats

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/rollout"
)

var (
	// ErrUnknownMetric is returned for a metric that is not one of the built-ins.
	ErrUnknownMetric = errors.New("not a built-in metric")
	// ErrBadQuery is returned for a window or percentile that cannot be measured.
	ErrBadQuery = errors.New("bad metric query")
)

var _ rollout.Provider = (*Sink)(nil)

// Measure sums what every proxy reported for q.Clusters over the window ending now and
// computes one of the built-in metrics from it. A window longer than the sink keeps
// measures what is kept; the first query of a window longer than any before it may find
// less than the window, since until then the sink kept only the longest window asked.
func (s *Sink) Measure(ctx context.Context, q rollout.Query) (rollout.Result, error) {
	if err := ctx.Err(); err != nil {
		return rollout.Result{}, err
	}
	pct, err := percentile(q.Metric)
	if err != nil {
		return rollout.Result{}, err
	}
	if q.Window <= 0 {
		return rollout.Result{}, fmt.Errorf("%w: window %v is not positive", ErrBadQuery, q.Window)
	}
	s.widen(q.Window)
	now := s.now()
	s.maybeSweep(now)
	w := window{dur: map[float64]uint64{}}
	since := now - instant(q.Window)
	for _, st := range s.list() {
		st.addTo(&w, q.Clusters, since)
	}
	return w.result(q.Metric.Name, pct), nil
}

// percentile validates the metric and returns the percentile asked for request-duration.
func percentile(m v1alpha1.Metric) (float64, error) {
	switch m.Name {
	case v1alpha1.MetricSuccessRate, v1alpha1.MetricErrorRate:
		return 0, nil
	case v1alpha1.MetricDuration:
		if m.Percentile == nil {
			return 99, nil
		}
		if p := *m.Percentile; p > 0 && p <= 100 {
			return p, nil
		}
		return 0, fmt.Errorf("%w: percentile %g is not in (0, 100]", ErrBadQuery, *m.Percentile)
	}
	return 0, fmt.Errorf("%w: %q (built-ins: %s, %s, %s)", ErrUnknownMetric, m.Name,
		v1alpha1.MetricSuccessRate, v1alpha1.MetricErrorRate, v1alpha1.MetricDuration)
}

// window is the sum over proxies of what some clusters did in a window.
type window struct {
	requests, errors uint64
	// dur counts duration samples per bucket, keyed by the bucket's upper bound in ms
	// (+Inf for the overflow). Keying by bound sums proxies even if their layouts differ.
	dur map[float64]uint64
}

// addTo adds the stream's samples of clusters taken after since.
func (st *stream) addTo(w *window, clusters []string, since instant) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, c := range clusters {
		se := st.series[c]
		if se == nil {
			continue
		}
		for j := range len(se.bounds) + 1 { // the whole layout: see quantile
			w.dur[upperBound(se.bounds, j)] += 0
		}
		for i := len(se.samples) - 1; i >= 0 && se.samples[i].at > since; i-- {
			sm := se.samples[i]
			w.requests += sm.requests
			w.errors += sm.errors
			for j, n := range sm.dur.counts {
				w.dur[upperBound(se.bounds, sm.dur.first+j)] += uint64(n)
			}
		}
	}
}

func upperBound(bounds []float64, bucket int) float64 {
	if bucket < len(bounds) {
		return bounds[bucket]
	}
	return math.Inf(1)
}

// result computes a built-in metric. Requests is the requests completed in the window
// whatever the metric; NoData is set when there is nothing to compute the metric from.
func (w window) result(metric string, pct float64) rollout.Result {
	r := rollout.Result{Requests: float64(w.requests)}
	errs := min(w.errors, w.requests) // a counter may be a flush ahead of the other
	switch metric {
	case v1alpha1.MetricSuccessRate:
		r.NoData = w.requests == 0
		if !r.NoData {
			r.Value = 100 * float64(w.requests-errs) / float64(w.requests)
		}
	case v1alpha1.MetricErrorRate:
		r.NoData = w.requests == 0
		if !r.NoData {
			r.Value = 100 * float64(errs) / float64(w.requests)
		}
	case v1alpha1.MetricDuration:
		v, ok := quantile(pct/100, w.dur)
		r.Value, r.NoData = v, !ok
	}
	return r
}

// quantile estimates the q-quantile (0 < q <= 1) of samples counted per bucket as
// Prometheus' histogram_quantile does: find the bucket holding the rank q·total and
// interpolate linearly inside it, the first bucket starting at 0. A rank in the overflow
// bucket gives the highest finite bound. perBound must hold every bound of the layout,
// empty buckets too, since each bucket starts where the one before ends. ok is false
// without samples or without a finite bound.
func quantile(q float64, perBound map[float64]uint64) (v float64, ok bool) {
	bounds := slices.Sorted(maps.Keys(perBound))
	var total uint64
	for _, n := range perBound {
		total += n
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var below uint64 // samples in the buckets before this one
	for i, b := range bounds {
		n := perBound[b]
		if n == 0 || float64(below+n) < rank {
			below += n
			continue
		}
		if math.IsInf(b, 1) {
			if i == 0 {
				return 0, false
			}
			return bounds[i-1], true
		}
		lower := 0.0
		if i > 0 {
			lower = bounds[i-1]
		}
		return lower + (b-lower)*(rank-float64(below))/float64(n), true
	}
	return 0, false // not reached for q <= 1: the last non-empty bucket takes the rank
}

// widen makes the sink keep at least w, up to its maximum retention.
func (s *Sink) widen(w time.Duration) {
	w = min(w, s.opts.maxRetention)
	for {
		cur := s.retention.Load()
		if int64(w) <= cur || s.retention.CompareAndSwap(cur, int64(w)) {
			return
		}
	}
}
