// Package kubeapi runs a real kube-apiserver and etcd for one test, so that weir's
// Kubernetes code meets the server it will meet in a cluster, not a fake.
//
// There are no nodes, controllers or scheduler: objects are stored and served, admission
// and validation run, nothing reconciles them.
package kubeapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/weir-mesh/weir/e2e/proc"
)

// TB is the part of testing.TB the cluster needs (see proc.TB).
type TB = proc.TB

// Timeouts every wait is bounded by. The API server's start is slow on a loaded
// two-core machine: it installs every built-in API and bootstraps RBAC before /readyz.
const (
	etcdStartTimeout = 30 * time.Second
	apiStartTimeout  = 2 * time.Minute
	apiStopTimeout   = 5 * time.Second
	etcdStopTimeout  = 10 * time.Second
)

// ServiceClusterIPRange is the range Services get their cluster IPs from. Nothing routes
// it: the addresses are data on Service objects.
const ServiceClusterIPRange = "10.96.0.0/16"

// Cluster is one test's etcd and kube-apiserver. Start returns it running; the test's
// cleanup stops both, and if the test failed prints the end of their logs and keeps them.
type Cluster struct {
	// Config reaches the API server as the admin (a static token in system:masters) over
	// TLS checked against the server's self-signed certificate. Copy it before changing
	// it (rest.CopyConfig, or ConfigAs).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file with the same server and credentials.
	Kubeconfig string

	t       TB
	logDir  string
	certDir string
	apiBin  string
	apiArgs []string
	apiURL  string
	token   string
	etcd    *process

	mu      sync.Mutex
	api     *process // nil while stopped
	stopped bool
}

// Start runs etcd and kube-apiserver on free loopback ports and waits until the API
// server is ready. A missing binary fails the test and names the make target that
// installs it.
func Start(t TB) *Cluster {
	t.Helper()
	apiBin, err := findAPIServer()
	if err != nil {
		t.Fatalf("%v", err)
	}
	etcdBin, err := findEtcd()
	if err != nil {
		t.Fatalf("%v", err)
	}
	dir := t.TempDir()
	c := &Cluster{
		t:          t,
		logDir:     filepath.Join(dir, "logs"),
		certDir:    filepath.Join(dir, "certs"),
		apiBin:     apiBin,
		Kubeconfig: filepath.Join(dir, "kubeconfig"),
	}
	for _, d := range []string{c.logDir, c.certDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("%v", err)
		}
	}
	t.Cleanup(c.Stop) // after TempDir, so it runs before the directory is removed

	etcdURL, err := c.startEtcd(etcdBin, filepath.Join(dir, "etcd"))
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := c.prepareAPIServer(dir, etcdURL); err != nil {
		t.Fatalf("prepare kube-apiserver: %v", err)
	}
	c.StartAPIServer(t)

	ca, err := os.ReadFile(filepath.Join(c.certDir, "apiserver.crt"))
	if err != nil {
		t.Fatalf("kube-apiserver's serving certificate: %v", err)
	}
	c.Config = &rest.Config{
		Host:            c.apiURL,
		BearerToken:     c.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS:             100, // client-go's default of 5 would make tests wait on themselves
		Burst:           200,
	}
	if err := writeKubeconfig(c.Kubeconfig, c.Config); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}
	return c
}

// ConfigAs is the admin's Config impersonating user in groups: the way to test what
// RBAC lets an identity do, such as a service account
// ("system:serviceaccount:NAMESPACE:NAME").
// KubeconfigAs writes a kubeconfig that acts as user (impersonated by the admin), for a
// process that must run with only that user's rights.
func (c *Cluster) KubeconfigAs(t TB, user string, groups ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig-as")
	if err := writeKubeconfig(path, c.ConfigAs(user, groups...)); err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	return path
}

func (c *Cluster) ConfigAs(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

func (c *Cluster) startEtcd(bin, dataDir string) (string, error) {
	clientPort, err := freePort()
	if err != nil {
		return "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	c.etcd, err = startProcess("etcd", filepath.Join(c.logDir, "etcd.log"), bin,
		"--name=weir-test",
		"--data-dir="+dataDir,
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=weir-test="+peerURL,
		"--initial-cluster-state=new",
	)
	if err != nil {
		return "", err
	}
	health := func() error { return getOK(http.DefaultClient, clientURL+"/health", "", `"health":"true"`) }
	if err := c.etcd.WaitFor(etcdStartTimeout, health); err != nil {
		return "", fmt.Errorf("%w; log:\n%s", err, tailFile(c.etcd.LogPath, 30))
	}
	return clientURL, nil
}

func (c *Cluster) prepareAPIServer(dir, etcdURL string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	saKey := filepath.Join(dir, "service-account.key")
	if err := writeServiceAccountKey(saKey); err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if c.token, err = writeTokenFile(tokens); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	c.apiURL = fmt.Sprintf("https://127.0.0.1:%d", port)
	c.apiArgs = []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + c.certDir, // the server signs its own serving certificate here
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=" + ServiceClusterIPRange,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		// No controller manager creates namespaces' default service accounts, which the
		// ServiceAccount admission plugin would require of every Pod.
		"--disable-admission-plugins=ServiceAccount",
		// The "kubernetes" Service's endpoints would name a loopback address, which
		// EndpointSlice validation rejects; nothing here needs them.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	}
	return nil
}

// StartAPIServer starts kube-apiserver, stopped by StopAPIServer, on its old port with
// its old certificate, so Config and every client made from it work again.
func (c *Cluster) StartAPIServer(t TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.api != nil {
		t.Fatalf("StartAPIServer: kube-apiserver is running or the cluster was stopped")
	}
	p, err := startProcess("kube-apiserver", filepath.Join(c.logDir, "kube-apiserver.log"), c.apiBin, c.apiArgs...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	c.api = p
	if err := p.WaitFor(apiStartTimeout, c.ready); err != nil {
		t.Fatalf("%v; log:\n%s", err, tailFile(p.LogPath, 40))
	}
}

// StopAPIServer stops kube-apiserver (SIGTERM, the way a rolling control plane stops
// it) and leaves etcd running, so what weir does without an API server can be observed.
func (c *Cluster) StopAPIServer(t TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.api == nil {
		t.Fatalf("StopAPIServer: kube-apiserver is not running")
	}
	p := c.api
	c.api = nil
	if !p.Running() {
		t.Fatalf("kube-apiserver had exited by itself (%v); log:\n%s", p.Err(), tailFile(p.LogPath, 40))
	}
	// With clients' watches open, kube-apiserver can take longer to drain than a test
	// should wait; it is then killed, which is also a way control planes go down.
	if err := p.stop(apiStopTimeout); err != nil {
		t.Logf("%v", err)
	}
}

// RestartAPIServer is StopAPIServer then StartAPIServer; etcd keeps every object.
func (c *Cluster) RestartAPIServer(t TB) {
	t.Helper()
	c.StopAPIServer(t)
	c.StartAPIServer(t)
}

// Stop stops kube-apiserver and etcd and reaps them. It runs in the test's cleanup;
// calling it earlier is allowed, and later calls do nothing.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped = true
	t := c.t
	if c.api != nil && !c.api.Running() {
		t.Errorf("kube-apiserver exited during the test: %v", c.api.Err())
	}
	if t.Failed() {
		c.printLogs()
	}
	if c.api != nil {
		if err := c.api.stop(apiStopTimeout); err != nil {
			t.Logf("%v", err) // see StopAPIServer
		}
		c.api = nil
	}
	if c.etcd != nil {
		if err := c.etcd.stop(etcdStopTimeout); err != nil {
			t.Errorf("%v", err)
		}
	}
	if t.Failed() {
		c.keepLogs()
	}
}

func (c *Cluster) printLogs() {
	for _, f := range []struct {
		name  string
		lines int
	}{{"kube-apiserver.log", 80}, {"etcd.log", 30}} {
		path := filepath.Join(c.logDir, f.name)
		c.t.Logf("==== %s (last %d lines of %s) ====\n%s", f.name, f.lines, path, tailFile(path, f.lines))
	}
}

// keepLogs copies a failed test's logs to e2e/testlogs/<test>/ (git-ignored), as the e2e
// harness does.
func (c *Cluster) keepLogs() {
	root, err := repoRoot()
	if err != nil {
		return
	}
	dst := filepath.Join(root, "e2e", "testlogs", strings.ReplaceAll(c.t.Name(), "/", "_"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return
	}
	entries, _ := os.ReadDir(c.logDir)
	for _, ent := range entries {
		if data, err := os.ReadFile(filepath.Join(c.logDir, ent.Name())); err == nil {
			_ = os.WriteFile(filepath.Join(dst, ent.Name()), data, 0o644)
		}
	}
	c.t.Logf("logs kept in %s", dst)
}

// ready asks /readyz, which answers 200 once every built-in API is served, RBAC's default
// roles exist and the CRD informers have synced. The certificate is checked against the
// one the server wrote into its cert dir.
func (c *Cluster) ready() error {
	ca, err := os.ReadFile(filepath.Join(c.certDir, "apiserver.crt"))
	if err != nil {
		return errors.New("no serving certificate yet")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return errors.New("serving certificate not written yet")
	}
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	defer client.CloseIdleConnections()
	return getOK(client, c.apiURL+"/readyz?verbose", c.token, "")
}

// getOK GETs url and wants 200 and, if want is not empty, a body containing it. The
// error carries the lines of a readyz body that report a failed check.
func getOK(client *http.Client, url, token, want string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK && strings.Contains(string(body), want) {
		return nil
	}
	var failed []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "[-]") {
			failed = append(failed, line)
		}
	}
	if len(failed) == 0 {
		failed = []string{strings.TrimSpace(string(body))}
	}
	return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.Join(failed, "; "))
}
