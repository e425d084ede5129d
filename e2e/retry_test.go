package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// retryVirtualService retries 503 three times for requests with x-retry: yes; other
// requests get weir's default retry policy, which does not retry a 503 (a request that
// got one may have run).
const retryVirtualService = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {x-retry: {exact: "yes"}}}]
    retries: {attempts: 3, retryOn: "503", backoff: 0.001s}
    route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]
`

// TestRetriesHideAFailingBackend: the backend answers 503 to every other request. Sent
// one at a time, every request after the first meets a 503 first, so without retries
// about half fail (this is what proves the test can fail), and with retries on 503 none
// does, each failed attempt being retried once.
func TestRetriesHideAFailingBackend(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(162, "v1")
	bs[0].Fail(http.StatusServiceUnavailable, 2)
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("virtualservice.yaml", retryVirtualService)
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)
	const n = 400

	without := e.DoMany(Request{Host: "reviews"}, n, 1)
	failed := count(without, func(r Response) bool { return r.Status != http.StatusOK })
	t.Logf("MEASURE without retries (weir's default policy): %d of %d requests failed", failed, n)
	if failed < n*4/10 || failed > n*6/10 {
		t.Errorf("without retries %d of %d requests failed, want about half (40-60%%): the backend fails every other request", failed, n)
	}

	before := bs[0].Requests()
	with := e.DoMany(Request{Host: "reviews", Header: http.Header{"X-Retry": {"yes"}}}, n, 1)
	failed = count(with, func(r Response) bool { return r.Status != http.StatusOK })
	attempts := bs[0].Requests() - before
	t.Logf("MEASURE with retries on 503: %d of %d requests failed; the backend saw %d attempts", failed, n, attempts)
	if failed != 0 {
		t.Errorf("with 3 retries on 503, %d of %d requests failed, want 0", failed, n)
	}
	// One attempt for the first request, two for each later one.
	if attempts < 2*n-2 || attempts > 2*n {
		t.Errorf("the backend saw %d attempts for %d requests, want about %d (each 503 retried once)", attempts, n, 2*n-1)
	}
}

// timeoutVirtualService: a 0.3 s timeout, and a 0.15 s per-try timeout with 2 retries.
const timeoutVirtualService = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {x-case: {exact: per-try}}}]
    timeout: 3s
    retries: {attempts: 2, perTryTimeout: 0.15s, retryOn: 5xx, backoff: 0.005s}
    route: [{destination: {host: reviews}}]
  - timeout: 0.3s
    route: [{destination: {host: reviews}}]
`

// TestTimeoutsFireOnTime: against a backend that takes 1 s, the route timeout answers
// 504 after 0.3 s, and a 0.15 s per-try timeout with 2 retries answers 504 after three
// tries, 0.45 s (the 1-15 ms of back-off between tries is inside the tolerance), having
// reached the backend three times. Each measured time must be within ±20 %.
func TestTimeoutsFireOnTime(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(163, "v1")
	bs[0].SetDelay(time.Second)
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("virtualservice.yaml", timeoutVirtualService)
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)
	const n = 5

	var timeout, perTry []Response
	var wg sync.WaitGroup
	wg.Go(func() { timeout = e.DoMany(Request{Host: "reviews"}, n, n) })
	wg.Go(func() { perTry = e.DoMany(Request{Host: "reviews", Header: http.Header{"X-Case": {"per-try"}}}, n, n) })
	wg.Wait()
	checkTook(t, "timeout 0.3s", timeout, 300*time.Millisecond)
	checkTook(t, "perTryTimeout 0.15s, attempts 2", perTry, 450*time.Millisecond)
	// Each timed-out request reached the backend once, each per-try one three times.
	if got, want := bs[0].Requests(), int64(n+3*n); got != want {
		t.Errorf("the backend saw %d requests, want %d (%d timed out once, %d tried three times)", got, want, n, n)
	}
}

// checkTook fails unless every response is a 504 that came within ±20 % of want.
func checkTook(t *testing.T, what string, rs []Response, want time.Duration) {
	t.Helper()
	var took []time.Duration
	for _, r := range rs {
		took = append(took, r.Took.Round(time.Millisecond))
		if r.Err != nil || r.Status != http.StatusGatewayTimeout {
			t.Errorf("%s: status %d, err %v; want Envoy's 504", what, r.Status, r.Err)
		}
		if r.Took < want*8/10 || r.Took > want*12/10 {
			t.Errorf("%s: answered after %v, want %v ± 20%%", what, r.Took.Round(time.Millisecond), want)
		}
	}
	t.Logf("MEASURE %s: 504 after %v (want %v ± 20%%)", what, took, want)
}

func count(rs []Response, pred func(Response) bool) int {
	n := 0
	for _, r := range rs {
		if pred(r) {
			n++
		}
	}
	return n
}
