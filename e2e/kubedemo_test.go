package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/e2e/backend"
)

// demoPod is the Kubernetes demo's productpage pod as the kubelet would start its
// sidecar: the bootstrap from the weir-sidecar ConfigMap and the envoy container's args
// with $(VAR) expanded from its downward-API env.
type demoPod struct {
	bootstrap string   // envoy.yaml of the ConfigMap
	args      []string // after expansion; --config-path still names the in-pod file
	labels    map[string]string
}

func readDemoPod(t *testing.T, podName, namespace string) demoPod {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var pod demoPod
	for _, doc := range yamlDocs(t, filepath.Join(root, "deploy/demo/sidecar-bootstrap.yaml")) {
		var cm corev1.ConfigMap
		if err := yaml.Unmarshal(doc, &cm); err != nil {
			t.Fatal(err)
		}
		pod.bootstrap = cm.Data["envoy.yaml"]
	}
	var d *appsv1.Deployment
	for _, doc := range yamlDocs(t, filepath.Join(root, "deploy/demo/bookinfo.yaml")) {
		var dd appsv1.Deployment
		if err := yaml.Unmarshal(doc, &dd); err != nil {
			t.Fatal(err)
		}
		if dd.Kind == "Deployment" && dd.Name == "productpage-v1" {
			d = &dd
		}
	}
	if pod.bootstrap == "" || d == nil {
		t.Fatal("no weir-sidecar ConfigMap or productpage-v1 Deployment in deploy/demo")
	}
	pod.labels = d.Spec.Template.Labels
	i := slices.IndexFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == "envoy" })
	if i < 0 {
		t.Fatal("productpage-v1 has no envoy container")
	}
	c := d.Spec.Template.Spec.Containers[i]
	if !slices.Equal(c.Command, []string{"envoy"}) {
		t.Fatalf("the sidecar runs %q, not envoy", c.Command)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch p := e.ValueFrom.FieldRef.FieldPath; {
		case p == "metadata.name":
			env[e.Name] = podName
		case p == "metadata.namespace":
			env[e.Name] = namespace
		case strings.HasPrefix(p, "metadata.labels['"):
			env[e.Name] = pod.labels[strings.TrimSuffix(strings.TrimPrefix(p, "metadata.labels['"), "']")]
		default:
			t.Fatalf("a downward field this test does not resolve: %s", p)
		}
	}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, a := range c.Args {
		pod.args = append(pod.args, ref.ReplaceAllStringFunc(a, func(m string) string {
			return env[ref.FindStringSubmatch(m)[1]]
		}))
	}
	return pod
}

func yamlDocs(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---$`).Split(string(b), -1) {
		out = append(out, []byte(d))
	}
	return out
}

// withConfigPath returns args with --config-path's value replaced.
func withConfigPath(t *testing.T, args []string, path string) []string {
	t.Helper()
	out := slices.Clone(args)
	i := slices.Index(out, "--config-path")
	if i < 0 || i+1 >= len(out) {
		t.Fatalf("no --config-path in %q", args)
	}
	out[i+1] = path
	return out
}

// TestKubeDemoSidecarValidates: Envoy accepts the demo pods' bootstrap and arguments
// exactly as a pod passes them (validation resolves no DNS, so weir's Service name
// stays as written).
func TestKubeDemoSidecarValidates(t *testing.T) {
	pod := readDemoPod(t, "productpage-v1-5d4f8c7b9-x2x7q", "default")
	path := filepath.Join(t.TempDir(), "envoy.yaml")
	if err := os.WriteFile(path, []byte(pod.bootstrap), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--mode", "validate"}, withConfigPath(t, pod.args, path)...)
	out, err := exec.Command(EnvoyBinary(t), args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("envoy %q: %v\n%s", args, err, out)
	}
}

// TestKubeDemoSidecarIsServed runs the demo pod's sidecar against weir, with only the
// addresses a pod has and a test machine does not rewritten (weir's Service name to
// 127.0.0.1 and the ports to free ones), in a namespace other than default, as after
// `kubectl apply -n bookinfo`. weir must see the pod's namespace and labels, and an
// application using the sidecar as its http_proxy must get the demo's routing: the
// seed's VirtualService sends reviews to subsets v1 and v2 only, never to v3.
func TestKubeDemoSidecarIsServed(t *testing.T) {
	const namespace = "bookinfo"
	pod := readDemoPod(t, "productpage-v1-5d4f8c7b9-x2x7q", namespace)
	env := NewEnv(t)
	bs := env.StartBackends("v1", "v2", "v3")
	env.WriteFile("services.yaml", ServicePods("reviews", namespace, 9080, true, bs))
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var traffic []string
	for _, doc := range yamlDocs(t, filepath.Join(root, "deploy/demo/reviews-traffic.yaml")) {
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		obj["metadata"].(map[string]any)["namespace"] = namespace // what kubectl apply -n does
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		traffic = append(traffic, string(b))
	}
	env.WriteFile("reviews-traffic.yaml", strings.Join(traffic, "---\n"))
	w := env.StartWeir()

	v := &Envoy{env: env, AdminPort: FreePort(t, "127.0.0.1"), OutboundPort: FreePort(t, "127.0.0.1")}
	bootstrap := pod.bootstrap
	for from, to := range map[string]string{
		"weir.weir-system.svc.cluster.local": "127.0.0.1",
		"port_value: 18000":                  fmt.Sprintf("port_value: %d", env.XDSPort),
		"port_value: 15000":                  fmt.Sprintf("port_value: %d", v.AdminPort),
		"outbound_port: 15001":               fmt.Sprintf("outbound_port: %d", v.OutboundPort),
	} {
		if n := strings.Count(bootstrap, from); n != 1 {
			t.Fatalf("the demo bootstrap has %q %d times, want once", from, n)
		}
		bootstrap = strings.Replace(bootstrap, from, to, 1)
	}
	path := env.logPath("bootstrap-kube-demo.yaml")
	if err := os.WriteFile(path, []byte(bootstrap), 0o644); err != nil {
		t.Fatal(err)
	}
	args := withConfigPath(t, pod.args, path)
	v.NodeID = "productpage-v1-5d4f8c7b9-x2x7q." + namespace
	p, err := startProcess("envoy kube-demo", env.logPath("envoy-kube-demo.log"), os.Environ(), EnvoyBinary(t), args...)
	if err != nil {
		t.Fatal(err)
	}
	v.process = p
	env.mu.Lock()
	env.envoys = append(env.envoys, v)
	env.mu.Unlock()
	v.waitAdmin(t)
	v.WaitReady(t)

	proxy := w.WaitProxy(t, v.NodeID)
	for _, want := range []string{"|" + namespace + "|", "app=productpage,version=v1"} {
		if !strings.Contains(proxy.Class, want) {
			t.Errorf("weir sees the sidecar as class %q, without %q", proxy.Class, want)
		}
	}

	// As an application with http_proxy set sends it: the absolute URI on the request line.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: v.OutboundAddr()}),
	}}
	served := map[string]int{}
	for range 60 {
		resp, err := client.Get("http://reviews:9080/reviews/0")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var echo backend.Response
		if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(body, &echo) != nil {
			t.Fatalf("GET http://reviews:9080/reviews/0 through the sidecar: %d %v\n%s", resp.StatusCode, err, body)
		}
		served[echo.Version]++
	}
	t.Logf("served: %v", served)
	if served["v3"] > 0 || served["v1"] == 0 {
		t.Errorf("served %v: want v1 and v2 only (90/10), as reviews-canary says", served)
	}
}
