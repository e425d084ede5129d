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
	// PerFile is how many services share one file (default 100). Editing a service
	// rewrites its file, and weir re-parses only changed files, so one service per file
	// is what editing one object of a GitOps repository costs.
	PerFile int
}

func (s Spec) perFile() int {
	if s.PerFile < 1 {
		return 100
	}
	return s.PerFile
}

// Write writes the mesh into dir, one file per Spec.PerFile services, and returns the files.
func Write(dir string, s Spec) ([]string, error) {
	if s.Subsets < 1 || s.Endpoints < 1 || s.Services < 1 {
		return nil, fmt.Errorf("scenario: services, subsets and endpoints must be at least 1: %+v", s)
	}
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	var files []string
	for start := 0; start < s.Services; start += s.perFile() {
		var b strings.Builder
		for i := start; i < min(start+s.perFile(), s.Services); i++ {
			writeService(&b, s, i)
		}
		path := File(dir, s, start)
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

// File is the path of the file Write puts service i in.
func File(dir string, s Spec, service int) string {
	return filepath.Join(dir, fmt.Sprintf("mesh-%05d.yaml", service/s.perFile()))
}

// SetWeights rewrites the file holding service so that its VirtualService's weighted
// route sends weights[k] percent to subset v(k+1); nothing else in the file changes, so
// only routes change. The weights must be one per subset, at least 0, summing to 100.
// The file is replaced atomically: a watcher never reads half of it.
func SetWeights(dir string, s Spec, service int, weights []int) error {
	if err := checkService(s, service); err != nil {
		return err
	}
	if len(weights) != s.Subsets {
		return fmt.Errorf("scenario: %d weights for %d subsets", len(weights), s.Subsets)
	}
	sum := 0
	for _, w := range weights {
		if w < 0 {
			return fmt.Errorf("scenario: negative weight in %v", weights)
		}
		sum += w
	}
	if sum != 100 {
		return fmt.Errorf("scenario: weights %v sum to %d, not 100", weights, sum)
	}
	name := Name(service)
	return rewrite(File(dir, s, service), func(text string) (string, error) {
		for sub, w := range weights {
			prefix := fmt.Sprintf("    - {destination: {host: %s, subset: v%d}, weight: ", name, sub+1)
			var err error
			if text, err = replaceLineAfter(text, prefix, fmt.Sprintf("%d}", w)); err != nil {
				return "", err
			}
		}
		return text, nil
	})
}

// ShiftEndpoint moves one endpoint of service to a new address: endpoint seq modulo the
// service's endpoints (subsets × endpoints per subset), to an address of 11.0.0.0/8
// derived from seq and service, which no other call with a different seq or service
// gives while seq*Services+service < 2^24. Only the EndpointSlice changes, so only
// endpoints change: no cluster, route or listener. The file is replaced atomically.
func ShiftEndpoint(dir string, s Spec, service int, seq int) error {
	if err := checkService(s, service); err != nil {
		return err
	}
	if seq < 0 {
		return fmt.Errorf("scenario: negative seq %d", seq)
	}
	k := seq % (s.Subsets * s.Endpoints)
	sub, e := k/s.Endpoints, k%s.Endpoints
	n := (seq*s.Services + service) & (1<<24 - 1)
	addr := fmt.Sprintf("11.%d.%d.%d", (n>>16)&255, (n>>8)&255, n&255)
	pod := fmt.Sprintf("%s-v%d-%d", Name(service), sub+1, e)
	return rewrite(File(dir, s, service), func(text string) (string, error) {
		// An endpoint is two lines: its addresses, then the targetRef naming its pod.
		ref := fmt.Sprintf("\n  targetRef: {kind: Pod, name: %s}\n", pod)
		i := strings.Index(text, ref)
		if i < 0 {
			return "", fmt.Errorf("scenario: no endpoint of pod %s in %s", pod, File(dir, s, service))
		}
		start := strings.LastIndexByte(text[:i], '\n') + 1
		const prefix = "- addresses: ["
		if !strings.HasPrefix(text[start:i], prefix) {
			return "", fmt.Errorf("scenario: endpoint of pod %s has no addresses line", pod)
		}
		return text[:start] + prefix + addr + "]" + text[i:], nil
	})
}

func checkService(s Spec, service int) error {
	if s.Subsets < 1 || s.Endpoints < 1 || s.Services < 1 {
		return fmt.Errorf("scenario: services, subsets and endpoints must be at least 1: %+v", s)
	}
	if service < 0 || service >= s.Services {
		return fmt.Errorf("scenario: service %d out of range [0, %d)", service, s.Services)
	}
	return nil
}

// replaceLineAfter replaces the rest of the one line starting with prefix.
func replaceLineAfter(text, prefix, rest string) (string, error) {
	i := strings.Index(text, "\n"+prefix)
	if i < 0 || strings.Contains(text[i+1+len(prefix):], "\n"+prefix) {
		return "", fmt.Errorf("scenario: want exactly one line starting with %q", prefix)
	}
	i += 1 + len(prefix)
	end := strings.IndexByte(text[i:], '\n')
	if end < 0 {
		end = len(text) - i
	}
	return text[:i] + rest + text[i+end:], nil
}

// rewrite replaces path by edit(its content), atomically: the new content is written to
// a hidden temporary file in the same directory, which file watchers ignore, then renamed
// over path.
func rewrite(path string, edit func(string) (string, error)) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("scenario: %w", err)
	}
	text, err := edit(string(b))
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("scenario: %w", err)
	}
	tmp := f.Name()
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("scenario: %w", err)
	}
	return nil
}
