package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-mesh/weir/e2e/backend"
)

// examplesPort is the port every example's backends listen on; the tests rewrite it to a
// free port so that they never collide with a demo running on the same machine.
const examplesPort = "9080"

func examplesDir(t *testing.T) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "examples")
}

// TestExamplesValidate: `weir validate` accepts every example without a diagnostic.
func TestExamplesValidate(t *testing.T) {
	dir := examplesDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ent := range entries {
		if !ent.IsDir() {
			continue
		}
		n++
		t.Run(ent.Name(), func(t *testing.T) {
			out, status := ValidateDir(t, filepath.Join(dir, ent.Name()))
			// Warnings are fine: the seed's YAML uses deprecated fields on purpose.
			if status != 0 || strings.Contains(out, "error:") {
				t.Errorf("weir validate examples/%s: status %d, want 0 and no errors; output:\n%s", ent.Name(), status, out)
			}
		})
	}
	if n < 6 {
		t.Errorf("found %d examples, want at least 6", n)
	}
}

// TestExamplesServe serves example directories as they are (only the backend port is
// rewritten) and checks that traffic does what each README promises.
func TestExamplesServe(t *testing.T) {
	cases := []struct {
		dir        string
		firstOctet int
		versions   []string
		namespace  string
		check      func(t *testing.T, env *Env, envoy *Envoy, bs []*backend.Backend)
	}{
		{"canary", 11, []string{"v1", "v2"}, "", func(t *testing.T, env *Env, envoy *Envoy, bs []*backend.Backend) {
			AssertSplit(t, "canary", envoy.Traffic("reviews").Send(splitRequests),
				map[string]float64{"v1": 90, "v2": 10}, splitTolerancePP)
		}},
		{"header-routing", 11, []string{"v1", "v2"}, "", func(t *testing.T, env *Env, envoy *Envoy, bs []*backend.Backend) {
			AssertAll(t, "user-type: internal", envoy.Traffic("reviews", "user-type", "internal").Send(100), "v2")
			AssertAll(t, "beta-user: true", envoy.Traffic("reviews", "beta-user", "true").Send(100), "v2")
			AssertAll(t, "no headers", envoy.Traffic("reviews").Send(100), "v1")
		}},
		{"ab-user-id", 11, []string{"v1", "v2"}, "", func(t *testing.T, env *Env, envoy *Envoy, bs []*backend.Backend) {
			AssertAll(t, "x-user-id: 3123", envoy.Traffic("reviews", "x-user-id", "3123").Send(100), "v2")
			AssertAll(t, "x-user-id: 7123", envoy.Traffic("reviews", "x-user-id", "7123").Send(100), "v1")
		}},
		{"product-service", 21, []string{"stable", "canary"}, "production", func(t *testing.T, env *Env, envoy *Envoy, bs []*backend.Backend) {
			AssertAll(t, "x-canary: true", envoy.Traffic(productHost, "x-canary", "true").Send(100), "canary")
			AssertSplit(t, "product-service", envoy.Traffic(productHost).Send(splitRequests),
				map[string]float64{"stable": 90, "canary": 10}, splitTolerancePP)
		}},
		{"rollout", 21, []string{"stable", "canary"}, "production", func(t *testing.T, env *Env, envoy *Envoy, bs []*backend.Backend) {
			// The Rollout starts at once: its first step sends 10 % to the canary.
			AssertAll(t, "x-canary: true", envoy.Traffic(productHost, "x-canary", "true").Send(100), "canary")
			AssertSplit(t, "first step", envoy.Traffic(productHost).Send(splitRequests),
				map[string]float64{"stable": 90, "canary": 10}, splitTolerancePP)
			if s := env.Weir().rolloutStatusOf(t, "production", "product-service"); s.State.CanaryWeight != 10 || s.Steps != 5 {
				t.Errorf("rollout status: weight %d of %d steps, want 10 and 5", s.State.CanaryWeight, s.Steps)
			}
		}},
		{"outlier-detection", 11, []string{"v1", "v2", "v3", "v3"}, "", checkOutlierExample},
		{"performance-routing", 11, []string{"v1", "v2"}, "", func(t *testing.T, env *Env, envoy *Envoy, bs []*backend.Backend) {
			AssertAll(t, "all to v2", envoy.Traffic("reviews").Send(200), "v2")
		}},
		{"gateway", 11, []string{"productpage-v1", "reviews-v1"}, "", checkGatewayExample},
	}
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			env := NewEnv(t)
			bs := env.StartBackendsFrom(c.firstOctet, c.versions...)
			port := fmt.Sprint(bs[0].Port())
			env.CopyDir(filepath.Join(examplesDir(t), c.dir), func(name, content string) string {
				if name != "services.yaml" {
					return content
				}
				return strings.ReplaceAll(content, examplesPort, port)
			})
			env.StartWeir()
			envoy := env.StartEnvoy(EnvoyOptions{Namespace: c.namespace})
			c.check(t, env, envoy, bs)
		})
	}
}

// checkOutlierExample proves what examples/outlier-detection/README.md says: both v3 pods
// answer 503; outlier detection ejects one of them (maxEjectionPercent: 50 stops the
// second), so the 20% routed to v3 keep failing until the route stops sending it traffic.
func checkOutlierExample(t *testing.T, env *Env, envoy *Envoy, bs []*backend.Backend) {
	bs[2].Fail(503, 1)
	bs[3].Fail(503, 1)
	reviews := envoy.Traffic("reviews")
	ta := reviews.Send(splitRequests)
	failed := 100 * float64(ta.Codes[503]) / float64(ta.Total)
	if failed < 20-splitTolerancePP || failed > 20+splitTolerancePP || ta.Codes[503]+ta.Codes[200] != ta.Total {
		t.Errorf("with v3 broken: want about 20%% 503s (the v3 share), got %s", ta)
	}
	var ejected int
	if !poll(5*time.Second, 50*time.Millisecond, func() bool {
		body, err := envoy.Admin("/clusters")
		if err != nil {
			return false
		}
		ejected = 0
		for _, line := range strings.Split(body, "\n") {
			if strings.Contains(line, "|v3|") && strings.Contains(line, "health_flags::/failed_outlier_check") {
				ejected++
			}
		}
		return ejected == 1
	}) {
		t.Errorf("want exactly one of the two v3 hosts ejected (maxEjectionPercent 50), found %d", ejected)
	}

	env.WriteFile("virtualservice.yaml", MustMergePatch(t, mustRead(t, env, "virtualservice.yaml"),
		`{"spec":{"http":[{"route":[{"destination":{"host":"reviews","subset":"v2"},"weight":100}]}]}}`))
	envoy.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v2": 100}))
	AssertAll(t, "v3's weight removed", reviews.Send(500), "v2")
}

func mustRead(t *testing.T, env *Env, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.ConfigDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// checkGatewayExample proves examples/gateway/README.md: through a gateway Envoy started
// from envoy-configs/gateway.yaml, bookinfo.example.com/ reaches productpage and
// /reviews reaches reviews; another host gets 404. The sidecar gets none of these routes.
func checkGatewayExample(t *testing.T, env *Env, sidecar *Envoy, bs []*backend.Backend) {
	port := FreePort(t, "127.0.0.1")
	gw := env.StartEnvoy(EnvoyOptions{Bootstrap: "gateway.yaml", ListenerPorts: map[int]int{80: port}})
	env.Weir().WaitAcked(t, gw.NodeID)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for path, want := range map[string]string{"/": "productpage-v1", "/reviews": "reviews-v1", "/reviews/1": "reviews-v1"} {
		if !poll(convergeTimeout, 50*time.Millisecond, func() bool {
			a, err := gatewayGetPath(addr, "bookinfo.example.com", path)
			return err == nil && a.status == 200 && a.version == want
		}) {
			a, err := gatewayGetPath(addr, "bookinfo.example.com", path)
			t.Errorf("bookinfo.example.com%s through the gateway: %+v %v; want 200 from %s", path, a, err, want)
		}
	}
	if a, err := gatewayGetPath(addr, "other.example.com", "/"); err != nil || a.status != 404 {
		t.Errorf("other.example.com through the gateway: %+v %v; want 404", a, err)
	}
	if r := sidecar.Traffic("bookinfo.example.com").One(); r.Status != 404 {
		t.Errorf("the sidecar routed bookinfo.example.com (status %d from %q); its VirtualService is bound to the gateway only", r.Status, r.Version)
	}
}
