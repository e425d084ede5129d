package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/e2e/backend"
)

// ServicePods writes a v1 Service named service (selector app=<service>) and one Pod per
// backend, labelled app=<service>, version=<backend version>, with podIP the backend's
// address. With namedPort, the Service's targetPort is the Pod's named containerPort
// "http"; otherwise it is the number.
func ServicePods(service, namespace string, port int, namedPort bool, bs []*backend.Backend) string {
	if len(bs) == 0 {
		panic("ServicePods: no backends")
	}
	targetPort := fmt.Sprint(bs[0].Port())
	if namedPort {
		targetPort = "http"
	}
	docs := []string{fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: %s
spec:
  selector:
    app: %s
  ports:
  - name: http
    port: %d
    targetPort: %s
`, service, namespace, service, port, targetPort)}
	for i, b := range bs {
		ip, _, _ := strings.Cut(b.Addr(), ":")
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s-%s-%d
  namespace: %s
  labels:
    app: %s
    version: %s
spec:
  containers:
  - name: %s
    image: example/%s:%s
    ports:
    - name: http
      containerPort: %d
status:
  phase: Running
  podIP: %s
`, service, b.Version(), i, namespace, service, b.Version(), service, service, b.Version(), b.Port(), ip))
	}
	return strings.Join(docs, "---\n")
}

// ServiceWorkloadEntries writes a v1 Service and one WorkloadEntry per backend, selected
// by the Service's selector; the entry's `ports: {http: N}` gives the endpoint port.
func ServiceWorkloadEntries(service, namespace string, port int, bs []*backend.Backend) string {
	docs := []string{fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: %s
spec:
  selector:
    app: %s
  ports:
  - name: http
    port: %d
    targetPort: 9999
`, service, namespace, service, port)}
	for i, b := range bs {
		ip, _, _ := strings.Cut(b.Addr(), ":")
		docs = append(docs, fmt.Sprintf(`apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata:
  name: %s-%s-%d
  namespace: %s
spec:
  address: %s
  labels:
    app: %s
    version: %s
  ports:
    http: %d
`, service, b.Version(), i, namespace, ip, service, b.Version(), b.Port()))
	}
	return strings.Join(docs, "---\n")
}

// MergePatch applies a JSON merge patch (RFC 7386, what `kubectl patch --type=merge`
// does) to a YAML document and returns YAML.
func MergePatch(doc, patch string) (string, error) {
	var target, p any
	docJSON, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		return "", fmt.Errorf("merge patch: document: %w", err)
	}
	if err := json.Unmarshal(docJSON, &target); err != nil {
		return "", err
	}
	if err := json.Unmarshal([]byte(patch), &p); err != nil {
		return "", fmt.Errorf("merge patch: patch: %w", err)
	}
	out, err := json.Marshal(mergePatch(target, p))
	if err != nil {
		return "", err
	}
	y, err := yaml.JSONToYAML(out)
	return string(y), err
}

func mergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = mergePatch(tm[k], v)
	}
	return tm
}

// MustMergePatch is MergePatch for fixed inputs in tests.
func MustMergePatch(t TB, doc, patch string) string {
	t.Helper()
	out, err := MergePatch(doc, patch)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// Subsets turns subset percentages into cluster percentages for one service port.
func Subsets(port int, fqdn string, pct map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for subset, p := range pct {
		out[ClusterName(port, subset, fqdn)] = p
	}
	return out
}

// describe renders a split like "v1=90 v2=10".
func describe(pct map[string]float64) string {
	var keys []string
	for k := range pct {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%.0f", k, pct[k]))
	}
	return strings.Join(parts, " ")
}
