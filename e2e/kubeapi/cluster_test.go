package kubeapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// One cluster serves every step: starting one costs seconds of two busy cores. The steps
// run in order and each builds on the objects the one before left.
func TestCluster(t *testing.T) {
	c := Start(t)
	kube := kubernetes.NewForConfigOrDie(c.Config)
	dyn := dynamic.NewForConfigOrDie(c.Config)
	ctx := t.Context()

	t.Run("kubeconfig reaches the server as the admin", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			t.Fatalf("load %s: %v", c.Kubeconfig, err)
		}
		review, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().
			Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("self subject review: %v", err)
		}
		got := review.Status.UserInfo
		if got.Username != AdminUser || !slices.Contains(got.Groups, AdminGroup) {
			t.Errorf("kubeconfig authenticates as %s in %v, want %s in %s", got.Username, got.Groups, AdminUser, AdminGroup)
		}
	})

	t.Run("namespace", func(t *testing.T) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tier"}}
		if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create namespace: %v", err)
		}
		_, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			t.Errorf("second create: got %v, want AlreadyExists", err)
		}
	})

	t.Run("server-side apply", func(t *testing.T) { testServerSideApply(t, kube) })
	t.Run("custom resource definition", func(t *testing.T) { testCRD(t, dyn) })
	t.Run("RBAC decides for other identities", func(t *testing.T) { testRBAC(t, c, kube) })

	t.Run("objects outlive an API server restart", func(t *testing.T) {
		c.StopAPIServer(t)
		if _, err := kube.Discovery().ServerVersion(); err == nil {
			t.Fatalf("the API server answered while stopped")
		}
		c.StartAPIServer(t)
		cm, err := kube.CoreV1().ConfigMaps("tier").Get(ctx, "routes", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get configmap after restart: %v", err)
		}
		if cm.Data["weight"] != "10" {
			t.Errorf("configmap after restart: weight=%q, want 10", cm.Data["weight"])
		}
		w, err := dyn.Resource(widgets).Namespace("tier").Get(ctx, "small", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get custom object after restart: %v", err)
		}
		if got, _, _ := unstructured.NestedInt64(w.Object, "spec", "replicas"); got != 3 {
			t.Errorf("custom object after restart: spec.replicas=%d, want 3", got)
		}
	})

	t.Run("server version is the one built", func(t *testing.T) {
		v, err := kube.Discovery().ServerVersion()
		if err != nil {
			t.Fatalf("server version: %v", err)
		}
		want, err := kubernetesVersion("../../" + apiServerMod)
		if err != nil {
			t.Fatalf("%v", err)
		}
		if v.GitVersion != want {
			t.Errorf("server version %s, want %s", v.GitVersion, want)
		}
	})
}

func testServerSideApply(t *testing.T, kube kubernetes.Interface) {
	ctx := t.Context()
	cms := kube.CoreV1().ConfigMaps("tier")
	apply := func(manager, weight string, force bool) (*corev1.ConfigMap, error) {
		body := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"routes"},"data":{"weight":"` + weight + `"}}`
		return cms.Patch(ctx, "routes", types.ApplyPatchType, []byte(body),
			metav1.PatchOptions{FieldManager: manager, Force: &force})
	}
	if _, err := apply("weir", "10", false); err != nil {
		t.Fatalf("apply as weir: %v", err)
	}
	got, err := cms.Get(ctx, "routes", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"weight": "10"}, got.Data); diff != "" {
		t.Errorf("data read back (-want +got):\n%s", diff)
	}
	if m := managers(got.ManagedFields); !cmp.Equal(m, []string{"weir/Apply"}) {
		t.Errorf("managed fields name %v, want [weir/Apply]", m)
	}

	// The same field from a second manager is a conflict the server reports, not a
	// silent overwrite.
	_, err = apply("someone-else", "90", false)
	if !apierrors.IsConflict(err) {
		t.Fatalf("apply by a second manager: got %v, want a conflict", err)
	}
	if !strings.Contains(err.Error(), `.data.weight`) || !strings.Contains(err.Error(), `"weir"`) {
		t.Errorf("conflict %q does not name the field and its manager", err)
	}
	// Re-applying the same intent is a no-op that keeps the object's version.
	again, err := apply("weir", "10", false)
	if err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	if again.ResourceVersion != got.ResourceVersion {
		t.Errorf("re-applying the same config changed resourceVersion %s -> %s", got.ResourceVersion, again.ResourceVersion)
	}
}

var widgets = schema.GroupVersionResource{Group: "tier.weir.dev", Version: "v1", Resource: "widgets"}

var crds = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// widgetCRD allows 0 to 5 replicas and requires a color.
const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.tier.weir.dev
spec:
  group: tier.weir.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [color]
            properties:
              replicas: {type: integer, minimum: 0, maximum: 5}
              color: {type: string, enum: [red, blue]}
`

func testCRD(t *testing.T, dyn dynamic.Interface) {
	ctx := t.Context()
	crd := object(t, widgetCRD)

	dry, err := dyn.Resource(crds).Create(ctx, crd, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatalf("dry-run create CRD: %v", err)
	}
	if dry.GetUID() == "" || dry.GetName() != "widgets.tier.weir.dev" {
		t.Errorf("dry-run returned name %q uid %q, want the defaulted object", dry.GetName(), dry.GetUID())
	}
	if _, err := dyn.Resource(crds).Get(ctx, crd.GetName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after a dry run the CRD exists or the get failed otherwise: %v", err)
	}

	if _, err := dyn.Resource(crds).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create CRD: %v", err)
	}
	waitEstablished(t, dyn, crd.GetName())

	small := object(t, "apiVersion: tier.weir.dev/v1\nkind: Widget\nmetadata: {name: small}\nspec: {color: red, replicas: 3}")
	if _, err := dyn.Resource(widgets).Namespace("tier").Create(ctx, small, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a valid widget: %v", err)
	}

	for _, tc := range []struct {
		name, spec string
		field      string // the path the server's message must name
	}{
		{"above maximum", "{color: red, replicas: 6}", "spec.replicas"},
		{"not in enum", "{color: green}", "spec.color"},
		{"required missing", "{replicas: 1}", "spec.color"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := object(t, "apiVersion: tier.weir.dev/v1\nkind: Widget\nmetadata: {name: bad}\nspec: "+tc.spec)
			_, err := dyn.Resource(widgets).Namespace("tier").Create(ctx, bad, metav1.CreateOptions{})
			var status apierrors.APIStatus
			if !errors.As(err, &status) || !apierrors.IsInvalid(err) || status.Status().Code != http.StatusUnprocessableEntity {
				t.Fatalf("create: got %v, want 422 Invalid", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

func waitEstablished(t *testing.T, dyn dynamic.Interface, name string) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true,
		func(ctx context.Context) (bool, error) {
			crd, err := dyn.Resource(crds).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			last = ""
			for _, c := range conds {
				m, _ := c.(map[string]any)
				last += m["type"].(string) + "=" + m["status"].(string) + " "
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
	if err != nil {
		t.Fatalf("CRD %s not established: %v (conditions: %s)", name, err, last)
	}
}

// testRBAC proves the server authorizes with RBAC: a service account may do nothing until
// a Role and RoleBinding grant it, and then exactly what they grant.
func testRBAC(t *testing.T, c *Cluster, kube kubernetes.Interface) {
	ctx := t.Context()
	as := kubernetes.NewForConfigOrDie(c.ConfigAs("system:serviceaccount:tier:weir",
		"system:serviceaccounts", "system:serviceaccounts:tier", "system:authenticated"))

	if _, err := as.CoreV1().ConfigMaps("tier").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list configmaps without a grant: got %v, want Forbidden", err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "weir-read", Namespace: "tier"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"},
		}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "weir-read", Namespace: "tier"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "weir-read"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "weir", Namespace: "tier"}},
	}
	if _, err := kube.RbacV1().Roles("tier").Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	if _, err := kube.RbacV1().RoleBindings("tier").Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role binding: %v", err)
	}
	list, err := as.CoreV1().ConfigMaps("tier").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list configmaps with a grant: %v", err)
	}
	if !slices.Contains(names(list.Items), "routes") {
		t.Errorf("granted list names %v, want routes among them", names(list.Items))
	}
	if err := as.CoreV1().ConfigMaps("tier").Delete(ctx, "routes", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("delete with a read-only grant: got %v, want Forbidden", err)
	}
	if _, err := as.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list in another namespace: got %v, want Forbidden", err)
	}
}

func TestMissingBinaryNamesItsMakeTarget(t *testing.T) {
	for _, tc := range []struct {
		env, target string
		find        func() (string, error)
	}{
		{"WEIR_KUBE_APISERVER", "make kube-apiserver", findAPIServer},
		{"WEIR_ETCD", "make etcd", findEtcd},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, t.TempDir()+"/missing")
			_, err := tc.find()
			if !errors.Is(err, ErrNoBinary) || !strings.Contains(err.Error(), tc.target) {
				t.Errorf("got %v, want ErrNoBinary naming %q", err, tc.target)
			}
		})
	}
}

// object parses one YAML manifest.
func object(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatalf("parse manifest: %v", err)
	}
	return u
}

func managers(fields []metav1.ManagedFieldsEntry) []string {
	var out []string
	for _, f := range fields {
		out = append(out, f.Manager+"/"+string(f.Operation))
	}
	return out
}

func names(cms []corev1.ConfigMap) []string {
	var out []string
	for _, cm := range cms {
		out = append(out, cm.Name)
	}
	return out
}
