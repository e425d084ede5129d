package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/rollout"
)

// The Prometheus rollouts are judged every promCheckInterval on promMetricWindow of
// samples. Prometheus scrapes the sidecar every second, and increase() needs two samples
// of a series inside its window: a 10 s window holds about ten, so a loaded machine that
// delays a few scrapes still leaves enough. The longer window also reaches back into the
// previous step, which does not matter when both steps see the same canary.
const (
	promCheckInterval = "3s"
	promMetricWindow  = "10s"
	promMinRequests   = 20
	// canary5xx is the custom metric: the canary's 5xx answers in the window, as Envoy's
	// own series name them (see rollout/prometheus). `or vector(0)` makes "never failed"
	// a 0 rather than no data.
	canary5xx = "canary-5xx"
	// promRolloutDeadline bounds a whole rollout: two steps and a promotion take about
	// 7 s, a rollback about 6.5 s, on two busy cores as on idle ones.
	promRolloutDeadline = 45 * time.Second
)

// prometheusRolloutYAML is the reviews Rollout judged on Prometheus alone: the built-in
// success rate over Envoy's series, and a templated query. With canary v1 (the stable
// subset) nothing rolls out yet.
func prometheusRolloutYAML(canary, promAddress string) string {
	return fmt.Sprintf(`apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  stable: v1
  canary: %[1]s
  strategy:
    canary: {stepWeights: [20, 50]}
  analysis:
    interval: %[2]s
    threshold: 2
    minRequests: %[3]d
    metrics:
    - name: request-success-rate
      interval: %[4]s
      thresholdRange: {min: 99}
      prometheus: {address: %[5]q}
    - name: %[6]s
      interval: %[4]s
      thresholdRange: {max: 1}
      prometheus: {address: %[5]q}
      query: |-
        sum(increase(envoy_cluster_{{ namespace }}_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|%[7]d|{{ canary }}|{{ service }}", envoy_response_code_class="5"}[{{ interval }}])) or vector(0)
`, canary, promCheckInterval, promMinRequests, promMetricWindow, promAddress, canary5xx, reviewsPort)
}

// promRollout is a rollout under way, judged on a real Prometheus.
type promRollout struct {
	envoy *Envoy
	weir  *Weir
	prom  *prometheusServer
	bg    *Background // traffic to reviews through the sidecar since before the start
	// queriesBefore is how many queries Prometheus had answered when the rollout started.
	queriesBefore float64
}

// startPrometheusRollout builds the world of a Prometheus-judged rollout and starts it:
// backends v1 and v2 (v2 failing every failEvery-th request, 0: never), weir with the
// Rollout idle, one sidecar, background traffic, and a Prometheus scraping the sidecar.
// Only once Prometheus has scraped does spec.canary become v2, so the first check never
// meets a Prometheus that is still starting.
func startPrometheusRollout(t *testing.T, failEvery int) promRollout {
	t.Helper()
	env := NewEnv(t)
	bs := env.StartBackends("v1", "v2")
	if failEvery > 0 {
		bs[1].Fail(http.StatusInternalServerError, failEvery)
	}
	promPort := FreePort(t, "127.0.0.1")
	promAddress := fmt.Sprintf("http://127.0.0.1:%d", promPort)
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, false, bs))
	env.WriteFile("destinationrule.yaml", SeedReviewsDestinationRule)
	env.WriteFile("rollout.yaml", prometheusRolloutYAML("v1", promAddress))
	w := env.StartWeir()
	envoy := env.StartEnvoy(EnvoyOptions{})
	prom := startPrometheus(t, env, promPort, envoy)
	bg := envoy.Traffic("reviews").Background(t, 2*time.Minute)
	var idle rollout.State
	if !poll(convergeTimeout, 100*time.Millisecond, func() bool {
		idle = w.rolloutStatus(t).State
		return idle.Phase == v1alpha1.PhaseInitialized && idle.Stable == "v1"
	}) {
		t.Fatalf("before the rollout: phase %s, stable %q; want Initialized on v1", idle.Phase, idle.Stable)
	}
	prom.waitScraped(t, time.Now())
	r := promRollout{envoy: envoy, weir: w, prom: prom, bg: bg, queriesBefore: prom.queries(t)}
	env.WriteFile("rollout.yaml", prometheusRolloutYAML("v2", promAddress))
	return r
}

// TestPrometheusRolloutPromotes: a healthy v2 under steady traffic is judged at 20 % and
// 50 % by a real Prometheus scraping the sidecar, then promoted. The last check's values
// are Prometheus' (exactly 100 % success and 0 failures, the custom query without a
// request count) and weir asked Prometheus exactly three queries per check.
func TestPrometheusRolloutPromotes(t *testing.T) {
	r := startPrometheusRollout(t, 0)
	w := r.weir

	start := time.Now()
	s, weights := followRollout(t, w, v1alpha1.PhaseSucceeded, promRolloutDeadline)
	t.Logf("promoted in %v after %d checks: %s", time.Since(start).Round(time.Millisecond), s.State.Iterations, s.State.Message)
	tally := r.bg.Stop()
	if s.State.Stable != "v2" {
		t.Errorf("stable after promotion = %q, want v2", s.State.Stable)
	}
	if !isSubsequence([]int32{20, 50, 100}, weights) || !slices.IsSorted(weights[:len(weights)-1]) {
		t.Errorf("canary weights seen %v, want 20, 50 and 100 in order", weights)
	}
	if f := tally.Failures(); f > 0 {
		t.Errorf("%d of %d requests failed during the rollout: %s", f, tally.Total, tally)
	}

	rate, custom := lastCheck(t, s)
	if rate.Verdict != rollout.Pass || rate.Value != 100 || rate.Requests < promMinRequests {
		t.Errorf("last check's request-success-rate: %+v; want a pass at exactly 100 on at least %d requests", rate, promMinRequests)
	}
	// A query's result says nothing of request counts (-1); weir's own provider cannot
	// run a query at all, so this value can only have come from Prometheus.
	if custom.Verdict != rollout.Pass || custom.Value != 0 || custom.Requests != -1 || custom.Error != "" {
		t.Errorf("last check's %s: %+v; want a pass at 0 with no request count", canary5xx, custom)
	}
	r.checkQueries(t, s)
	AssertAll(t, "after promotion", r.envoy.Traffic("reviews").Send(200), "v2")
}

// TestPrometheusRolloutRollsBack: v2 answers 500 to every 4th request. At 20 % both
// metrics, measured on Prometheus, fail (success rate about 75 %, far more than one 5xx
// in the window); the second failed check rolls back, naming both, and all traffic is on
// v1 again.
func TestPrometheusRolloutRollsBack(t *testing.T) {
	r := startPrometheusRollout(t, 4)
	w := r.weir

	start := time.Now()
	s, weights := followRollout(t, w, v1alpha1.PhaseFailed, promRolloutDeadline)
	t.Logf("rolled back in %v after %d checks: %s", time.Since(start).Round(time.Millisecond), s.State.Iterations, s.State.Message)
	r.bg.Stop()
	if s.State.FailedChecks != 2 {
		t.Errorf("failed checks at rollback = %d, want the threshold, 2", s.State.FailedChecks)
	}
	for _, name := range []string{"request-success-rate", canary5xx} {
		if !strings.Contains(s.State.Message, name) {
			t.Errorf("rollback message %q does not name the failing metric %s", s.State.Message, name)
		}
	}
	if slices.Contains(weights, 50) {
		t.Errorf("the canary went past 20%% although it fails: weights %v", weights)
	}

	// 25 % of the canary's answers are 500s (every 4th, counted by the backend); the
	// window's edges and increase()'s extrapolation move the ratio by a few points at most.
	rate, custom := lastCheck(t, s)
	if rate.Verdict != rollout.Fail || rate.Value < 65 || rate.Value > 85 || rate.Requests < promMinRequests {
		t.Errorf("last check's request-success-rate: %+v; want a fail at 75 ± 10 on at least %d requests", rate, promMinRequests)
	}
	if custom.Verdict != rollout.Fail || custom.Value <= 1 || custom.Value > rate.Requests/2 || custom.Requests != -1 {
		t.Errorf("last check's %s: %+v; want a fail, above 1 and at most half of the %v requests", canary5xx, custom, rate.Requests)
	}
	r.checkQueries(t, s)
	if !poll(convergeTimeout, 100*time.Millisecond, func() bool { return w.rolloutStatus(t).State.Applied }) {
		t.Fatalf("the rollback's weights were not ACKed within %v", convergeTimeout)
	}
	AssertAll(t, "after rollback", r.envoy.Traffic("reviews").Send(200), "v1")
}

// checkQueries fails unless weir asked Prometheus exactly three queries per check: the
// built-in success rate's value and request count, and the custom query. Nobody else
// queries it once the rollout has started, and no check runs after the rollout ended.
func (r promRollout) checkQueries(t *testing.T, s rollout.Status) {
	t.Helper()
	got, want := r.prom.queries(t)-r.queriesBefore, 3*float64(s.State.Iterations)
	if got != want {
		t.Errorf("Prometheus answered %v queries during the rollout, want %v (%d checks of 3 queries)", got, want, s.State.Iterations)
	}
}

// lastCheck returns the last check's two metrics: the built-in success rate and the
// custom query.
func lastCheck(t *testing.T, s rollout.Status) (rate, custom rollout.MetricCheck) {
	t.Helper()
	got := map[string]rollout.MetricCheck{}
	for _, m := range s.State.Metrics {
		got[m.Name] = m
	}
	rate, okRate := got["request-success-rate"]
	custom, okCustom := got[canary5xx]
	if len(got) != 2 || !okRate || !okCustom {
		t.Fatalf("last check's metrics: %+v; want request-success-rate and %s", s.State.Metrics, canary5xx)
	}
	t.Logf("last check: request-success-rate %v on %.1f requests (%s); %s %v (%s)",
		rate.Value, rate.Requests, rate.Verdict, canary5xx, custom.Value, custom.Verdict)
	return rate, custom
}

// prometheusServer is a real Prometheus (Debian's package) started by a test, with its
// data in a temporary directory.
type prometheusServer struct {
	*process
	Address string
}

// promScrapeConfig scrapes one sidecar's admin /stats/prometheus every second.
const promScrapeConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
- job_name: envoy
  metrics_path: /stats/prometheus
  static_configs:
  - targets: ["127.0.0.1:%d"]
`

// startPrometheus runs Prometheus on 127.0.0.1:port scraping envoy, and waits until it
// is ready. It stops with the test and prints its log if the test failed.
func startPrometheus(t *testing.T, env *Env, port int, envoy *Envoy) *prometheusServer {
	t.Helper()
	bin := PrometheusBinary(t)
	config := env.logPath("prometheus.yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, promScrapeConfig, envoy.AdminPort), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := env.logPath("prometheus.log")
	p, err := startProcess("prometheus", logPath, os.Environ(), bin,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(t.TempDir(), "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("%v", err)
	}
	prom := &prometheusServer{process: p, Address: fmt.Sprintf("http://127.0.0.1:%d", port)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("==== prometheus log (last 40 lines of %s) ====\n%s", logPath, tailFile(logPath, 40))
		}
		if err, killed := prom.Terminate(stopTimeout); killed {
			t.Logf("prometheus had to be killed (%v)", err)
		}
	})
	began := time.Now()
	ok := poll(startTimeout, 100*time.Millisecond, func() bool {
		if !prom.Running() {
			return true
		}
		_, err := prom.get("/-/ready")
		return err == nil
	})
	if !prom.Running() {
		t.Fatalf("prometheus exited at start (%v); log:\n%s", prom.Err(), tailFile(logPath, 40))
	}
	if !ok {
		t.Fatalf("prometheus not ready on %s within %v", prom.Address, startTimeout)
	}
	t.Logf("prometheus ready in %v (%s, scraping 127.0.0.1:%d)", time.Since(began).Round(time.Millisecond), prom.Address, envoy.AdminPort)
	return prom
}

func (p *prometheusServer) get(path string) (string, error) {
	return httpGet(p.Address, path, "prometheus")
}

// waitScraped waits until Prometheus has scraped its one target successfully after since.
// It reads the targets API, not the query API, so as not to count among the queries.
func (p *prometheusServer) waitScraped(t *testing.T, since time.Time) {
	t.Helper()
	var last string
	ok := poll(convergeTimeout, 100*time.Millisecond, func() bool {
		body, err := p.get("/api/v1/targets?state=active")
		if err != nil {
			last = err.Error()
			return false
		}
		var answer struct {
			Data struct {
				ActiveTargets []struct {
					Health     string    `json:"health"`
					LastScrape time.Time `json:"lastScrape"`
					LastError  string    `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &answer); err != nil {
			last = err.Error()
			return false
		}
		targets := answer.Data.ActiveTargets
		last = fmt.Sprintf("%+v", targets)
		return len(targets) == 1 && targets[0].Health == "up" && targets[0].LastScrape.After(since)
	})
	if !ok {
		t.Fatalf("prometheus has not scraped the sidecar within %v; targets: %s", convergeTimeout, last)
	}
}

// queries is how many instant queries (/api/v1/query) Prometheus has answered, by its own
// prometheus_http_requests_total, whatever their status. The series appears with the
// first such query.
func (p *prometheusServer) queries(t *testing.T) float64 {
	t.Helper()
	body, err := p.get("/metrics")
	if err != nil {
		t.Fatalf("%v", err)
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "prometheus_http_requests_total{") || !strings.Contains(line, `handler="/api/v1/query"`) {
			continue
		}
		fields := strings.Fields(line[strings.LastIndex(line, "}")+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			t.Fatalf("prometheus /metrics: %q: %v", line, err)
		}
		sum += v
	}
	return sum // no series yet: no query answered
}
