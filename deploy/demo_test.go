package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/api/crd"
)

func demoDeployments(t *testing.T, ms []manifest) []*appsv1.Deployment {
	t.Helper()
	ds := objects[*appsv1.Deployment](ms, "demo")
	if len(ds) < 6 {
		t.Fatalf("want productpage, reviews v1-v3, ratings and curl; got %d Deployments", len(ds))
	}
	return ds
}

func container(pod corev1.PodSpec, name string) *corev1.Container {
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			return &pod.Containers[i]
		}
	}
	return nil
}

// TestDemoSidecarsAreOneSpec: every demo pod runs the same sidecar container, so what
// the other tests prove of one holds for all.
func TestDemoSidecarsAreOneSpec(t *testing.T) {
	ds := demoDeployments(t, loadManifests(t))
	first := container(ds[0].Spec.Template.Spec, "envoy")
	for _, d := range ds {
		pod := d.Spec.Template.Spec
		envoy := container(pod, "envoy")
		if envoy == nil || len(pod.Containers) != 2 {
			t.Errorf("%s: want an application container and an envoy sidecar", d.Name)
			continue
		}
		if diff := cmp.Diff(first, envoy); diff != "" {
			t.Errorf("%s's sidecar differs from %s's (-%s +%s):\n%s", d.Name, ds[0].Name, ds[0].Name, d.Name, diff)
		}
		if d.Namespace != "" {
			t.Errorf("%s names namespace %q; the demo goes where it is applied", d.Name, d.Namespace)
		}
	}
}

// downward resolves an env var's downward-API field for a pod.
func downward(t *testing.T, ref *corev1.ObjectFieldSelector, name, namespace string, labels map[string]string) string {
	t.Helper()
	switch p := ref.FieldPath; {
	case p == "metadata.name":
		return name
	case p == "metadata.namespace":
		return namespace
	case strings.HasPrefix(p, "metadata.labels['") && strings.HasSuffix(p, "']"):
		key := strings.TrimSuffix(strings.TrimPrefix(p, "metadata.labels['"), "']")
		v, ok := labels[key]
		if !ok {
			t.Errorf("the sidecar reads label %q, which the pod does not have", key)
		}
		return v
	default:
		t.Fatalf("a downward field this test does not resolve: %s", p)
		return ""
	}
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand does what the kubelet does to a container's args: $(VAR) becomes the value of
// the container's env var VAR. An undefined one would be left as written and reach Envoy.
func expand(t *testing.T, s string, env map[string]string) string {
	t.Helper()
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := varRef.FindStringSubmatch(ref)[1]
		v, ok := env[name]
		if !ok {
			t.Errorf("%s is not in the sidecar's env: Kubernetes would pass it on unexpanded", ref)
		}
		return v
	})
}

// sidecarArgs returns a demo pod's sidecar args as the kubelet passes them, for a pod
// of the Deployment named podName in namespace.
func sidecarArgs(t *testing.T, d *appsv1.Deployment, podName, namespace string) []string {
	t.Helper()
	envoy := container(d.Spec.Template.Spec, "envoy")
	env := map[string]string{}
	for _, e := range envoy.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			env[e.Name] = downward(t, e.ValueFrom.FieldRef, podName, namespace, d.Spec.Template.Labels)
		case e.ValueFrom == nil:
			env[e.Name] = expand(t, e.Value, env)
		default:
			t.Fatalf("env %s: a source this test does not resolve", e.Name)
		}
	}
	var args []string
	for _, a := range envoy.Args {
		args = append(args, expand(t, a, env))
	}
	return args
}

func flagValue(args []string, name string) (string, bool) {
	i := slices.Index(args, name)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

// TestDemoSidecarsTellWeirWhoTheyAre: after the kubelet's expansion, each sidecar's
// --config-yaml gives weir a unique node id, the workload as node.cluster, the pod's
// namespace, and the labels the DestinationRule subsets and Sidecar selectors match on.
func TestDemoSidecarsTellWeirWhoTheyAre(t *testing.T) {
	ms := loadManifests(t)
	configMaps := map[string]*corev1.ConfigMap{}
	for _, cm := range objects[*corev1.ConfigMap](ms, "demo") {
		configMaps[cm.Name] = cm
	}
	ids := map[string]bool{}
	for _, d := range demoDeployments(t, ms) {
		t.Run(d.Name, func(t *testing.T) {
			podName := d.Name + "-5d4f8c7b9-x2x7q"
			args := sidecarArgs(t, d, podName, "default")
			raw, ok := flagValue(args, "--config-yaml")
			if !ok {
				t.Fatalf("no --config-yaml in %q", args)
			}
			var override struct {
				Node struct {
					ID       string `json:"id"`
					Cluster  string `json:"cluster"`
					Metadata struct {
						Namespace string            `json:"namespace"`
						Labels    map[string]string `json:"labels"`
					} `json:"metadata"`
				} `json:"node"`
			}
			if err := yaml.UnmarshalStrict([]byte(raw), &override); err != nil {
				t.Fatalf("--config-yaml %s: %v", raw, err)
			}
			n := override.Node
			if n.ID == "" || ids[n.ID] {
				t.Errorf("node id %q is empty or not unique", n.ID)
			}
			ids[n.ID] = true
			labels := d.Spec.Template.Labels
			if n.Cluster != labels["app"] || n.Metadata.Namespace != "default" {
				t.Errorf("node cluster %q, namespace %q; want %q, default", n.Cluster, n.Metadata.Namespace, labels["app"])
			}
			if diff := cmp.Diff(labels, n.Metadata.Labels); diff != "" {
				t.Errorf("node labels are not the pod's (-pod +node):\n%s", diff)
			}

			// The bootstrap file Envoy is pointed at is the weir-sidecar ConfigMap's.
			file, _ := flagValue(args, "--config-path")
			var mounted *corev1.ConfigMap
			envoy := container(d.Spec.Template.Spec, "envoy")
			for _, m := range envoy.VolumeMounts {
				for _, v := range d.Spec.Template.Spec.Volumes {
					if v.Name == m.Name && v.ConfigMap != nil && m.MountPath == path.Dir(file) {
						mounted = configMaps[v.ConfigMap.Name]
					}
				}
			}
			if mounted == nil || mounted.Data[path.Base(file)] == "" {
				t.Errorf("--config-path %s is not a key of a demo ConfigMap mounted there", file)
			}
		})
	}
}

func TestDemoServicesReachTheirPods(t *testing.T) {
	ms := loadManifests(t)
	ds := demoDeployments(t, ms)
	for _, svc := range objects[*corev1.Service](ms, "demo") {
		selected := 0
		for _, d := range ds {
			matches := len(svc.Spec.Selector) > 0
			for k, v := range svc.Spec.Selector {
				matches = matches && d.Spec.Template.Labels[k] == v
			}
			if !matches {
				continue
			}
			selected++
			app := container(d.Spec.Template.Spec, d.Spec.Template.Labels["app"])
			for _, p := range svc.Spec.Ports {
				if app == nil || !slices.ContainsFunc(app.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.String() }) {
					t.Errorf("service %s port %s targets %s, which %s's application container does not name", svc.Name, p.Name, p.TargetPort.String(), d.Name)
				}
			}
		}
		if selected == 0 {
			t.Errorf("service %s selects no demo pods", svc.Name)
		}
	}
}

// yamlDoc decodes YAML into a generic value, for comparing documents whatever their
// layout.
func yamlDoc(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mapAt(t *testing.T, m map[string]any, keys ...string) map[string]any {
	t.Helper()
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("no map at %s", strings.Join(keys, "."))
		}
		m = next
	}
	return m
}

// TestSidecarBootstrapFollowsEnvoyConfigs holds the pods' bootstrap to
// envoy-configs/sidecar.yaml: the same file but for what a pod must change (the comment
// at the top of sidecar-bootstrap.yaml). A change to the stats sink, the ADS settings or
// the admin address there fails this test until the ConfigMap follows.
func TestSidecarBootstrapFollowsEnvoyConfigs(t *testing.T) {
	ms := loadManifests(t)
	var cm *corev1.ConfigMap
	for _, c := range objects[*corev1.ConfigMap](ms, "demo") {
		if c.Name == "weir-sidecar" {
			cm = c
		}
	}
	if cm == nil {
		t.Fatal("no ConfigMap weir-sidecar in deploy/demo")
	}
	b, err := os.ReadFile("../envoy-configs/sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := yamlDoc(t, b)
	node := mapAt(t, want, "node")
	// Given per pod through --config-yaml, or not known in a pod.
	for _, k := range []string{"id", "cluster", "locality"} {
		delete(node, k)
	}
	for _, k := range []string{"namespace", "labels"} {
		delete(mapAt(t, node, "metadata"), k)
	}
	// weir is a Service name in the cluster.
	xds := mapAt(t, want, "static_resources")["clusters"].([]any)[0].(map[string]any)
	xds["type"] = "STRICT_DNS"
	xds["dns_lookup_family"] = "V4_PREFERRED"
	addr := mapAt(t, xds, "load_assignment")["endpoints"].([]any)[0].(map[string]any)["lb_endpoints"].([]any)[0].(map[string]any)
	mapAt(t, addr, "endpoint", "address", "socket_address")["address"] = "weir.weir-system.svc.cluster.local"

	got := yamlDoc(t, []byte(cm.Data["envoy.yaml"]))
	// Placeholders every pod overrides.
	for _, k := range []string{"id", "cluster"} {
		if v := mapAt(t, got, "node")[k]; v != "set-by-config-yaml" {
			t.Errorf("node.%s is %v: it is set per pod, and says so", k, v)
		}
		delete(mapAt(t, got, "node"), k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the demo bootstrap drifted from envoy-configs/sidecar.yaml (-want +got):\n%s", diff)
	}
}

// TestDemoTrafficIsTheSeeds: reviews-traffic.yaml is examples/canary's DestinationRule
// and VirtualService, unchanged.
func TestDemoTrafficIsTheSeeds(t *testing.T) {
	var got []map[string]any
	for _, m := range loadManifests(t) {
		if m.file == path.Join("demo", "reviews-traffic.yaml") {
			got = append(got, yamlDoc(t, m.raw))
		}
	}
	var want []map[string]any
	for _, f := range []string{"destinationrule.yaml", "virtualservice.yaml"} {
		b, err := os.ReadFile("../examples/canary/" + f)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, yamlDoc(t, b))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deploy/demo/reviews-traffic.yaml is not examples/canary's (-examples +demo):\n%s", diff)
	}
}

// TestDemoRollout checks the demo's Rollout against the CRD in deploy/crds (weir's own
// reading passed when it was loaded) and against the objects it names.
func TestDemoRollout(t *testing.T) {
	ms := loadManifests(t)
	var schema *crd.Schema
	for _, c := range objects[*crd.CRD](ms, "crds") {
		if c.Metadata.Name == "rollouts.weir.dev" {
			schema = c.Spec.Versions[0].Schema.OpenAPIV3Schema
		}
	}
	if schema == nil {
		t.Fatal("no rollouts.weir.dev CRD in deploy/crds")
	}
	var rollouts, vss, drs []map[string]any
	for _, m := range ms {
		var v map[string]any
		if err := json.Unmarshal(m.raw, &v); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(m.kind, "/Rollout"):
			rollouts = append(rollouts, v)
			for _, err := range crd.Validate(schema, v) {
				t.Errorf("%s: %v", m, err)
			}
		case strings.HasSuffix(m.kind, "/VirtualService"):
			vss = append(vss, v)
		case strings.HasSuffix(m.kind, "/DestinationRule"):
			drs = append(drs, v)
		}
	}
	if len(rollouts) != 1 {
		t.Fatalf("want one Rollout under deploy/, got %d", len(rollouts))
	}
	spec := rollouts[0]["spec"].(map[string]any)
	vsName := spec["virtualService"].(map[string]any)["name"]
	if !slices.ContainsFunc(vss, func(vs map[string]any) bool { return vs["metadata"].(map[string]any)["name"] == vsName }) {
		t.Errorf("the Rollout drives VirtualService %v, which the demo does not have", vsName)
	}
	subsets := map[string]bool{}
	for _, dr := range drs {
		if dr["spec"].(map[string]any)["host"] == spec["host"] {
			for _, s := range dr["spec"].(map[string]any)["subsets"].([]any) {
				subsets[fmt.Sprint(s.(map[string]any)["name"])] = true
			}
		}
	}
	for _, k := range []string{"stable", "canary"} {
		if !subsets[fmt.Sprint(spec[k])] {
			t.Errorf("%s subset %v is not a subset of %v in the demo's DestinationRule", k, spec[k], spec["host"])
		}
	}
}
