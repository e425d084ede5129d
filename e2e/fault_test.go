package e2e

import (
	"math"
	"net/http"
	"testing"
	"time"
)

// chaosVirtualService injects faults the way seed 002 writes them (fault.delay and
// fault.abort with percentage.value), one fault per route, chosen by x-chaos.
const chaosVirtualService = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews-chaos
  namespace: default
spec:
  hosts:
  - reviews
  http:
  - match:
    - headers:
        x-chaos: {exact: delay}
    fault:
      delay:
        percentage:
          value: 30  # 30% of requests
        fixedDelay: 0.2s
    route:
    - destination:
        host: reviews
  - match:
    - headers:
        x-chaos: {exact: abort}
    fault:
      abort:
        percentage:
          value: 20  # 20% of requests
        httpStatus: 503  # Service Unavailable
    route:
    - destination:
        host: reviews
  - route:
    - destination:
        host: reviews
`

const (
	// faultRequests per measured percentage: at 4,000 a ±3 point tolerance is more than
	// 4 standard deviations for 20 % and 30 % (at 2,000 it would be 2.9 for 30 %).
	faultRequests  = 4000
	faultTolerance = 3.0 // percentage points
	faultDelay     = 200 * time.Millisecond
	// slowAfter tells a delayed answer from a prompt one: the delay is never shorter than
	// 200 ms, and an undelayed answer on loopback takes a few.
	slowAfter = 180 * time.Millisecond
)

// TestFaultInjectionPercentages: seed 002's fault YAML shape on a real Envoy. A 30 %
// delay of 200 ms makes 30 ± 3 % of answers slow (and no others); a 20 % abort with 503
// answers 20 ± 3 % of requests with Envoy's 503 without reaching the backend; requests
// that match neither route are untouched.
func TestFaultInjectionPercentages(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(161, "v1")
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("chaos.yaml", chaosVirtualService)
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)

	delayed := e.DoMany(Request{Host: "reviews", Header: http.Header{"X-Chaos": {"delay"}}}, faultRequests, 64)
	var slow int
	var slowest, fastestSlow time.Duration = 0, time.Hour
	for _, r := range delayed {
		if r.Err != nil || r.Status != http.StatusOK || r.Echo == nil {
			t.Fatalf("a delayed request must still be answered by the backend: status %d, err %v, body %q", r.Status, r.Err, truncate(r.Body, 200))
		}
		if r.Took >= slowAfter {
			slow++
			fastestSlow = min(fastestSlow, r.Took)
		} else {
			slowest = max(slowest, r.Took)
		}
	}
	delayPct := 100 * float64(slow) / faultRequests
	t.Logf("MEASURE fault delay 30%% of %v: %d of %d answers slow (%.2f%%); fastest slow %v, slowest prompt %v",
		faultDelay, slow, faultRequests, delayPct, fastestSlow.Round(time.Millisecond), slowest.Round(time.Millisecond))
	if math.Abs(delayPct-30) > faultTolerance {
		t.Errorf("delayed %.2f%% of requests, want 30 ± %.0f points", delayPct, faultTolerance)
	}
	// Envoy's timers may fire a few milliseconds early.
	if slow > 0 && fastestSlow < faultDelay*95/100 {
		t.Errorf("a slow answer took %v, want at least the %v delay (-5%%)", fastestSlow, faultDelay)
	}

	before := bs[0].Requests()
	aborted := e.DoMany(Request{Host: "reviews", Header: http.Header{"X-Chaos": {"abort"}}}, faultRequests, 32)
	var injected int
	for _, r := range aborted {
		switch {
		case r.Err == nil && r.Status == http.StatusServiceUnavailable && r.Echo == nil:
			injected++
		case r.Err == nil && r.Status == http.StatusOK && r.Echo != nil:
		default:
			t.Fatalf("want 200 from the backend or Envoy's own 503, got status %d (echo %v), err %v", r.Status, r.Echo != nil, r.Err)
		}
	}
	abortPct := 100 * float64(injected) / faultRequests
	reached := bs[0].Requests() - before
	t.Logf("MEASURE fault abort 20%%: %d of %d answered 503 by Envoy (%.2f%%); the backend saw %d", injected, faultRequests, abortPct, reached)
	if math.Abs(abortPct-20) > faultTolerance {
		t.Errorf("aborted %.2f%% of requests, want 20 ± %.0f points", abortPct, faultTolerance)
	}
	if want := int64(faultRequests - injected); reached != want {
		t.Errorf("the backend saw %d requests, want the %d that were not aborted", reached, want)
	}

	plain := e.DoMany(Request{Host: "reviews"}, 200, 16)
	for _, r := range plain {
		if r.Err != nil || r.Status != http.StatusOK || r.Took >= slowAfter {
			t.Fatalf("a request without x-chaos must be neither delayed nor aborted: status %d after %v, err %v", r.Status, r.Took, r.Err)
		}
	}
}
