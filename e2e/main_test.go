package e2e

import (
	"fmt"
	"os"
	"testing"
)

// TestMain builds ./cmd/weir once for the whole suite. A build failure does not stop the
// run: tests that need weir fail with the build output; the others still run.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weir-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := BuildWeir(dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
	}
	if _, err := FindEnvoy(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
