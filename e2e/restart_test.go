package e2e

import (
	"testing"
	"time"
)

// TestWeirRestartKeepsTraffic stops weir and starts it again while requests flow: Envoy
// keeps serving from its last config, reconnects, and ends up with exactly the same
// dynamic clusters, endpoints, listeners and routes.
func TestWeirRestartKeepsTraffic(t *testing.T) {
	split := map[string]float64{"v1": 90, "v2": 10}
	env, envoy := startReviews(t, MustMergePatch(t, SeedReviewsCanary, SeedPatch90to10))
	envoy.WaitRouteWeights(t, "reviews", reviewsSplit(split))
	acked := env.Weir().WaitAcked(t, envoy.NodeID)
	before := envoy.ConfigDump(t)

	bg := envoy.Traffic("reviews").Background(t, 2*time.Minute)
	time.Sleep(300 * time.Millisecond)

	env.Weir().Stop(t)
	envoy.WaitConnected(t, false)
	time.Sleep(time.Second) // Envoy serves on its own for a while
	if n := bg.Tally().Failures(); n > 0 {
		t.Errorf("requests failed while weir was down: %s", bg.Tally())
	}

	began := time.Now()
	w := env.StartWeir()
	envoy.WaitConnected(t, true)
	w.WaitProxy(t, envoy.NodeID)
	t.Logf("envoy reconnected %v after weir started", time.Since(began).Round(time.Millisecond))
	// weir's versions hash the content, so the new weir knows from Envoy's first requests
	// that it already holds the current config, and resends nothing.
	if !poll(convergeTimeout, 50*time.Millisecond, func() bool {
		p, ok := w.DebugProxies(t).Proxy(envoy.NodeID)
		if !ok {
			return false
		}
		for _, typ := range []string{"cds", "eds", "lds", "rds"} {
			if st, ok := p.Types[typ]; !ok || st.AckedVersion != acked.Types[typ].AckedVersion {
				return false
			}
		}
		return true
	}) {
		p, _ := w.DebugProxies(t).Proxy(envoy.NodeID)
		t.Errorf("after the restart weir does not see Envoy holding the versions it had: before %+v, now %+v", acked.Types, p.Types)
	}
	time.Sleep(300 * time.Millisecond)
	if n := w.Metric(t, "weir_xds_pushes_total"); n != 0 {
		t.Errorf("weir_xds_pushes_total = %v after the restart with nothing changed, want 0 (no full resend)", n)
	}
	if n := w.Metric(t, "weir_xds_connected_proxies"); n != 1 {
		t.Errorf("weir_xds_connected_proxies = %v, want 1", n)
	}

	time.Sleep(500 * time.Millisecond) // anything the new weir sends has arrived
	after := envoy.ConfigDump(t)
	if same, diff := before.SameContent(after); !same {
		t.Errorf("config_dump changed across the restart: %s", diff)
	}

	// The new stream carries changes: an edit after the restart reaches Envoy.
	env.WriteFile("virtualservice.yaml", MustMergePatch(t, SeedReviewsCanary, SeedPatch50to50))
	envoy.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v1": 50, "v2": 50}))
	w.WaitAcked(t, envoy.NodeID, "rds")

	time.Sleep(300 * time.Millisecond)
	ta := bg.Stop()
	if ta.Failures() > 0 || ta.Total < 200 {
		t.Errorf("traffic across the restart: want at least 200 requests and zero failures, got %s", ta)
	}
	t.Logf("traffic across the restart: %s", ta)
}

// TestEnvoyStartsBeforeWeir: an Envoy whose control plane is not up yet gets its config
// as soon as weir starts.
func TestEnvoyStartsBeforeWeir(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackends("v1", "v2")
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("destinationrule.yaml", SeedReviewsDestinationRule)
	env.WriteFile("virtualservice.yaml", SeedReviewsCanary)

	envoy := env.StartEnvoy(EnvoyOptions{NoWait: true})
	time.Sleep(time.Second)
	if envoy.ListenerUp() {
		t.Fatal("the outbound listener is up before weir runs: it cannot have come from weir")
	}
	if s := envoy.Stat(t, "control_plane.connected_state"); s != 0 {
		t.Fatalf("control_plane.connected_state = %d before weir runs, want 0", s)
	}

	began := time.Now()
	env.StartWeir()
	envoy.WaitReady(t)
	t.Logf("envoy got its config %v after weir started", time.Since(began).Round(time.Millisecond))
	AssertAll(t, "100/0 after a late weir", envoy.Traffic("reviews").Send(500), "v1")
}
