package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBootstrapsValidate runs Envoy's own validator on the checked-in bootstraps, exactly
// as a user would start them, and checks the harness's port rewrite finds its line.
func TestBootstrapsValidate(t *testing.T) {
	envoy := EnvoyBinary(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sidecar.yaml", "gateway.yaml"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(root, "envoy-configs", name)
			out, err := exec.Command(envoy, "--mode", "validate", "-c", path, "--log-level", "warn").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "OK") {
				t.Fatalf("envoy --mode validate -c %s: %v\n%s", path, err, out)
			}
			env := NewEnv(t)
			env.bootstrapFor(name, "validate-"+name) // fails the test if the xDS port line is not unique
		})
	}
}
