package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Weir is one run of `weir serve` on the Env's config directory and reserved ports.
type Weir struct {
	*process
	env       *Env
	XDSAddr   string
	AdminAddr string
}

// DebugProxies is weir's /debug/proxies answer.
type DebugProxies struct {
	Proxies []ProxyStatus `json:"proxies"`
}

// ProxyStatus is one connected proxy; Types is keyed by cds, eds, lds, rds.
type ProxyStatus struct {
	NodeID      string                `json:"node_id"`
	Class       string                `json:"class"`
	Delta       bool                  `json:"delta"`
	ConnectedAt string                `json:"connected_at"`
	Types       map[string]TypeStatus `json:"types"`
}

// TypeStatus is what weir sent one proxy of one resource type and what it acknowledged.
type TypeStatus struct {
	SentVersion  string `json:"sent_version"`
	AckedVersion string `json:"acked_version"`
	Nacks        int    `json:"nacks"`
	LastNack     *Nack  `json:"last_nack,omitempty"`
}

// Nack is the last rejection of one resource type by one proxy.
type Nack struct {
	Version string   `json:"version"`
	Error   string   `json:"error"`
	Sources []string `json:"sources"`
	At      string   `json:"at"`
}

// Proxy returns the status of nodeID, if connected.
func (d DebugProxies) Proxy(nodeID string) (ProxyStatus, bool) {
	for _, p := range d.Proxies {
		if p.NodeID == nodeID {
			return p, true
		}
	}
	return ProxyStatus{}, false
}

// WeirOption changes how StartWeir runs weir.
type WeirOption func(*weirConfig)

type weirConfig struct {
	env       []string
	args      []string
	waitReady bool
}

// WithWeirArgs adds flags to `weir serve`.
func WithWeirArgs(args ...string) WeirOption {
	return func(c *weirConfig) { c.args = append(c.args, args...) }
}

// WithWeirEnv adds KEY=VALUE to weir's environment.
func WithWeirEnv(kv ...string) WeirOption {
	return func(c *weirConfig) { c.env = append(c.env, kv...) }
}

// StartWeir runs `weir serve` and waits for /readyz (the first snapshot published).
func (e *Env) StartWeir(opts ...WeirOption) *Weir {
	e.t.Helper()
	cfg := weirConfig{waitReady: true}
	for _, o := range opts {
		o(&cfg)
	}
	e.mu.Lock()
	if e.weir != nil && e.weir.Running() {
		e.mu.Unlock()
		e.t.Fatalf("StartWeir: weir is already running")
	}
	e.weirRuns++
	logPath := e.logPath(fmt.Sprintf("weir-%d.log", e.weirRuns))
	e.mu.Unlock()

	w := &Weir{
		env:       e,
		XDSAddr:   fmt.Sprintf("127.0.0.1:%d", e.XDSPort),
		AdminAddr: fmt.Sprintf("127.0.0.1:%d", e.AdminPort),
	}
	args := append([]string{"serve", "--config-dir", e.ConfigDir, "--xds-address", w.XDSAddr, "--admin-address", w.AdminAddr}, cfg.args...)
	p, err := startProcess("weir", logPath, weirEnviron(cfg.env), WeirBinary(e.t), args...)
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	w.process = p
	e.mu.Lock()
	e.weir = w
	e.mu.Unlock()
	if cfg.waitReady {
		w.WaitReady(e.t)
	}
	return w
}

// weirEnviron is the test's environment without weir's test hooks, plus extra.
func weirEnviron(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WEIR_TEST_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// WaitReady waits until /readyz answers 200.
func (w *Weir) WaitReady(t TB) {
	t.Helper()
	began := time.Now()
	ok := poll(startTimeout, 50*time.Millisecond, func() bool {
		if !w.Running() {
			return true
		}
		resp, err := http.Get("http://" + w.AdminAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !w.Running() {
		t.Fatalf("weir exited before it was ready (%v); log:\n%s", w.Err(), tailFile(w.LogPath, 40))
	}
	if !ok {
		t.Fatalf("weir not ready on %s/readyz after %v", w.AdminAddr, startTimeout)
	}
	t.Logf("weir ready in %v (xds %s, admin %s)", time.Since(began).Round(time.Millisecond), w.XDSAddr, w.AdminAddr)
}

// Stop sends SIGTERM and expects weir to exit cleanly (status 0) within stopTimeout.
func (w *Weir) Stop(t TB) {
	t.Helper()
	err, killed := w.Terminate(stopTimeout)
	switch {
	case killed:
		t.Errorf("weir did not exit within %v of SIGTERM; log:\n%s", stopTimeout, tailFile(w.LogPath, 30))
	case err != nil:
		t.Errorf("weir exited uncleanly on SIGTERM: %v; log:\n%s", err, tailFile(w.LogPath, 30))
	}
}

func (w *Weir) get(path string) (string, error) {
	return httpGet("http://"+w.AdminAddr, path, "weir")
}

func (w *Weir) debugProxies() (DebugProxies, error) {
	var dp DebugProxies
	body, err := w.get("/debug/proxies")
	if err != nil {
		return dp, err
	}
	if err := json.Unmarshal([]byte(body), &dp); err != nil {
		return dp, fmt.Errorf("decode /debug/proxies: %w: %s", err, truncate(body, 500))
	}
	return dp, nil
}

// DebugProxies fetches /debug/proxies.
func (w *Weir) DebugProxies(t TB) DebugProxies {
	t.Helper()
	dp, err := w.debugProxies()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return dp
}

// WaitProxy waits until nodeID is listed as connected in /debug/proxies.
func (w *Weir) WaitProxy(t TB, nodeID string) ProxyStatus {
	t.Helper()
	var p ProxyStatus
	if !poll(convergeTimeout, 50*time.Millisecond, func() bool {
		dp, err := w.debugProxies()
		if err != nil {
			return false
		}
		var ok bool
		p, ok = dp.Proxy(nodeID)
		return ok
	}) {
		t.Fatalf("proxy %s not in weir's /debug/proxies within %v", nodeID, convergeTimeout)
	}
	return p
}

// WaitAcked waits until nodeID is connected and has acknowledged the version weir sent
// it for each of types (default: cds, eds, lds, rds).
func (w *Weir) WaitAcked(t TB, nodeID string, types ...string) ProxyStatus {
	t.Helper()
	if len(types) == 0 {
		types = []string{"cds", "eds", "lds", "rds"}
	}
	var last ProxyStatus
	ok := poll(convergeTimeout, 50*time.Millisecond, func() bool {
		dp, err := w.debugProxies()
		if err != nil {
			return false
		}
		p, found := dp.Proxy(nodeID)
		if !found {
			return false
		}
		last = p
		for _, typ := range types {
			st, ok := p.Types[typ]
			if !ok || st.SentVersion == "" || st.AckedVersion != st.SentVersion {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("proxy %s has not acked %v within %v; last status: %+v", nodeID, types, convergeTimeout, last)
	}
	return last
}

// Metric sums every series of a Prometheus counter or gauge on /metrics. A metric that
// is absent is an error: the contract names it.
func (w *Weir) Metric(t TB, name string) float64 {
	t.Helper()
	body, err := w.get("/metrics")
	if err != nil {
		t.Fatalf("%v", err)
	}
	v, err := sumMetric(body, name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return v
}

func sumMetric(exposition, name string) (float64, error) {
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // a longer name with this prefix
		}
		fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %q: %w", name, line, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("metric %s not on /metrics", name)
	}
	return sum, nil
}

// LogSize marks the current end of weir's log, for WaitLog.
func (w *Weir) LogSize() int64 {
	st, err := os.Stat(w.LogPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// WaitLog waits until one line written after offset contains every one of substrings,
// and returns that line.
func (w *Weir) WaitLog(t TB, offset int64, substrings ...string) string {
	t.Helper()
	var found string
	ok := poll(convergeTimeout, 50*time.Millisecond, func() bool {
		data, err := os.ReadFile(w.LogPath)
		if err != nil || int64(len(data)) < offset {
			return false
		}
		for _, line := range strings.Split(string(data[offset:]), "\n") {
			if containsAll(line, substrings) {
				found = line
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("weir's log has no line with all of %q within %v; new log lines:\n%s",
			substrings, convergeTimeout, tailFile(w.LogPath, 30))
	}
	return found
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// Validate runs `weir validate` on the config directory and returns its combined output
// and exit status.
func (e *Env) Validate(t TB) (output string, status int) {
	t.Helper()
	return ValidateDir(t, e.ConfigDir)
}

// ValidateDir runs `weir validate dir`.
func ValidateDir(t TB, dir string) (output string, status int) {
	t.Helper()
	cmd := exec.Command(WeirBinary(t), "validate", dir)
	cmd.Env = weirEnviron(nil)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("weir validate %s did not finish in 30s", dir)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("weir validate: %v", err)
		return "", -1
	}
}

// Kill ends weir with SIGKILL: no shutdown, no last write.
func (w *Weir) Kill(t TB) {
	t.Helper()
	if err := w.process.Kill(); err != nil {
		t.Fatalf("%v", err)
	}
}
