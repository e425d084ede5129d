package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestProxyConfigShowsWhatEnvoyServes: `weir proxy-config` (the seed's troubleshooting
// step, `istioctl proxy-config routes|clusters`) shows the split and the policies that a
// real Envoy is serving.
func TestProxyConfigShowsWhatEnvoyServes(t *testing.T) {
	env, envoy := startReviews(t, MustMergePatch(t, SeedReviewsCanary, SeedPatch90to10))
	envoy.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v1": 90, "v2": 10}))
	w := env.Weir()
	w.WaitAcked(t, envoy.NodeID)

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(WeirBinary(t), append([]string{"proxy-config"}, append(args, "--admin-address", w.AdminAddr)...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("weir proxy-config %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	routes := run("routes", envoy.NodeID)
	for _, want := range []string{"outbound|80|v1|reviews.default.svc.cluster.local:90", "outbound|80|v2|reviews.default.svc.cluster.local:10"} {
		if !strings.Contains(routes, want) {
			t.Errorf("proxy-config routes lacks %q:\n%s", want, routes)
		}
	}
	clusters := run("clusters", envoy.NodeID)
	if !strings.Contains(clusters, "outbound|80|v2|reviews.default.svc.cluster.local") {
		t.Errorf("proxy-config clusters lacks the v2 subset:\n%s", clusters)
	}

	var asJSON map[string][]map[string]any
	if err := json.Unmarshal([]byte(run("endpoints", envoy.NodeID, "-o", "json")), &asJSON); err != nil {
		t.Fatalf("proxy-config -o json is not JSON: %v", err)
	}
	if n := len(asJSON["eds"]); n != 3 { // the service and its two subsets
		t.Errorf("proxy-config endpoints -o json: %d cluster load assignments, want 3", n)
	}

	// An unknown proxy is an error that says so.
	cmd := exec.Command(WeirBinary(t), "proxy-config", "routes", "no-such-proxy", "--admin-address", w.AdminAddr)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no connected proxy") {
		t.Errorf("proxy-config for an unknown node: err %v, output %s", err, out)
	}
}
