package e2e

import (
	"net/http"
	"slices"
	"testing"

	"github.com/weir-mesh/weir/e2e/backend"
)

// actionsVirtualService exercises what an http route can do besides choosing a
// destination: rewrite, redirect, answer directly, change headers, answer CORS.
const actionsVirtualService = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: rewrite-prefix
    match: [{uri: {prefix: /api/v1/}}]
    rewrite: {uri: /v2/, authority: reviews.internal}
    route: [{destination: {host: reviews, subset: v1}}]
  - name: rewrite-after-regex
    match: [{uri: {regex: "/items/[0-9]+"}}]
    rewrite: {uri: /item}
    route: [{destination: {host: reviews, subset: v1}}]
  - name: regex-rewrite
    match: [{uri: {prefix: /service/}}]
    rewrite:
      uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: '\2/\1'}
    route: [{destination: {host: reviews, subset: v1}}]
  - name: moved
    match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: reviews.example.com, redirectCode: 302}
  - name: secure
    match: [{uri: {prefix: /secure/}}]
    redirect: {scheme: https, port: 8443}
  - name: gone
    match: [{uri: {prefix: /gone}}]
    directResponse:
      status: 410
      body: {string: "gone for good\n"}
    headers:
      response:
        set: {content-type: text/plain}
  - name: headers
    match: [{uri: {prefix: /headers}}]
    headers:
      request:
        set: {x-set: route}
        add: {x-add: route}
        remove: [x-drop]
      response:
        set: {content-type: text/x-weir}
        add: {x-added: route}
        remove: [x-weir-version]
    route: [{destination: {host: reviews, subset: v1}}]
  - name: per-destination
    match: [{uri: {prefix: /split}}]
    route:
    - destination: {host: reviews, subset: v1}
      weight: 50
      headers:
        request: {set: {x-chosen: v1}}
        response: {set: {x-dest: v1}}
    - destination: {host: reviews, subset: v2}
      weight: 50
      headers:
        request: {set: {x-chosen: v2}}
        response: {set: {x-dest: v2}}
  - name: cors
    match: [{uri: {prefix: /cors}}]
    corsPolicy:
      allowOrigins: [{exact: "https://shop.example.com"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-token]
      exposeHeaders: [x-request-id]
      maxAge: 60s
      allowCredentials: true
    route: [{destination: {host: reviews, subset: v1}}]
  - route: [{destination: {host: reviews, subset: v1}}]
`

// TestRouteActionsAsTheClientSeesThem: rewrites reach the backend, redirects and direct
// responses come from Envoy, header changes apply to requests and responses (route-wide
// and per destination), and CORS answers an allowed origin's preflight and nobody
// else's. Every check is made on what the client or the backend actually got.
func TestRouteActionsAsTheClientSeesThem(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(164, "v1", "v2")
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("destinationrule.yaml", SeedReviewsDestinationRule)
	env.WriteFile("virtualservice.yaml", actionsVirtualService)
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)
	get := func(path string, kv ...string) Response {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return e.Do(Request{Host: "reviews", Path: path, Header: h})
	}

	t.Run("rewrite", func(t *testing.T) {
		for _, c := range []struct{ path, wantPath, wantHost string }{
			{"/api/v1/users?page=2", "/v2/users", "reviews.internal"}, // the matched prefix is replaced
			{"/items/42", "/item", "reviews"},                         // after a regex match, the whole path
			{"/service/update/v1/api", "/v1/api/update", "reviews"},   // regex rewrite with groups
		} {
			r := get(c.path)
			if r.Echo == nil || r.Status != http.StatusOK {
				t.Errorf("GET %s: status %d, err %v, no backend answer", c.path, r.Status, r.Err)
				continue
			}
			if r.Echo.Path != c.wantPath || r.Echo.Host != c.wantHost {
				t.Errorf("GET %s reached the backend as %s (Host %s), want %s (Host %s)", c.path, r.Echo.Path, r.Echo.Host, c.wantPath, c.wantHost)
			}
		}
	})

	t.Run("redirect", func(t *testing.T) {
		for _, c := range []struct {
			path     string
			status   int
			location string
		}{
			{"/old", http.StatusFound, "http://reviews.example.com/new"},
			{"/secure/cart", http.StatusMovedPermanently, "https://reviews:8443/secure/cart"},
		} {
			r := get(c.path)
			if r.Status != c.status || r.Header.Get("Location") != c.location || r.Echo != nil {
				t.Errorf("GET %s: status %d, Location %q (backend reached: %v); want %d to %q from Envoy",
					c.path, r.Status, r.Header.Get("Location"), r.Echo != nil, c.status, c.location)
			}
		}
	})

	t.Run("directResponse", func(t *testing.T) {
		r := get("/gone/page")
		if r.Status != http.StatusGone || r.Body != "gone for good\n" || r.Header.Get("Content-Type") != "text/plain" || r.Echo != nil {
			t.Errorf("GET /gone/page: status %d, body %q, content-type %q (backend reached: %v); want 410 %q text/plain from Envoy",
				r.Status, r.Body, r.Header.Get("Content-Type"), r.Echo != nil, "gone for good\n")
		}
	})

	t.Run("headers", func(t *testing.T) {
		r := get("/headers", "x-set", "client", "x-add", "client", "x-drop", "secret", "x-keep", "1")
		if r.Echo == nil {
			t.Fatalf("GET /headers: status %d, err %v, no backend answer (the echo is read from the body)", r.Status, r.Err)
		}
		seen := http.Header(r.Echo.Headers)
		if got := seen.Values("x-set"); !slices.Equal(got, []string{"route"}) {
			t.Errorf("request set: the backend saw x-set %q, want only [route]", got)
		}
		if got := seen.Values("x-add"); !slices.Equal(got, []string{"client", "route"}) {
			t.Errorf("request add: the backend saw x-add %q, want [client route]", got)
		}
		if got := seen.Values("x-drop"); len(got) != 0 || seen.Get("x-keep") != "1" {
			t.Errorf("request remove: the backend saw x-drop %q and x-keep %q, want none and 1", got, seen.Get("x-keep"))
		}
		if got := r.Header.Values("Content-Type"); !slices.Equal(got, []string{"text/x-weir"}) {
			t.Errorf("response set: the client got content-type %q, want only text/x-weir", got)
		}
		if r.Header.Get("x-added") != "route" || r.Header.Get(backend.VersionHeader) != "" {
			t.Errorf("response add/remove: x-added %q, %s %q; want route and none", r.Header.Get("x-added"),
				backend.VersionHeader, r.Header.Get(backend.VersionHeader))
		}
	})

	t.Run("per-destination headers", func(t *testing.T) {
		rs := e.DoMany(Request{Host: "reviews", Path: "/split"}, 200, 8)
		versions := map[string]int{}
		for _, r := range rs {
			if r.Echo == nil {
				t.Fatalf("GET /split: status %d, err %v, no backend answer", r.Status, r.Err)
			}
			v := r.Echo.Version
			versions[v]++
			if r.Header.Get("x-dest") != v || http.Header(r.Echo.Headers).Get("x-chosen") != v {
				t.Fatalf("answered by %s with x-dest %q, and the backend saw x-chosen %q; want both %s",
					v, r.Header.Get("x-dest"), http.Header(r.Echo.Headers).Get("x-chosen"), v)
			}
		}
		if versions["v1"] == 0 || versions["v2"] == 0 {
			t.Errorf("a 50/50 split answered %v; want both versions", versions)
		}
		t.Logf("MEASURE per-destination headers: %v, every answer carried its own destination's headers", versions)
	})

	t.Run("cors", func(t *testing.T) {
		const allowed, other = "https://shop.example.com", "https://evil.example.com"
		preflight := func(origin string) Response {
			return e.Do(Request{Method: http.MethodOptions, Host: "reviews", Path: "/cors", Header: http.Header{
				"Origin": {origin}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"x-token"},
			}})
		}
		r := preflight(allowed)
		if r.Status != http.StatusOK || r.Echo != nil || r.Header.Get("Access-Control-Allow-Origin") != allowed ||
			r.Header.Get("Access-Control-Allow-Methods") != "GET,POST" || r.Header.Get("Access-Control-Allow-Headers") != "x-token" ||
			r.Header.Get("Access-Control-Max-Age") != "60" || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("preflight from %s: status %d (backend reached: %v), headers %v; want Envoy's 200 allowing it", allowed, r.Status, r.Echo != nil, r.Header)
		}
		if r := preflight(other); r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s was allowed: %v", other, r.Header)
		}
		r = get("/cors", "Origin", allowed)
		if r.Echo == nil || r.Header.Get("Access-Control-Allow-Origin") != allowed || r.Header.Get("Access-Control-Expose-Headers") != "x-request-id" {
			t.Errorf("GET from %s: status %d, headers %v; want the backend's answer with CORS headers", allowed, r.Status, r.Header)
		}
		if r = get("/cors", "Origin", other); r.Echo == nil || r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET from %s: status %d, access-control-allow-origin %q; want the backend's answer without it", other, r.Status, r.Header.Get("Access-Control-Allow-Origin"))
		}
		if r = get("/", "Origin", allowed); r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("a route without corsPolicy answered with access-control-allow-origin %q", r.Header.Get("Access-Control-Allow-Origin"))
		}
	})
}
