package e2e

import (
	"slices"
	"strings"
	"testing"
)

const (
	productHost = "product-service.production.svc.cluster.local"
	productPort = 8080
)

// TestProductServiceSeed002 serves seed 002's VirtualService and DestinationRule
// unchanged to a sidecar in namespace production, and checks both what Envoy does with
// traffic and what it holds in config_dump.
func TestProductServiceSeed002(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackends("stable", "canary")
	env.WriteFile("services.yaml", ServicePods("product-service", "production", productPort, true, bs))
	env.WriteFile("destinationrule.yaml", SeedProductServiceDR)
	env.WriteFile("virtualservice.yaml", SeedProductServiceVS)
	env.StartWeir()
	envoy := env.StartEnvoy(EnvoyOptions{Namespace: "production", Cluster: "frontend", Labels: map[string]string{"app": "frontend"}})
	envoy.WaitRouteWeights(t, productHost, Subsets(productPort, productHost, map[string]float64{"stable": 90, "canary": 10}))

	canary := envoy.Traffic(productHost, "x-canary", "true").Send(500)
	AssertAll(t, "x-canary: true", canary, "canary")
	rest := envoy.Traffic(productHost).Send(splitRequests)
	AssertSplit(t, "no x-canary header", rest, map[string]float64{"stable": 90, "canary": 10}, splitTolerancePP)
	AssertSplit(t, "x-canary: false", envoy.Traffic(productHost, "x-canary", "false").Send(splitRequests),
		map[string]float64{"stable": 90, "canary": 10}, splitTolerancePP)
	short := envoy.Traffic("product-service").Send(200)
	if short.Failures() > 0 {
		t.Errorf("short name from the same namespace: %s", short)
	}

	// h2UpgradePolicy: UPGRADE — Envoy talks HTTP/2 (h2c) to the stable backends. The
	// canary subset's own connectionPool replaces the top-level block as a whole (Istio's
	// rule, and weir warns about it), so the canary is reached over HTTP/1.1.
	if got, want := rest.VersionProtos["stable HTTP/2.0"], rest.Versions["stable"]; got != want || want == 0 {
		t.Errorf("h2UpgradePolicy UPGRADE: want every stable request over HTTP/2.0, backends saw %v", rest.VersionProtos)
	}
	if got := canary.VersionProtos["canary HTTP/1.1"]; got != canary.Total {
		t.Errorf("canary subset (its connectionPool has no h2UpgradePolicy): want HTTP/1.1, backends saw %v", canary.VersionProtos)
	}

	dump := envoy.ConfigDump(t)
	checkProductRoutes(t, dump)
	checkProductClusters(t, dump)
}

func checkProductRoutes(t *testing.T, dump *ConfigDump) {
	t.Helper()
	vh, ok := dump.VirtualHost(productHost)
	if !ok {
		t.Fatalf("no virtual host for %s", productHost)
	}
	if len(vh.Routes) < 2 {
		t.Fatalf("want the x-canary route and the default route, got %d routes", len(vh.Routes))
	}
	first := vh.Routes[0]
	if !strings.Contains(string(first.Match), "x-canary") {
		t.Errorf("first route should match header x-canary, match is %s", first.Match)
	}
	canary := ClusterName(productPort, "canary", productHost)
	if w := first.Route.Weights(); !sameWeights(w, map[string]float64{canary: 100}) {
		t.Errorf("x-canary route weights = %v, want all to %s", w, canary)
	}

	def := vh.Routes[len(vh.Routes)-1].Route
	if def == nil {
		t.Fatal("default route has no route action")
	}
	if def.Timeout != "5s" {
		t.Errorf("default route timeout = %q, want 5s", def.Timeout)
	}
	rp := def.RetryPolicy
	if rp == nil {
		t.Fatal("default route has no retry policy")
	}
	if rp.NumRetries == nil || *rp.NumRetries != 3 {
		t.Errorf("retry num_retries = %v, want 3", deref(rp.NumRetries))
	}
	if rp.PerTryTimeout != "2s" {
		t.Errorf("retry per_try_timeout = %q, want 2s", rp.PerTryTimeout)
	}
	on := strings.Split(rp.RetryOn, ",")
	slices.Sort(on)
	if want := []string{"connect-failure", "gateway-error", "refused-stream"}; !slices.Equal(on, want) {
		t.Errorf("retry_on = %q, want exactly %v", rp.RetryOn, want)
	}
}

func checkProductClusters(t *testing.T, dump *ConfigDump) {
	t.Helper()
	check := func(subset string, want map[string]int) {
		t.Helper()
		name := ClusterName(productPort, subset, productHost)
		c, ok := dump.Cluster(name)
		if !ok {
			t.Errorf("no cluster %s; clusters: %v", name, dump.ClusterNames())
			return
		}
		th, _ := c.DefaultThresholds()
		od := c.OutlierDetection
		if od == nil {
			od = &OutlierDetection{}
		}
		got := map[string]int{
			"max_connections":      deref(th.MaxConnections),
			"max_pending_requests": deref(th.MaxPendingRequests),
			"max_requests":         deref(th.MaxRequests),
			"max_retries":          deref(th.MaxRetries),
			"consecutive_5xx":      deref(od.Consecutive5xx),
			"max_ejection_percent": deref(od.MaxEjectionPercent),
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("cluster %s: %s = %d, want %d", name, k, got[k], v)
			}
		}
		if od.Interval != "30s" || od.BaseEjectionTime != "30s" {
			t.Errorf("cluster %s: outlier interval %q, base_ejection_time %q, want 30s and 30s", name, od.Interval, od.BaseEjectionTime)
		}
		if c.LbPolicy != "LEAST_REQUEST" {
			t.Errorf("cluster %s: lb_policy %q, want LEAST_REQUEST", name, c.LbPolicy)
		}
	}
	outlier := map[string]int{"consecutive_5xx": 5, "max_ejection_percent": 50}
	stable := map[string]int{"max_connections": 1000, "max_pending_requests": 1024, "max_requests": 1024, "max_retries": 3}
	for k, v := range outlier {
		stable[k] = v
	}
	check("stable", stable)
	if c, ok := dump.Cluster(ClusterName(productPort, "stable", productHost)); ok && c.ConnectTimeout != "3s" {
		t.Errorf("stable cluster connect_timeout = %q, want 3s", c.ConnectTimeout)
	}
	// The canary subset's own connectionPool replaces the top-level one (Istio's rule);
	// the top-level outlier detection still applies.
	canary := map[string]int{"max_connections": 500, "max_pending_requests": 512}
	for k, v := range outlier {
		canary[k] = v
	}
	check("canary", canary)
}

// deref is *p, or -1 for an unset field (Envoy's default applies).
func deref(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}
