package e2e

import (
	"os"
	"os/exec"
)

// PrometheusBinary is $WEIR_PROMETHEUS, else prometheus on $PATH or in /usr/bin (Debian's
// package, which `make test` installs). Its absence fails the test: CI must run it.
func PrometheusBinary(t TB) string {
	t.Helper()
	if p := os.Getenv("WEIR_PROMETHEUS"); p != "" {
		return p
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus"
	}
	t.Fatalf("no prometheus binary (WEIR_PROMETHEUS unset, none on PATH or in /usr/bin): `make test` installs it (`make prometheus`, the Debian package)")
	return ""
}
