package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/weir-mesh/weir/e2e/kubeapi"
)

// TestDeployManifestsAcceptedByTheAPIServer (issue 6, point 6 and the CRD half of point
// 3): a real API server creates every CRD in deploy/crds (their structural schemas and
// CEL rules compiled by the server itself), then accepts every other manifest in deploy/
// by server-side dry-run, and the Rollout CRD accepts and rejects each case of
// api/crd/testdata/rollouts.yaml as it is annotated.
func TestDeployManifestsAcceptedByTheAPIServer(t *testing.T) {
	cluster := kubeapi.Start(t)
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	read := func(pattern string) map[string]string {
		files, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil || len(files) == 0 {
			t.Fatalf("no manifests match %s (%v)", pattern, err)
		}
		out := map[string]string{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, f)
			out[rel] = string(b)
		}
		return out
	}
	for _, docs := range read("deploy/crds/*.yaml") {
		KubeApply(t, dyn, "", docs)
	}
	waitServed(t, dyn, schema.GroupVersionResource{Group: "weir.dev", Version: "v1alpha1", Resource: "rollouts"})
	waitServed(t, dyn, vsResource)

	checked := 0
	manifests := read("deploy/weir/*.yaml")
	for f, docs := range read("deploy/demo/*.yaml") {
		manifests[f] = docs
	}
	for f, docs := range read("deploy/demo/rollout/*.yaml") {
		manifests[f] = docs
	}
	for _, docs := range manifests { // first what the others live in
		for _, obj := range KubeObjects(t, docs) {
			if obj.GetKind() == "Namespace" {
				if err := kubeApply(dyn, "", obj, nil); err != nil {
					t.Fatalf("namespace %s: %v", obj.GetName(), err)
				}
			}
		}
	}
	for f, docs := range manifests {
		for _, obj := range KubeObjects(t, docs) {
			if obj.GetKind() == "Namespace" {
				continue
			}
			checked++
			if err := KubeDryRun(dyn, "default", obj); err != nil {
				t.Errorf("%s: %s %s: the API server refuses it: %v", f, obj.GetKind(), obj.GetName(), err)
			}
		}
	}
	t.Logf("MEASURE %d manifests of deploy/ accepted by server-side dry-run", checked)

	cases := read("api/crd/testdata/rollouts.yaml")["api/crd/testdata/rollouts.yaml"]
	accepted, rejected := 0, 0
	for _, obj := range KubeObjects(t, cases) {
		expect, because := obj.GetAnnotations()["test.weir.dev/expect"], obj.GetAnnotations()["test.weir.dev/because"]
		err := KubeDryRun(dyn, "default", obj)
		switch expect {
		case "accept", "weir-only": // weir-only: what the schema cannot tell, weir refuses when it reads it
			if err != nil {
				t.Errorf("Rollout %s (%s): the CRD refuses it: %v", obj.GetName(), expect, err)
			}
			accepted++
		case "reject", "crd-only":
			// The schema refuses with 422 Invalid; server-side apply refuses a duplicate
			// list key or an undeclared field earlier, building its typed patch.
			switch {
			case err == nil:
				t.Errorf("Rollout %s (%s): the CRD accepts it", obj.GetName(), expect)
			case !apierrors.IsInvalid(err) && !strings.Contains(err.Error(), "typed patch"):
				t.Errorf("Rollout %s (%s): refused, but not by the CRD's schema: %v", obj.GetName(), expect, err)
			case because != "" && !strings.Contains(err.Error(), because):
				t.Errorf("Rollout %s: refused, but not for %q: %v", obj.GetName(), because, err)
			}
			rejected++
		default:
			t.Errorf("Rollout %s: unknown expectation %q", obj.GetName(), expect)
		}
	}
	t.Logf("MEASURE Rollout CRD on the real API server: %d cases accepted and %d refused as annotated", accepted, rejected)
	if accepted == 0 || rejected == 0 {
		t.Errorf("want cases of both kinds, got %d accepted and %d refused", accepted, rejected)
	}
}
