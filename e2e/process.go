package e2e

import "github.com/weir-mesh/weir/e2e/proc"

// process is a child started by the harness (see package proc).
type process = proc.Process

func startProcess(name, logPath string, env []string, bin string, args ...string) (*process, error) {
	return proc.Start(name, logPath, env, bin, args...)
}

func tailFile(path string, lines int) string { return proc.TailFile(path, lines) }
