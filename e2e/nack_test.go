package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// bigRegexCanary is valid Istio YAML that Envoy rejects: the header regex compiles to an
// RE2 program larger than Envoy's default limit (100), a NACK Istio users meet in practice.
const bigRegexCanary = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews-canary
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        x-session:
          regex: "([0-9a-f]{8}-){20}[a-z]{30}"
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v2}
      weight: 50
`

// TestNACKIsAttributedAndNotResent edits a VirtualService into one Envoy rejects and
// checks that the NACK is recorded against that object, that the last good split keeps
// serving, that weir does not resend the rejected config in a loop (go-control-plane's
// default behaviour), and that fixing the file resumes normal service.
func TestNACKIsAttributedAndNotResent(t *testing.T) {
	for _, delta := range []bool{false, true} {
		name := map[bool]string{false: "sotw", true: "delta"}[delta]
		t.Run(name, func(t *testing.T) { testNACK(t, delta) })
	}
}

func testNACK(t *testing.T, delta bool) {
	env, envoy := startReviewsWith(t, SeedReviewsCanary, EnvoyOptions{Delta: delta})
	env.AllowNACKs()
	w := env.Weir()
	reviews := envoy.Traffic("reviews")
	envoy.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v1": 100}))
	w.WaitAcked(t, envoy.NodeID)

	env.WriteFile("virtualservice.yaml", bigRegexCanary)
	var proxy ProxyStatus
	if !poll(convergeTimeout, 50*time.Millisecond, func() bool {
		dp, err := w.debugProxies()
		if err != nil {
			return false
		}
		p, ok := dp.Proxy(envoy.NodeID)
		proxy = p
		return ok && p.Types["rds"].Nacks > 0
	}) {
		t.Fatalf("no RDS NACK from %s recorded in /debug/proxies within %v; last: %+v", envoy.NodeID, convergeTimeout, proxy)
	}

	rds := proxy.Types["rds"]
	const source = "VirtualService default/reviews-canary (virtualservice.yaml)"
	switch {
	case rds.LastNack == nil:
		t.Fatalf("rds: %d NACKs but no last_nack", rds.Nacks)
	case !strings.Contains(rds.LastNack.Error, "program size") || rds.LastNack.Version == "":
		t.Errorf("rds last_nack lacks Envoy's error or the version: %+v", *rds.LastNack)
	case !slices.Equal(rds.LastNack.Sources, []string{source}):
		t.Errorf("rds last_nack sources = %q, want exactly [%q]", rds.LastNack.Sources, source)
	default:
		t.Logf("NACK recorded: version %s, sources %v, error %q", rds.LastNack.Version, rds.LastNack.Sources, rds.LastNack.Error)
	}
	for _, typ := range []string{"cds", "eds", "lds"} {
		if n := proxy.Types[typ].Nacks; n != 0 {
			t.Errorf("%s: %d NACKs, want 0 (only the route is bad)", typ, n)
		}
	}

	// Let any in-flight response land, then watch for 3 s: nothing may be resent.
	time.Sleep(500 * time.Millisecond)
	pushes, nacks := w.Metric(t, "weir_xds_pushes_total"), w.Metric(t, "weir_xds_nacks_total")
	if nacks < 1 {
		t.Errorf("weir_xds_nacks_total = %v after a NACK, want at least 1", nacks)
	}
	time.Sleep(3 * time.Second)
	if p := w.Metric(t, "weir_xds_pushes_total"); p != pushes {
		t.Errorf("weir_xds_pushes_total went from %v to %v in 3 s with no config change: the rejected config is being resent", pushes, p)
	}
	if n := w.Metric(t, "weir_xds_nacks_total"); n != nacks {
		t.Errorf("weir_xds_nacks_total went from %v to %v in 3 s: Envoy keeps rejecting resent config", nacks, n)
	}
	// weir had warned about this regex before Envoy rejected it.
	if diags, err := w.get("/debug/diagnostics"); err != nil || !strings.Contains(diags, "re2.max_program_size") {
		t.Errorf("/debug/diagnostics does not warn about the oversized regex (err %v):\n%s", err, diags)
	}
	// Envoy kept the last good routes.
	AssertAll(t, "after the rejected edit", reviews.Send(500), "v1")

	// Fixing the file is sent and accepted.
	env.WriteFile("virtualservice.yaml", MustMergePatch(t, SeedReviewsCanary, SeedPatch50to50))
	envoy.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v1": 50, "v2": 50}))
	p := w.WaitAcked(t, envoy.NodeID, "rds")
	if p.Types["rds"].Nacks != rds.Nacks {
		t.Errorf("rds NACK count moved from %d to %d after the fix", rds.Nacks, p.Types["rds"].Nacks)
	}
}
