package prometheus

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/rollout"
)

// The Envoy statistics the built-in metrics read, as the client-side sidecars' admin
// /stats/prometheus exposes them.
const (
	statResponses = "upstream_rq_xx"          // counter, label envoy_response_code_class="2".."5"
	statLatency   = "upstream_rq_time_bucket" // histogram, in milliseconds
)

// defaultPercentile is request-duration's when the metric names none.
const defaultPercentile = 99

// queries are a built-in metric's PromQL: its value, and the canary's request count over
// the same window for the minimum-request guard.
type queries struct {
	value, requests string
}

// builtin writes the PromQL of a built-in metric over the canary's clusters.
//
// Both rates divide the 5xx responses by all responses. A response class has no series
// until Envoy first counts one, so the 5xx count falls back to 0 (`or vector(0)`): a
// canary that never failed has an error rate of 0, not no data. A window without any
// response divides 0 by 0, which is NaN and reads as no data. increase and rate give
// the same ratio; increase is used because the request count must be a count.
func builtin(q rollout.Query) (queries, error) {
	window, err := promDuration(q.Window)
	if err != nil {
		return queries{}, err
	}
	clusters := slices.Compact(slices.Sorted(slices.Values(q.Clusters)))
	if len(clusters) == 0 {
		return queries{}, errors.New("no cluster carries the canary's traffic")
	}
	responses, err := acrossClusters("increase", clusters, statResponses, window)
	if err != nil {
		return queries{}, err
	}
	failures, err := acrossClusters("increase", clusters, statResponses, window, `envoy_response_code_class="5"`)
	if err != nil {
		return queries{}, err
	}
	requests := "sum(" + responses + ")"
	errorShare := "(sum(" + failures + ") or vector(0)) / " + requests

	switch q.Metric.Name {
	case v1alpha1.MetricSuccessRate:
		return queries{value: "100 * (1 - " + errorShare + ")", requests: requests}, nil
	case v1alpha1.MetricErrorRate:
		return queries{value: "100 * " + errorShare, requests: requests}, nil
	case v1alpha1.MetricDuration:
		phi, err := quantile(q.Metric.Percentile)
		if err != nil {
			return queries{}, err
		}
		buckets, err := acrossClusters("rate", clusters, statLatency, window)
		if err != nil {
			return queries{}, err
		}
		return queries{value: "histogram_quantile(" + phi + ", sum by (le) (" + buckets + "))", requests: requests}, nil
	}
	return queries{}, ErrNoQuery
}

// acrossClusters applies fn (increase or rate) to one statistic of every cluster over the
// window and joins the results into one vector. The clusters differ in port, so their
// series keep distinct envoy_cluster_name labels and `or` drops none of them.
func acrossClusters(fn string, clusters []string, stat, window string, matchers ...string) (string, error) {
	parts := make([]string, 0, len(clusters))
	for _, c := range clusters {
		sel, err := clusterSelector(c, stat, matchers...)
		if err != nil {
			return "", err
		}
		parts = append(parts, fn+"("+sel+"["+window+"])")
	}
	return strings.Join(parts, " or "), nil
}

// clusterSelector selects one statistic of one cluster as Envoy's default tag extraction
// names it. The cluster_name extractor takes only the text up to the first dot, and the
// rest of the name stays in the metric name with every character Prometheus does not
// allow turned into "_": outbound|8080|canary|reviews.default.svc.cluster.local's
// upstream_rq_xx is
//
//	envoy_cluster_default_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|8080|canary|reviews"}
func clusterSelector(cluster, stat string, matchers ...string) (string, error) {
	label, rest, _ := strings.Cut(cluster, ".")
	if label == "" {
		return "", fmt.Errorf("cluster %q: empty name", cluster)
	}
	if word := otherTagWord(rest); word != "" {
		return "", fmt.Errorf("cluster %q: Envoy's default tag extraction takes %q out of its statistics' names, so the built-in query cannot name them; give the metric a query", cluster, word)
	}
	name := "envoy_cluster_" + stat
	if rest != "" {
		name = "envoy_cluster_" + unallowed.ReplaceAllString(rest, "_") + "_" + stat
	}
	all := append([]string{"envoy_cluster_name=" + strconv.Quote(label)}, matchers...)
	return name + "{" + strings.Join(all, ", ") + "}", nil
}

// unallowed is what Envoy replaces with "_" in a Prometheus metric name.
var unallowed = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// otherTagWord returns the dot-separated words in the rest of a cluster name that
// another of Envoy's default tag extractors for cluster.* statistics would take away
// (the gRPC bridge's and the SSL cipher suites'), or "".
func otherTagWord(rest string) string {
	dotted := "." + rest + "."
	for _, word := range []string{"grpc", "ssl.ciphers"} {
		if strings.Contains(dotted, "."+word+".") {
			return word
		}
	}
	return ""
}

// quantile is the histogram_quantile argument for a percentile, default 99, written
// without binary noise: 99.9 gives 0.999, not 0.9990000000000001.
func quantile(percentile *float64) (string, error) {
	p := float64(defaultPercentile)
	if percentile != nil {
		p = *percentile
	}
	if !(p > 0 && p <= 100) {
		return "", fmt.Errorf("percentile %v: want more than 0 and at most 100", p)
	}
	return strconv.FormatFloat(math.Round(p*1e4)/1e6, 'f', -1, 64), nil
}
