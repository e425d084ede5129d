package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// outlierRule ejects an endpoint after 3 consecutive 5xx for 2 s, checked every second.
const outlierRule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 2s, maxEjectionPercent: 50}
`

// TestOutlierDetectionEjectsAFailingEndpoint: one of three endpoints answers 503 to
// everything. Envoy ejects it after the DestinationRule's 3 consecutive errors; the
// client then sees no error at all until the ejection time has passed, when the endpoint
// is tried again. Measured from the client's side, not read from config_dump.
func TestOutlierDetectionEjectsAFailingEndpoint(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(141, "pod-a", "pod-b", "pod-c")
	bs[2].Fail(http.StatusServiceUnavailable, 1)
	env.WriteFile("ratings.yaml", ratingsPods(bs...)+"---\n"+outlierRule)
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)
	tr := e.Traffic("ratings") // one request at a time: round robin visits pod-c every third

	// Until ejection: pod-c fails 3 times in a row, spread over at most 9 requests.
	var failed int
	var ejectedAt time.Time
	for i := 0; i < 30 && failed < 3; i++ {
		if r := tr.One(); r.Err != nil || r.Status != http.StatusOK {
			if r.Version != "pod-c" {
				t.Fatalf("request %d failed and not from pod-c: %+v", i, r)
			}
			failed++
			ejectedAt = time.Now()
		}
	}
	if failed < 3 {
		t.Fatalf("pod-c failed %d times in 30 requests, want 3", failed)
	}
	// Envoy decides the ejection on its main thread, a moment after the worker saw the
	// third 503: a request sent in that moment may still reach pod-c. Measure from when
	// Envoy counts the ejection.
	if !poll(time.Second, 5*time.Millisecond, func() bool {
		stats, err := e.Admin("/stats?filter=outlier_detection.ejections_active")
		return err == nil && strings.Contains(stats, "ejections_active: 1")
	}) {
		t.Fatalf("Envoy did not count an active ejection within 1 s of pod-c's third 503")
	}
	// Ejected: no error, and pod-c never answers, for the next 60 requests.
	ta := tr.Send(60)
	if time.Since(ejectedAt) > 1800*time.Millisecond {
		t.Fatalf("60 requests took %v, too long to stay inside the 2 s ejection", time.Since(ejectedAt))
	}
	t.Logf("MEASURE while ejected: %v", ta)
	if ta.Failures() != 0 || ta.Versions["pod-c"] != 0 {
		t.Fatalf("after 3 consecutive 503s pod-c should be ejected: %v", ta)
	}
	if ta.Versions["pod-a"] == 0 || ta.Versions["pod-b"] == 0 {
		t.Fatalf("the healthy endpoints should share the traffic: %v", ta)
	}
	// The ejection ends after baseEjectionTime (2 s), at the next 1 s interval: pod-c is
	// tried, and fails, again.
	var back time.Duration
	ok := poll(8*time.Second, 20*time.Millisecond, func() bool {
		r := tr.One()
		if r.Version == "pod-c" {
			back = time.Since(ejectedAt)
			return true
		}
		return false
	})
	t.Logf("MEASURE pod-c tried again %v after its ejection (baseEjectionTime 2s, interval 1s)", back)
	if !ok {
		t.Fatalf("pod-c was not tried again within 8 s of its ejection")
	}
	if back < 1800*time.Millisecond || back > 4*time.Second {
		t.Fatalf("pod-c came back %v after its ejection, want 2–3 s (baseEjectionTime, then the next interval; tolerance -0.2 s/+1 s)", back)
	}
}
