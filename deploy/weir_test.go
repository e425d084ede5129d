package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

// groupResource is what RBAC grants on.
type groupResource struct{ group, resource string }

// watchedResources reads, from the Kubernetes watcher's source, every resource it lists
// and watches: the GroupVersionResource literals in watchers/kube/watcher.go. A resource
// added there without a rule here fails TestRBACCoversWhatWeirReads.
func watchedResources(t *testing.T) []groupResource {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../watchers/kube/watcher.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{"v1alpha1.Group": v1alpha1.Group}
	var out []groupResource
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		var gr groupResource
		isGVR := false
		for _, e := range lit.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			key, _ := kv.Key.(*ast.Ident)
			if key == nil || (key.Name != "Group" && key.Name != "Resource") {
				continue
			}
			var value string
			switch v := kv.Value.(type) {
			case *ast.BasicLit:
				value, _ = strconv.Unquote(v.Value)
			case *ast.SelectorExpr:
				name := v.X.(*ast.Ident).Name + "." + v.Sel.Name
				if value, ok = consts[name]; !ok {
					t.Fatalf("watcher.go: %s: teach this test its value", name)
				}
			default:
				t.Fatalf("watcher.go: a %s value this test cannot read", key.Name)
			}
			if key.Name == "Group" {
				gr.group = value
			} else {
				gr.resource, isGVR = value, true
			}
		}
		if isGVR {
			out = append(out, gr)
		}
		return true
	})
	if len(out) < 10 {
		t.Fatalf("found %d resources in watcher.go (%v): has the watcher changed shape?", len(out), out)
	}
	return out
}

// allows reports whether rules grant verb on the resource.
func allows(rules []rbacv1.PolicyRule, gr groupResource, verb string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, gr.group) && slices.Contains(r.Resources, gr.resource) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}

func clusterRole(t *testing.T, ms []manifest) *rbacv1.ClusterRole {
	t.Helper()
	roles := objects[*rbacv1.ClusterRole](ms, "weir")
	if len(roles) != 1 {
		t.Fatalf("want one ClusterRole in deploy/weir, got %d", len(roles))
	}
	return roles[0]
}

func TestRBACCoversWhatWeirReads(t *testing.T) {
	rules := clusterRole(t, loadManifests(t)).Rules
	for _, gr := range watchedResources(t) {
		for _, verb := range []string{"list", "watch"} {
			if !allows(rules, gr, verb) {
				t.Errorf("the ClusterRole does not allow %s on %s (group %q), which weir watches", verb, gr.resource, gr.group)
			}
		}
	}
}

func TestRBACIsLeastPrivilege(t *testing.T) {
	ms := loadManifests(t)
	rules := clusterRole(t, ms).Rules
	for _, r := range rules {
		for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs} {
			if slices.Contains(list, "*") {
				t.Errorf("a wildcard in %+v", r)
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("non-resource URLs: %+v", r)
		}
	}
	watched := map[groupResource]bool{}
	for _, gr := range watchedResources(t) {
		watched[gr] = true
	}
	// Writes: only where the rollout controller will write.
	writes := map[groupResource][]string{
		{"weir.dev", "rollouts/status"}: {"update", "patch"},
		{"", "events"}:                  {"create", "patch"},
		{"events.k8s.io", "events"}:     {"create", "patch"},
	}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				gr := groupResource{g, res}
				for _, v := range r.Verbs {
					read := v == "get" || v == "list" || v == "watch"
					if read && !watched[gr] {
						t.Errorf("%s on %q/%s, which weir does not read", v, g, res)
					}
					if !read && !slices.Contains(writes[gr], v) {
						t.Errorf("%s on %q/%s: weir does not write it", v, g, res)
					}
				}
			}
		}
	}
	for gr, verbs := range writes {
		for _, v := range verbs {
			if !allows(rules, gr, v) {
				t.Errorf("the ClusterRole does not allow %s on %q/%s", v, gr.group, gr.resource)
			}
		}
	}
	if allows(rules, groupResource{"", "secrets"}, "get") {
		t.Error("get on secrets: weir only lists and watches TLS Secrets")
	}
	// Leader election: a namespaced Role, bound to weir's ServiceAccount.
	var leases bool
	for _, r := range objects[*rbacv1.Role](ms, "weir") {
		leases = leases || r.Namespace == "weir-system" && allows(r.Rules, groupResource{"coordination.k8s.io", "leases"}, "get") &&
			allows(r.Rules, groupResource{"coordination.k8s.io", "leases"}, "create") &&
			allows(r.Rules, groupResource{"coordination.k8s.io", "leases"}, "update")
	}
	if !leases {
		t.Error("no Role in weir-system for coordination.k8s.io leases (get, create, update)")
	}
}

func TestBindingsNameWeirsServiceAccount(t *testing.T) {
	ms := loadManifests(t)
	sas := objects[*corev1.ServiceAccount](ms, "weir")
	if len(sas) != 1 || sas[0].Name != "weir" || sas[0].Namespace != "weir-system" {
		t.Fatalf("want ServiceAccount weir-system/weir, got %v", sas)
	}
	subjects := func(s []rbacv1.Subject) bool {
		return len(s) == 1 && s[0].Kind == "ServiceAccount" && s[0].Name == "weir" && s[0].Namespace == "weir-system"
	}
	crbs := objects[*rbacv1.ClusterRoleBinding](ms, "weir")
	if len(crbs) != 1 || crbs[0].RoleRef.Kind != "ClusterRole" || crbs[0].RoleRef.Name != clusterRole(t, ms).Name || !subjects(crbs[0].Subjects) {
		t.Errorf("the ClusterRoleBinding does not bind the ClusterRole to weir-system/weir: %+v", crbs)
	}
	rbs := objects[*rbacv1.RoleBinding](ms, "weir")
	roles := objects[*rbacv1.Role](ms, "weir")
	if len(rbs) != 1 || len(roles) != 1 || rbs[0].RoleRef.Name != roles[0].Name || rbs[0].Namespace != roles[0].Namespace || !subjects(rbs[0].Subjects) {
		t.Errorf("the RoleBinding does not bind the lease Role to weir-system/weir: %+v", rbs)
	}
	if d := weirDeployment(t, ms); d.Spec.Template.Spec.ServiceAccountName != "weir" {
		t.Errorf("weir runs as %q, not the weir ServiceAccount", d.Spec.Template.Spec.ServiceAccountName)
	}
}

func weirDeployment(t *testing.T, ms []manifest) *appsv1.Deployment {
	t.Helper()
	ds := objects[*appsv1.Deployment](ms, "weir")
	if len(ds) != 1 {
		t.Fatalf("want one Deployment in deploy/weir, got %d", len(ds))
	}
	return ds[0]
}

// serveFlags are the flags `weir serve` defines, read from its source.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../cmd/weir/serve.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`fs\.(?:String|Bool|Int|Duration|Float64)\("([a-z0-9-]+)"`).FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = true
	}
	if !out["in-cluster"] || !out["xds-address"] {
		t.Fatalf("read flags %v from cmd/weir/serve.go: has it changed shape?", out)
	}
	return out
}

func TestWeirDeployment(t *testing.T) {
	ms := loadManifests(t)
	d := weirDeployment(t, ms)
	if d.Namespace != "weir-system" || d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("want 2 replicas in weir-system, got %v in %q", d.Spec.Replicas, d.Namespace)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != "weir:dev" {
		t.Errorf("image %q, want weir:dev (what the README builds and loads)", c.Image)
	}

	// The arguments: `weir serve`, flags it has, and the addresses the ports name.
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args %q do not start with serve", c.Args)
	}
	flags, known := map[string]string{}, serveFlags(t)
	for i := 1; i < len(c.Args); i++ {
		name, ok := strings.CutPrefix(c.Args[i], "--")
		if !ok || !known[name] {
			t.Errorf("argument %q is not a flag of weir serve", c.Args[i])
			continue
		}
		if name != "in-cluster" && i+1 < len(c.Args) {
			flags[name] = c.Args[i+1]
			i++
		} else {
			flags[name] = "true"
		}
	}
	want := map[string]string{"in-cluster": "true", "xds-address": "0.0.0.0:18000", "admin-address": "0.0.0.0:18001"}
	for k, v := range want {
		if flags[k] != v {
			t.Errorf("--%s is %q, want %q", k, flags[k], v)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc-xds"] != 18000 || ports["http-admin"] != 18001 {
		t.Errorf("container ports %v, want grpc-xds 18000 and http-admin 18001", ports)
	}

	// Probes on the admin port.
	for name, probe := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != name || probe.HTTPGet.Port.String() != "http-admin" {
			t.Errorf("want a probe GET %s on http-admin, got %+v", name, probe)
		}
	}

	// Locked down; and the state file, the one thing weir writes, on a writable volume.
	sc, psc := c.SecurityContext, pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container security context is not locked down: %+v", sc)
	}
	state := flags["rollout-state"]
	writable := false
	for _, m := range c.VolumeMounts {
		writable = writable || strings.HasPrefix(state, m.MountPath+"/") && !m.ReadOnly
	}
	if !writable {
		t.Errorf("--rollout-state %q is not on a writable volume, and the root filesystem is read-only", state)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()) < 0 {
		t.Errorf("memory: request %v, limit %v", c.Resources.Requests.Memory(), c.Resources.Limits.Memory())
	}
}

func TestWeirService(t *testing.T) {
	ms := loadManifests(t)
	d := weirDeployment(t, ms)
	svcs := objects[*corev1.Service](ms, "weir")
	if len(svcs) != 1 || svcs[0].Name != "weir" || svcs[0].Namespace != "weir-system" {
		t.Fatalf("want Service weir-system/weir, got %d services", len(svcs))
	}
	svc := svcs[0]
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the Service selects %s=%s, which weir's pods do not have", k, v)
		}
	}
	want := map[string]struct {
		port        int32
		appProtocol string
	}{"grpc-xds": {18000, "grpc"}, "http-admin": {18001, "http"}}
	containerPorts := map[string]bool{}
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		containerPorts[p.Name] = true
	}
	for _, p := range svc.Spec.Ports {
		w, ok := want[p.Name]
		if !ok || p.Port != w.port || p.AppProtocol == nil || *p.AppProtocol != w.appProtocol {
			t.Errorf("port %s: %d (%v), want %+v", p.Name, p.Port, p.AppProtocol, w)
		}
		if !containerPorts[p.TargetPort.String()] {
			t.Errorf("port %s targets %s, which weir's container does not name", p.Name, p.TargetPort.String())
		}
		delete(want, p.Name)
	}
	if len(want) > 0 {
		t.Errorf("missing ports %v", want)
	}
}
