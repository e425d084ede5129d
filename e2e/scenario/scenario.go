// Package scenario writes synthetic meshes as file-source directories: K services, each
// with subsets, E endpoints per subset, a weighted VirtualService and a DestinationRule
// with policies. Benchmarks and load runs read them like any user config.
package scenario

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Spec sizes a mesh.
type Spec struct {
	Services  int // K
	Subsets   int // subsets per service (v1, v2, ...), at least 1
	Endpoints int // endpoints per subset
	Namespace string
}

// Write writes the mesh into dir, one file per 100 services, and returns the files.
func Write(dir string, s Spec) ([]string, error) {
	if s.Subsets < 1 || s.Endpoints < 1 || s.Services < 1 {
		return nil, fmt.Errorf("scenario: services, subsets and endpoints must be at least 1: %+v", s)
	}
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	var files []string
	for start := 0; start < s.Services; start += 100 {
		var b strings.Builder
		for i := start; i < min(start+100, s.Services); i++ {
			writeService(&b, s, i)
		}
		path := filepath.Join(dir, fmt.Sprintf("mesh-%05d.yaml", start/100))
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return nil, fmt.Errorf("scenario: %w", err)
		}
		files = append(files, path)
	}
	return files, nil
}

// Name is the name of service i.
func Name(i int) string { return fmt.Sprintf("svc-%05d", i) }

func writeService(b *strings.Builder, s Spec, i int) {
	name := Name(i)
	fmt.Fprintf(b, `apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  selector: {app: %[1]s}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s-1
  namespace: %[2]s
  labels: {kubernetes.io/service-name: %[1]s}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
`, name, s.Namespace)
	for sub := 0; sub < s.Subsets; sub++ {
		for e := 0; e < s.Endpoints; e++ {
			fmt.Fprintf(b, "- addresses: [%s]\n  targetRef: {kind: Pod, name: %s-v%d-%d}\n", address(i, sub, e, s), name, sub+1, e)
		}
	}
	for sub := 0; sub < s.Subsets; sub++ {
		for e := 0; e < s.Endpoints; e++ {
			fmt.Fprintf(b, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s-v%d-%d, namespace: %s, labels: {app: %s, version: v%d}}\n",
				name, sub+1, e, s.Namespace, name, sub+1)
		}
	}
	fmt.Fprintf(b, `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  host: %[1]s
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool:
      tcp: {maxConnections: 1000, connectTimeout: 3s}
      http: {http1MaxPendingRequests: 1024, maxRetries: 3}
    outlierDetection: {consecutive5xxErrors: 5, interval: 30s, baseEjectionTime: 30s, maxEjectionPercent: 50}
  subsets:
`, name, s.Namespace)
	for sub := 0; sub < s.Subsets; sub++ {
		fmt.Fprintf(b, "  - {name: v%d, labels: {version: v%d}}\n", sub+1, sub+1)
	}
	fmt.Fprintf(b, `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  hosts: [%[1]s]
  http:
  - match: [{headers: {x-canary: {exact: "true"}}}]
    route: [{destination: {host: %[1]s, subset: v%[3]d}}]
  - timeout: 5s
    retries: {attempts: 3, perTryTimeout: 2s}
    route:
`, name, s.Namespace, s.Subsets)
	for sub := 0; sub < s.Subsets; sub++ {
		w := 100 / s.Subsets
		if sub == 0 {
			w += 100 % s.Subsets
		}
		fmt.Fprintf(b, "    - {destination: {host: %s, subset: v%d}, weight: %d}\n", name, sub+1, w)
	}
	b.WriteString("---\n")
}

// address gives every endpoint a distinct 10.x address: the mesh is only translated,
// never sent traffic.
func address(i, sub, e int, s Spec) string {
	n := (i*s.Subsets+sub)*s.Endpoints + e
	return fmt.Sprintf("10.%d.%d.%d", (n>>16)&255, (n>>8)&255, n&255)
}
