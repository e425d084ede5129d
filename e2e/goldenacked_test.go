package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestGoldenCasesAreAcceptedByEnvoy serves the input of every translator golden case to
// a real Envoy and waits for it to ACK every resource type; the harness then fails the
// test on any NACK. The golden test runs the protos' own validation, which cannot see
// Envoy's semantic checks (a pseudo-header in headers_to_add, a duplicate domain, a
// filter config it cannot load): this does. Each case runs as a sidecar with the case's
// namespace and labels; a gateway case runs as a gateway, each of its mapped Gateway
// ports bound to a free loopback port.
func TestGoldenCasesAreAcceptedByEnvoy(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	inputs, err := filepath.Glob(filepath.Join(root, "translator", "testdata", "*", "input.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden cases found: %v", err)
	}
	for _, in := range inputs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var class struct {
				Role          string            `json:"role"`
				Namespace     string            `json:"namespace"`
				Labels        map[string]string `json:"labels"`
				ListenerPorts map[int]int       `json:"listenerPorts"`
			}
			if b, err := os.ReadFile(filepath.Join(dir, "class.yaml")); err == nil {
				if err := yaml.Unmarshal(b, &class); err != nil {
					t.Fatalf("class.yaml: %v", err)
				}
			}
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			env := NewEnv(t)
			env.WriteFile("input.yaml", string(data))
			env.StartWeir()
			if class.Role == "gateway" {
				ports := map[int]int{}
				for p := range class.ListenerPorts {
					ports[p] = FreePort(t, "127.0.0.1")
				}
				e := env.StartEnvoy(EnvoyOptions{Bootstrap: "gateway.yaml", Namespace: class.Namespace, Labels: class.Labels, ListenerPorts: ports})
				env.Weir().WaitAcked(t, e.NodeID, "cds", "eds", "lds")
				return
			}
			e := env.StartEnvoy(EnvoyOptions{Namespace: class.Namespace, Labels: class.Labels})
			env.Weir().WaitAcked(t, e.NodeID, "cds", "eds", "lds", "rds", "srds")
		})
	}
}
