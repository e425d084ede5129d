package e2e

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// kubeResources maps the kinds the tests apply to their resources: what `kubectl apply`
// learns from discovery, written out.
var kubeResources = map[string]struct {
	resource   string
	namespaced bool
}{
	"Service":                  {"services", true},
	"Pod":                      {"pods", true},
	"EndpointSlice":            {"endpointslices", true},
	"Secret":                   {"secrets", true},
	"Namespace":                {"namespaces", false},
	"VirtualService":           {"virtualservices", true},
	"DestinationRule":          {"destinationrules", true},
	"ServiceEntry":             {"serviceentries", true},
	"WorkloadEntry":            {"workloadentries", true},
	"Gateway":                  {"gateways", true},
	"Sidecar":                  {"sidecars", true},
	"Rollout":                  {"rollouts", true},
	"CustomResourceDefinition": {"customresourcedefinitions", false},
	"Deployment":               {"deployments", true},
	"ConfigMap":                {"configmaps", true},
	"ServiceAccount":           {"serviceaccounts", true},
	"PodDisruptionBudget":      {"poddisruptionbudgets", true},
	"Role":                     {"roles", true},
	"RoleBinding":              {"rolebindings", true},
	"ClusterRole":              {"clusterroles", false},
	"ClusterRoleBinding":       {"clusterrolebindings", false},
}

// KubeApply server-side applies every object of a multi-document YAML, as
// `kubectl apply --server-side` does; objects without a namespace go to namespace ns.
func KubeApply(t TB, dyn dynamic.Interface, ns, docs string) {
	t.Helper()
	for _, obj := range KubeObjects(t, docs) {
		if err := kubeApply(dyn, ns, obj, nil); err != nil {
			t.Fatalf("apply %s %s/%s: %v", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
		}
	}
}

// KubeDryRun is `kubectl apply --server-side --dry-run=server` of one object: the API
// server validates and admits it and stores nothing.
func KubeDryRun(dyn dynamic.Interface, ns string, obj *unstructured.Unstructured) error {
	return kubeApply(dyn, ns, obj, []string{metav1.DryRunAll})
}

func kubeApply(dyn dynamic.Interface, ns string, obj *unstructured.Unstructured, dryRun []string) error {
	client, err := kubeClientFor(dyn, obj, ns)
	if err != nil {
		return err
	}
	_, err = client.Apply(context.Background(), obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "weir-e2e", Force: true, DryRun: dryRun})
	return err
}

// KubeObjects reads the objects of a multi-document YAML.
func KubeObjects(t TB, docs string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split("\n"+docs, "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			t.Fatalf("read YAML: %v in\n%s", err, doc)
		}
		if len(obj.Object) > 0 { // not comments only
			out = append(out, obj)
		}
	}
	return out
}

func kubeClientFor(dyn dynamic.Interface, obj *unstructured.Unstructured, ns string) (dynamic.ResourceInterface, error) {
	r, ok := kubeResources[obj.GetKind()]
	if !ok {
		return nil, fmt.Errorf("kind %s is not known to the tests", obj.GetKind())
	}
	gv, err := schema.ParseGroupVersion(obj.GetAPIVersion())
	if err != nil {
		return nil, err
	}
	client := dyn.Resource(gv.WithResource(r.resource))
	if !r.namespaced {
		return client, nil
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace(ns)
	}
	return client.Namespace(obj.GetNamespace()), nil
}
