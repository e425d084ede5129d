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
// namespace and labels (a gateway case too: gateways get no listeners or routes yet).
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
				Namespace string            `json:"namespace"`
				Labels    map[string]string `json:"labels"`
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
			e := env.StartEnvoy(EnvoyOptions{Namespace: class.Namespace, Labels: class.Labels})
			env.Weir().WaitAcked(t, e.NodeID, "cds", "eds", "lds", "rds", "srds")
		})
	}
}
