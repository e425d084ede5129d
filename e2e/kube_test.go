package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/weir-mesh/weir/e2e/backend"
	"github.com/weir-mesh/weir/e2e/kubeapi"
)

// istioCRDs are the Istio objects' CRDs the tier needs, minimal (specs unchecked), as in
// a cluster without Istio.
const istioCRDs = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: virtualservices.networking.istio.io}
spec:
  group: networking.istio.io
  scope: Namespaced
  names: {kind: VirtualService, plural: virtualservices, singular: virtualservice, listKind: VirtualServiceList}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
  - {name: v1beta1, served: true, storage: false, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: destinationrules.networking.istio.io}
spec:
  group: networking.istio.io
  scope: Namespaced
  names: {kind: DestinationRule, plural: destinationrules, singular: destinationrule, listKind: DestinationRuleList}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
  - {name: v1beta1, served: true, storage: false, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
`

var vsResource = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1beta1", Resource: "virtualservices"}

// reviewsService is the reviews Service; its endpoints are its Pods (there is no
// endpoints controller here, and the API server refuses loopback addresses in
// EndpointSlices, so the Pods' own addresses are what weir reads).
func reviewsService(port int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 80, targetPort: %d}]
`, port)
}

// applyPod creates or updates the Pod of backend i and, through the status subresource,
// says where it runs and whether it is ready, as the kubelet would.
func applyPod(t *testing.T, dyn dynamic.Interface, i int, be *backend.Backend, ready bool) {
	t.Helper()
	ip, _, _ := strings.Cut(be.Addr(), ":")
	KubeApply(t, dyn, "default", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: reviews-%[1]d
  namespace: default
  labels: {app: reviews, version: %[2]s}
spec:
  containers: [{name: reviews, image: example/reviews:%[2]s}]
`, i, be.Version()))
	status := "False"
	if ready {
		status = "True"
	}
	patch := fmt.Sprintf(`{"status": {"phase": "Running", "podIP": %q, "podIPs": [{"ip": %q}], "conditions": [{"type": "Ready", "status": %q}]}}`, ip, ip, status)
	if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace("default").Patch(context.Background(),
		fmt.Sprintf("reviews-%d", i), types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("pod status: %v", err)
	}
}

func deletePod(t *testing.T, dyn dynamic.Interface, i int) {
	t.Helper()
	zero := int64(0)
	if err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace("default").Delete(context.Background(),
		fmt.Sprintf("reviews-%d", i), metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
}

// TestKubernetesSeedRoutesRealTraffic (issue 6, points 1, 2 and 5): the seed's
// DestinationRule and VirtualService, the reviews Service and its Pods applied through a
// real API server; weir reads them with --kubeconfig, as deploy/weir's service account
// with only its RBAC; a real Envoy
// routes the seed's split, and the seed's `kubectl patch --type=merge` shifts it. A new
// Pod sends EDS only; a Pod marked not ready, then deleted, costs no request. The API
// server restarting costs no request and, once weir has relisted, no push.
func TestKubernetesSeedRoutesRealTraffic(t *testing.T) {
	cluster := kubeapi.Start(t)
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	KubeApply(t, dyn, "", istioCRDs)
	waitServed(t, dyn, vsResource)
	env := NewEnv(t)
	bs := env.StartBackendsFrom(236, "v1", "v2", "v1")
	KubeApply(t, dyn, "default", reviewsService(bs[0].Port()))
	applyPod(t, dyn, 0, bs[0], true)
	applyPod(t, dyn, 1, bs[1], true)
	KubeApply(t, dyn, "default", SeedReviewsDestinationRule+"---\n"+SeedReviewsCanary)
	patchVirtualService(t, dyn, "reviews-canary", SeedPatch90to10)

	// weir reads the cluster as deploy/weir's service account, with only its RBAC.
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"00-namespace.yaml", "rbac.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "weir", f))
		if err != nil {
			t.Fatal(err)
		}
		KubeApply(t, dyn, "", string(b))
	}
	asWeir := cluster.KubeconfigAs(t, "system:serviceaccount:weir-system:weir",
		"system:serviceaccounts", "system:serviceaccounts:weir-system", "system:authenticated")
	w := env.StartWeir(WithWeirArgs("--kubeconfig", asWeir))
	e := env.StartEnvoy(EnvoyOptions{})
	w.WaitAcked(t, e.NodeID)
	e.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v1": 90, "v2": 10}))
	AssertSplit(t, "90/10 applied through the API", e.Traffic("reviews").Send(splitRequests),
		map[string]float64{"v1": 90, "v2": 10}, splitTolerancePP)

	began := time.Now()
	patchVirtualService(t, dyn, "reviews-canary", SeedPatch50to50)
	took := e.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v1": 50, "v2": 50}))
	t.Logf("MEASURE merge patch to 50/50 reached Envoy in %v (%v since the patch)", took, time.Since(began).Round(time.Millisecond))
	AssertSplit(t, "50/50 after kubectl patch --type=merge", e.Traffic("reviews").Send(splitRequests),
		map[string]float64{"v1": 50, "v2": 50}, splitTolerancePP)

	// A second v1 endpoint: EDS only, and it takes part of v1's traffic.
	pushes := func(typ string) float64 { return w.Metric(t, `weir_xds_pushes_total{type="`+typ+`"}`) }
	before := map[string]float64{}
	for _, typ := range []string{"cds", "eds", "lds", "srds", "rds"} {
		before[typ] = pushes(typ)
	}
	bg := e.Traffic("reviews").Background(t, time.Minute)
	applyPod(t, dyn, 2, bs[2], true)
	if !poll(convergeTimeout, 50*time.Millisecond, func() bool { return pushes("eds") > before["eds"] }) {
		t.Fatalf("adding an endpoint sent no EDS update")
	}
	time.Sleep(time.Second) // anything else that would follow has had time to
	for _, typ := range []string{"cds", "lds", "srds", "rds"} {
		if n := pushes(typ); n != before[typ] {
			t.Errorf("adding an endpoint pushed %s: %v -> %v; want EDS only", typ, before[typ], n)
		}
	}
	// Graceful removal: not ready first, then gone.
	applyPod(t, dyn, 2, bs[2], false)
	time.Sleep(time.Second)
	deletePod(t, dyn, 2)
	time.Sleep(time.Second)
	ta := bg.Stop()
	t.Logf("MEASURE traffic while an endpoint was added, drained and removed: %v", ta)
	if ta.Failures() != 0 || ta.Versions["v1"] == 0 || ta.Versions["v2"] == 0 {
		t.Errorf("requests failed while an endpoint was added and removed gracefully: %v", ta)
	}

	// Point 5: the API server restarts. weir keeps serving the last config meanwhile, and
	// after its informers relist the unchanged cluster it sends nothing.
	e.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v1": 50, "v2": 50}))
	time.Sleep(500 * time.Millisecond)
	for _, typ := range []string{"cds", "eds", "lds", "srds", "rds"} {
		before[typ] = pushes(typ)
	}
	bg = e.Traffic("reviews").Background(t, 5*time.Minute)
	began = time.Now()
	cluster.RestartAPIServer(t)
	t.Logf("MEASURE the API server was down and back in %v", time.Since(began).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // informers relist after their watch breaks
	ta = bg.Stop()
	if ta.Failures() != 0 || ta.Versions["v1"] == 0 || ta.Versions["v2"] == 0 {
		t.Errorf("traffic while the API server restarted: %v", ta)
	}
	for _, typ := range []string{"cds", "eds", "lds", "srds", "rds"} {
		if n := pushes(typ); n != before[typ] {
			t.Errorf("after the API server restart weir pushed %s again (%v -> %v) though nothing changed", typ, before[typ], n)
		}
	}
	// And it still follows the cluster.
	patchVirtualService(t, dyn, "reviews-canary", SeedPatchAllV2)
	e.WaitRouteWeights(t, "reviews", reviewsSplit(map[string]float64{"v2": 100}))
}

// waitServed waits until the API server serves a new CRD's resource.
func waitServed(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource) {
	t.Helper()
	if !poll(30*time.Second, 100*time.Millisecond, func() bool {
		_, err := dyn.Resource(gvr).Namespace("default").List(context.Background(), metav1.ListOptions{Limit: 1})
		return err == nil
	}) {
		t.Fatalf("%s is not served 30 s after its CRD was created", gvr)
	}
}

// patchVirtualService is `kubectl patch virtualservice NAME --type=merge -p PATCH`.
func patchVirtualService(t *testing.T, dyn dynamic.Interface, name, patch string) {
	t.Helper()
	if _, err := dyn.Resource(vsResource).Namespace("default").Patch(context.Background(), name, types.MergePatchType,
		[]byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("merge patch %s: %v", name, err)
	}
}
