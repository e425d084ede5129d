package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-mesh/weir/e2e/backend"
)

// hashRules: ratings hashes on x-user-id; its subset "sticky" on a cookie Envoy sets
// itself, and its subset "by-query" on the user query parameter. Every pod is v1, so both
// subsets hold every endpoint.
const hashRules = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user-id}
  subsets:
  - name: sticky
    labels: {version: v1}
    trafficPolicy:
      loadBalancer:
        consistentHash:
          httpCookie: {name: weir-session, path: /, ttl: 3600s}
  - name: by-query
    labels: {version: v1}
    trafficPolicy:
      loadBalancer:
        consistentHash:
          httpQueryParameterName: user
          maglev: {tableSize: 65537}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - match: [{headers: {x-cohort: {exact: cookie}}}]
    route: [{destination: {host: ratings, subset: sticky}}]
  - match: [{headers: {x-cohort: {exact: query}}}]
    route: [{destination: {host: ratings, subset: by-query}}]
  - route: [{destination: {host: ratings}}]
`

// TestConsistentHashKeepsEachUserOnOneEndpoint: over four endpoints, 50 users send 20
// requests each (interleaved): every user's 20 answers come from one endpoint, and the
// users are spread over at least three endpoints. Requests without the header are not
// pinned (they spread), which shows that the header is what pins. The cookie subset: a
// client without the cookie gets one from Envoy and then stays on one endpoint; the
// query-parameter subset (Maglev) pins each user value.
func TestConsistentHashKeepsEachUserOnOneEndpoint(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(191, "pod-a", "pod-b", "pod-c", "pod-d")
	env.WriteFile("ratings.yaml", ratingsPods(bs...)+"---\n"+hashRules)
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)
	tr := e.Traffic("ratings")

	byUser := map[string]map[string]int{} // user -> endpoint -> answers
	for range 20 {
		for u := range 50 {
			user := fmt.Sprintf("user-%02d", u)
			r := tr.With("x-user-id", user).One()
			if r.Err != nil || r.Status != http.StatusOK {
				t.Fatalf("%s: %+v", user, r)
			}
			if byUser[user] == nil {
				byUser[user] = map[string]int{}
			}
			byUser[user][r.Version]++
		}
	}
	assertPinned(t, "x-user-id", byUser, 3)

	unpinned := tr.Send(60)
	t.Logf("MEASURE without x-user-id: %v", unpinned)
	if unpinned.Failures() != 0 || len(unpinned.Versions) < 2 {
		t.Errorf("requests without the hash key should spread over the endpoints: %v", unpinned)
	}

	// Cookie: 20 clients, each on its own connection, so Envoy gives each its own cookie.
	byClient := map[string]map[string]int{}
	for c := range 20 {
		client := fmt.Sprintf("client-%02d", c)
		byClient[client] = cookieClient(t, tr.URL, client)
	}
	assertPinned(t, "generated cookie", byClient, 2)

	byQuery := map[string]map[string]int{}
	qtr := tr.With("x-cohort", "query")
	for range 5 {
		for u := range 30 {
			user := fmt.Sprintf("q%02d", u)
			q := *qtr
			q.URL = tr.URL + "?user=" + user
			r := q.One()
			if r.Err != nil || r.Status != http.StatusOK {
				t.Fatalf("?user=%s: %+v", user, r)
			}
			if byQuery[user] == nil {
				byQuery[user] = map[string]int{}
			}
			byQuery[user][r.Version]++
		}
	}
	assertPinned(t, "user query parameter (Maglev)", byQuery, 3)
}

// assertPinned fails unless every key was answered by exactly one endpoint and the keys
// used at least minEndpoints endpoints in all.
func assertPinned(t *testing.T, what string, byKey map[string]map[string]int, minEndpoints int) {
	t.Helper()
	perEndpoint := map[string]int{}
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		eps := byKey[key]
		if len(eps) != 1 {
			t.Errorf("%s: %s was answered by %d endpoints, want 1: %v", what, key, len(eps), eps)
		}
		for ep := range eps {
			perEndpoint[ep]++
		}
	}
	t.Logf("MEASURE %s: %d keys, keys per endpoint %v", what, len(byKey), perEndpoint)
	if len(perEndpoint) < minEndpoints {
		t.Errorf("%s: the keys landed on %d endpoints, want at least %d (a hash that ignores the key would pass the pinning check): %v",
			what, len(perEndpoint), minEndpoints, perEndpoint)
	}
}

// cookieClient sends 10 requests on one connection of its own: the first without a
// cookie, which must come back with Envoy's Set-Cookie; the rest with that cookie. It
// returns the endpoints that answered.
func cookieClient(t *testing.T, url, name string) map[string]int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	seen := map[string]int{}
	cookie := ""
	for i := range 10 {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = "ratings"
		req.Header.Set("x-cohort", "cookie")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s request %d: %v", name, i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s request %d: status %d", name, i, resp.StatusCode)
		}
		seen[resp.Header.Get(backend.VersionHeader)]++
		if i == 0 {
			set := resp.Header.Get("Set-Cookie")
			if !strings.HasPrefix(set, "weir-session=") {
				t.Fatalf("%s: the first answer should set the weir-session cookie, got Set-Cookie %q", name, set)
			}
			cookie, _, _ = strings.Cut(set, ";")
		}
	}
	return seen
}
