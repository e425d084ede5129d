package prometheus

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/e2e"
	"github.com/weir-mesh/weir/rollout"
)

const (
	canaryCluster = "outbound|8080|canary|reviews.default.svc.cluster.local"
	stableCluster = "outbound|8080|stable|reviews.default.svc.cluster.local"
	// How the canary's statistics appear in /stats/prometheus (see clusterSelector).
	canaryResponses = `envoy_cluster_default_svc_cluster_local_upstream_rq_xx{envoy_cluster_name="outbound|8080|canary|reviews"}`
	canaryLatency   = `envoy_cluster_default_svc_cluster_local_upstream_rq_time_count{envoy_cluster_name="outbound|8080|canary|reviews"}`

	// Envoy records upstream_rq_time in whole milliseconds, in buckets ..., 10, 25, 50, ...:
	// 30 ms puts every request in (25, 50].
	backendDelay = 30 * time.Millisecond
	warmup       = 4   // requests before the window: every response class gets its series
	traffic      = 400 // requests inside the window; a multiple of 4, so exactly 25 % fail
	senders      = 8   // concurrent clients
	waitTimeout  = 30 * time.Second
)

// TestBuiltinQueriesOnRealPrometheus checks the built-in PromQL against what a real Envoy
// exposes and a real Prometheus stores: Envoy routes to a cluster named like weir's
// canary clusters, its backend fails every 4th request, Prometheus scrapes Envoy's admin
// every second.
//
// The window is chosen so that rate extrapolation barely matters: it starts after a
// scrape that saw the warm-up and before any measured request, and the query is
// evaluated at the instant of the scrape that saw the last one. The ratios are then exact
// up to float noise, and increase() over-counts by well under 10 %.
func TestBuiltinQueriesOnRealPrometheus(t *testing.T) {
	promBin := e2e.PrometheusBinary(t)
	envoyBin := e2e.EnvoyBinary(t)
	dir := t.TempDir()

	backend := httptest.NewServer(failEveryFourth())
	t.Cleanup(backend.Close)
	adminPort, listenPort := e2e.FreePort(t, "127.0.0.1"), e2e.FreePort(t, "127.0.0.1")
	startEnvoy(t, envoyBin, dir, adminPort, listenPort, backend.Listener.Addr().String())
	promPort := e2e.FreePort(t, "127.0.0.1")
	startPrometheus(t, promBin, dir, promPort, adminPort)
	address := fmt.Sprintf("http://127.0.0.1:%d", promPort)
	endpoint, err := queryURL(address)
	if err != nil {
		t.Fatal(err)
	}
	poll := New()
	value := func(expr string) (outcome, error) {
		return poll.query(context.Background(), endpoint, expr, time.Now())
	}

	send(t, listenPort, warmup)
	waitValue(t, value, "sum("+canaryResponses+")", warmup)
	waitValue(t, value, "sum("+canaryLatency+")", warmup) // histograms appear on Envoy's stats flush
	checkEnvoySeries(t, adminPort)

	start := time.Now().Truncate(time.Millisecond)
	waitFor(t, "a scrape after the window's start", func() (bool, string) {
		at, err := lastScrape(value)
		return err == nil && at.After(start), fmt.Sprintf("last scrape %v, err %v", at, err)
	})
	send(t, listenPort, traffic)
	waitValue(t, value, "sum("+canaryResponses+")", warmup+traffic)
	waitValue(t, value, "sum("+canaryLatency+")", warmup+traffic)
	end, err := lastScrape(value)
	if err != nil {
		t.Fatal(err)
	}
	window := end.Sub(start)
	t.Logf("window %v, evaluated at the scrape of %v", window, end.Format(time.RFC3339Nano))

	at := New(WithClock(func() time.Time { return end }))
	prom := &v1alpha1.PrometheusProvider{Address: address}
	query := func(cluster string, m v1alpha1.Metric) rollout.Query {
		m.Prometheus = prom
		return rollout.Query{
			Namespace: "default", Name: "reviews", Host: "reviews.default.svc.cluster.local", Service: "reviews",
			Stable: "stable", Canary: "canary", Clusters: []string{cluster}, Metric: m, Window: window,
		}
	}
	custom := `sum(increase(envoy_cluster_{{ namespace }}_svc_cluster_local_upstream_rq_xx{` +
		`envoy_cluster_name="outbound|8080|{{ canary }}|{{ service }}",envoy_response_code_class="5"}[{{ interval }}]))`
	tests := []struct {
		name             string
		query            rollout.Query
		min, max         float64 // the value's accepted range
		minReqs, maxReqs float64 // Requests' accepted range
		noData           bool
	}{
		{
			name:  "success rate",
			query: query(canaryCluster, v1alpha1.Metric{Name: v1alpha1.MetricSuccessRate}),
			min:   74, max: 76, minReqs: traffic, maxReqs: traffic * 1.1,
		},
		{
			name:  "error rate",
			query: query(canaryCluster, v1alpha1.Metric{Name: v1alpha1.MetricErrorRate}),
			min:   24, max: 26, minReqs: traffic, maxReqs: traffic * 1.1,
		},
		{
			// Every request takes backendDelay, in the (25, 50] bucket. The upper bound
			// catches a unit mistake (seconds, microseconds) more than a slow machine.
			name:  "request duration p99",
			query: query(canaryCluster, v1alpha1.Metric{Name: v1alpha1.MetricDuration}),
			min:   25, max: 250, minReqs: traffic, maxReqs: traffic * 1.1,
		},
		{
			name:  "request duration p50",
			query: query(canaryCluster, v1alpha1.Metric{Name: v1alpha1.MetricDuration, Percentile: ptr(50.0)}),
			min:   25, max: 50, minReqs: traffic, maxReqs: traffic * 1.1,
		},
		{
			name:  "custom templated query: 5xx count",
			query: query(canaryCluster, v1alpha1.Metric{Name: "failures", Query: custom}),
			min:   traffic / 4, max: traffic / 4 * 1.1, minReqs: -1, maxReqs: -1,
		},
		{
			name:   "a subset without traffic has no data",
			query:  query(stableCluster, v1alpha1.Metric{Name: v1alpha1.MetricSuccessRate}),
			noData: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := at.Measure(context.Background(), tt.query)
			if err != nil {
				t.Fatalf("Measure(): %v", err)
			}
			t.Logf("%+v", got)
			if got.NoData != tt.noData {
				t.Fatalf("Measure() = %+v, want NoData %v", got, tt.noData)
			}
			if tt.noData {
				return
			}
			if got.Value < tt.min || got.Value > tt.max {
				t.Errorf("Measure().Value = %v, want it in [%v, %v]", got.Value, tt.min, tt.max)
			}
			if got.Requests < tt.minReqs || got.Requests > tt.maxReqs {
				t.Errorf("Measure().Requests = %v, want it in [%v, %v]", got.Requests, tt.minReqs, tt.maxReqs)
			}
		})
	}

	t.Run("prometheus error", func(t *testing.T) {
		_, err := at.Measure(context.Background(), query(canaryCluster, v1alpha1.Metric{Name: "broken", Query: "sum(rate(up[{{ interval }}])"}))
		if err == nil || !strings.Contains(err.Error(), "prometheus says bad_data") || !strings.Contains(err.Error(), "parse error") {
			t.Errorf("Measure() error = %v, want Prometheus' parse error", err)
		}
	})
}

// failEveryFourth answers 500 to requests 4, 8, 12… and 200 otherwise, each after
// backendDelay.
func failEveryFourth() http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(backendDelay)
		if n.Add(1)%4 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
		_, _ = io.WriteString(w, "reviews\n")
	})
}

// envoyBootstrap routes everything to the canary cluster; the stable cluster exists but
// gets nothing. Stats flush every second so that histograms reach /stats/prometheus fast.
const envoyBootstrap = `
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: %[1]d}}
stats_flush_interval: 1s
static_resources:
  listeners:
  - name: outbound
    address: {socket_address: {address: 127.0.0.1, port_value: %[2]d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: outbound
          route_config:
            virtual_hosts:
            - name: reviews
              domains: ["*"]
              routes:
              - match: {prefix: /}
                route: {cluster: %[3]q}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: %[3]q
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: %[3]q
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[5]s}}}
  - name: %[4]q
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: %[4]q
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[5]s}}}
`

func startEnvoy(t *testing.T, bin, dir string, adminPort, listenPort int, backend string) {
	t.Helper()
	_, backendPort, _ := strings.Cut(backend, ":")
	path := filepath.Join(dir, "envoy.yaml")
	config := fmt.Sprintf(envoyBootstrap, adminPort, listenPort, canaryCluster, stableCluster, backendPort)
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	done := startProcess(t, "envoy", filepath.Join(dir, "envoy.log"), bin,
		"-c", path, "--base-id", fmt.Sprint(adminPort), "--concurrency", "1", "--log-level", "warn")
	waitHTTP(t, "envoy", done, fmt.Sprintf("http://127.0.0.1:%d/ready", adminPort))
}

const prometheusConfig = `
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
- job_name: envoy
  metrics_path: /stats/prometheus
  static_configs:
  - targets: ["127.0.0.1:%d"]
`

func startPrometheus(t *testing.T, bin, dir string, port, envoyAdminPort int) {
	t.Helper()
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, fmt.Appendf(nil, prometheusConfig, envoyAdminPort), 0o644); err != nil {
		t.Fatal(err)
	}
	done := startProcess(t, "prometheus", filepath.Join(dir, "prometheus.log"), bin,
		"--config.file="+path,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--log.level=warn")
	waitHTTP(t, "prometheus", done, fmt.Sprintf("http://127.0.0.1:%d/-/ready", port))
}

// startProcess runs bin with its output in logPath, stops it when the test ends and
// prints the log's end if the test failed. The returned channel closes when it exits.
func startProcess(t *testing.T, name, logPath, bin string, args ...string) <-chan struct{} {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, and killed with the test binary if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("%s log (end):\n%s", name, lastBytes(log, 4000))
		}
	})
	return done
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitHTTP waits for url to answer 200, failing early if the process exits.
func waitHTTP(t *testing.T, name string, exited <-chan struct{}, target string) {
	t.Helper()
	client := http.Client{Timeout: time.Second}
	waitFor(t, name+" ready", func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready", name)
		default:
		}
		resp, err := client.Get(target)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// waitFor polls cond until it holds, at most waitTimeout.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v: %s", what, waitTimeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitValue waits for Prometheus' latest value of expr to be want.
func waitValue(t *testing.T, value func(string) (outcome, error), expr string, want float64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s = %v", expr, want), func() (bool, string) {
		got, err := value(expr)
		return err == nil && !got.noData && got.value == want, fmt.Sprintf("got %+v, err %v", got, err)
	})
}

// lastScrape is when Prometheus last scraped the canary's response counters.
func lastScrape(value func(string) (outcome, error)) (time.Time, error) {
	got, err := value("max(timestamp(" + canaryResponses + "))")
	if err != nil {
		return time.Time{}, err
	}
	if got.noData {
		return time.Time{}, fmt.Errorf("no scrape yet")
	}
	return time.UnixMilli(int64(math.Round(got.value * 1000))), nil
}

// send makes n requests through Envoy from a few clients at once; each must come back 200
// or the backend's 500 (an Envoy-made 503 would mean the route or cluster is wrong).
func send(t *testing.T, port, n int) {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	target := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var (
		left atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, senders)
	)
	left.Store(int64(n))
	for range senders {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := get(&client, target); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func get(client *http.Client, target string) error {
	resp, err := client.Get(target)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusInternalServerError {
		return fmt.Errorf("GET %s: %s, want 200 or the backend's 500", target, resp.Status)
	}
	return nil
}

// checkEnvoySeries guards the naming clusterSelector relies on with a clearer message
// than an empty query result: the cluster_name tag stops at the first dot and the rest of
// the cluster name is in the metric name.
func checkEnvoySeries(t *testing.T, adminPort int) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/stats/prometheus", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "envoy_cluster_default_svc_cluster_local_upstream_rq_xx{") &&
			strings.Contains(line, `envoy_response_code_class="5"`) &&
			strings.Contains(line, `envoy_cluster_name="outbound|8080|canary|reviews"`) {
			return
		}
	}
	var related []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.Contains(line, "upstream_rq_xx") && strings.Contains(line, "canary") {
			related = append(related, line)
		}
	}
	t.Fatalf("Envoy no longer names %s's 5xx counter as clusterSelector expects; its upstream_rq_xx lines:\n%s",
		canaryCluster, strings.Join(related, "\n"))
}
